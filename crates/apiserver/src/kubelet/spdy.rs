//! The client half of SPDY/3.1 that a remote-command stream needs: open a few
//! streams, send DATA (and FIN to close stdin), read DATA back.
//!
//! Only what the runtime's streaming server uses is implemented. Incoming header
//! blocks (SYN_REPLY, HEADERS) are skipped unread; outgoing ones are zlib streams of
//! stored blocks without the SPDY dictionary, which a conforming reader accepts
//! because the zlib header does not claim one. No flow-control windows are kept: the
//! streaming server (Go's spdystream) does not enforce them.

use bytes::{BufMut, Bytes, BytesMut};
use flate2::{Compress, Compression, FlushCompress};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

const VERSION: u16 = 3;
const SYN_STREAM: u16 = 1;
const RST_STREAM: u16 = 3;
const PING: u16 = 6;
const GOAWAY: u16 = 7;
const FLAG_FIN: u8 = 0x01;
/// The largest frame payload SPDY's 24-bit length allows.
const MAX_PAYLOAD: usize = (1 << 24) - 1;

/// What the peer sent.
#[derive(Debug, PartialEq)]
pub enum Frame {
    Data {
        stream: u32,
        fin: bool,
        data: Bytes,
    },
    /// The peer reset a stream.
    Reset {
        stream: u32,
    },
    /// A ping to answer with [`Writer::pong`].
    Ping {
        id: u32,
    },
    /// The peer is going away.
    GoAway,
    /// Anything this client has no use for (SYN_REPLY, SETTINGS, WINDOW_UPDATE …).
    Other,
}

/// Writes frames; keeps the connection's header compression context.
pub struct Writer<W> {
    io: W,
    compress: Compress,
}

impl<W: AsyncWrite + Unpin> Writer<W> {
    pub fn new(io: W) -> Self {
        Writer {
            io,
            compress: Compress::new(Compression::none(), true),
        }
    }

    /// Opens client stream `id` (odd, increasing) with `headers` (lower-case names).
    pub async fn syn_stream(&mut self, id: u32, headers: &[(&str, &str)]) -> std::io::Result<()> {
        let block = self.header_block(headers)?;
        let mut payload = BytesMut::with_capacity(10 + block.len());
        payload.put_u32(id & 0x7fff_ffff);
        payload.put_u32(0); // associated stream
        payload.put_u16(0); // priority and slot
        payload.extend_from_slice(&block);
        self.control(SYN_STREAM, 0, &payload).await
    }

    /// Sends `data` on `stream`, closing our side of it when `fin`.
    pub async fn data(&mut self, stream: u32, data: &[u8], fin: bool) -> std::io::Result<()> {
        let mut chunks = data.chunks(MAX_PAYLOAD).peekable();
        if chunks.peek().is_none() {
            return self.data_frame(stream, &[], fin).await;
        }
        while let Some(chunk) = chunks.next() {
            let last = chunks.peek().is_none();
            self.data_frame(stream, chunk, fin && last).await?;
        }
        Ok(())
    }

    pub async fn pong(&mut self, id: u32) -> std::io::Result<()> {
        self.control(PING, 0, &id.to_be_bytes()).await
    }

    async fn data_frame(&mut self, stream: u32, data: &[u8], fin: bool) -> std::io::Result<()> {
        let mut frame = BytesMut::with_capacity(8 + data.len());
        frame.put_u32(stream & 0x7fff_ffff);
        frame.put_u32(length_word(if fin { FLAG_FIN } else { 0 }, data.len()));
        frame.extend_from_slice(data);
        self.io.write_all(&frame).await?;
        self.io.flush().await
    }

    async fn control(&mut self, kind: u16, flags: u8, payload: &[u8]) -> std::io::Result<()> {
        let mut frame = BytesMut::with_capacity(8 + payload.len());
        frame.put_u16(0x8000 | VERSION);
        frame.put_u16(kind);
        frame.put_u32(length_word(flags, payload.len()));
        frame.extend_from_slice(payload);
        self.io.write_all(&frame).await?;
        self.io.flush().await
    }

    /// A name/value block, compressed as the next piece of the connection's zlib stream.
    fn header_block(&mut self, headers: &[(&str, &str)]) -> std::io::Result<Vec<u8>> {
        let mut raw = BytesMut::new();
        raw.put_u32(headers.len() as u32);
        for (name, value) in headers {
            raw.put_u32(name.len() as u32);
            raw.extend_from_slice(name.as_bytes());
            raw.put_u32(value.len() as u32);
            raw.extend_from_slice(value.as_bytes());
        }
        let mut out = Vec::with_capacity(raw.len() + 64);
        let before = self.compress.total_in();
        while self.compress.total_in() - before < raw.len() as u64 || out.is_empty() {
            let consumed = (self.compress.total_in() - before) as usize;
            out.reserve(raw.len() + 64);
            self.compress
                .compress_vec(&raw[consumed..], &mut out, FlushCompress::Sync)
                .map_err(std::io::Error::other)?;
        }
        Ok(out)
    }
}

fn length_word(flags: u8, len: usize) -> u32 {
    (u32::from(flags) << 24) | (len as u32 & 0x00ff_ffff)
}

/// Reads the next frame; `None` at a clean end of the connection.
pub async fn read_frame<R: AsyncRead + Unpin>(io: &mut R) -> std::io::Result<Option<Frame>> {
    let mut head = [0u8; 8];
    match io.read_exact(&mut head).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let flags = head[4];
    let len = u32::from_be_bytes([0, head[5], head[6], head[7]]) as usize;
    let mut payload = vec![0u8; len];
    io.read_exact(&mut payload).await?;
    let word = |i: usize| {
        payload.get(i..i + 4).map_or(0, |b| {
            u32::from_be_bytes([b[0], b[1], b[2], b[3]]) & 0x7fff_ffff
        })
    };
    if head[0] & 0x80 == 0 {
        let stream = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
        return Ok(Some(Frame::Data {
            stream,
            fin: flags & FLAG_FIN != 0,
            data: Bytes::from(payload),
        }));
    }
    Ok(Some(match u16::from_be_bytes([head[2], head[3]]) {
        RST_STREAM => Frame::Reset { stream: word(0) },
        PING => Frame::Ping { id: word(0) },
        GOAWAY => Frame::GoAway,
        _ => Frame::Other,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::{Decompress, FlushDecompress};

    #[tokio::test]
    async fn frames_round_trip_and_headers_decompress() {
        let (a, mut b) = tokio::io::duplex(1 << 16);
        let mut w = Writer::new(a);
        w.syn_stream(1, &[("streamtype", "error")]).await.unwrap();
        w.syn_stream(3, &[("streamtype", "stdin")]).await.unwrap();
        w.data(3, b"hello", false).await.unwrap();
        w.data(3, b"", true).await.unwrap();
        w.pong(7).await.unwrap();
        drop(w);

        let mut raw = Vec::new();
        b.read_to_end(&mut raw).await.unwrap();
        // Two SYN_STREAMs whose header blocks form one zlib stream.
        let mut inflate = Decompress::new(true);
        let mut pos = 0;
        for want in ["error", "stdin"] {
            assert_eq!(&raw[pos..pos + 4], &[0x80, 3, 0, 1]);
            let len = u32::from_be_bytes([0, raw[pos + 5], raw[pos + 6], raw[pos + 7]]) as usize;
            let block = &raw[pos + 18..pos + 8 + len];
            let mut out = Vec::with_capacity(256);
            inflate
                .decompress_vec(block, &mut out, FlushDecompress::Sync)
                .unwrap();
            let mut expected = BytesMut::new();
            expected.put_u32(1);
            expected.put_u32(10);
            expected.extend_from_slice(b"streamtype");
            expected.put_u32(want.len() as u32);
            expected.extend_from_slice(want.as_bytes());
            assert_eq!(out, expected.to_vec());
            pos += 8 + len;
        }
        let mut rest = &raw[pos..];
        let f = read_frame(&mut rest).await.unwrap().unwrap();
        assert_eq!(
            f,
            Frame::Data {
                stream: 3,
                fin: false,
                data: Bytes::from_static(b"hello")
            }
        );
        let f = read_frame(&mut rest).await.unwrap().unwrap();
        assert_eq!(
            f,
            Frame::Data {
                stream: 3,
                fin: true,
                data: Bytes::new()
            }
        );
        assert_eq!(
            read_frame(&mut rest).await.unwrap(),
            Some(Frame::Ping { id: 7 })
        );
        assert_eq!(read_frame(&mut rest).await.unwrap(), None);
    }
}
