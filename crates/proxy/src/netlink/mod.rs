//! Changes to the proxy's tables as one nf_tables netlink batch, sent straight to the
//! kernel: the same messages `nft -f` would send for the same commands, without the
//! dump of every chain and set that `nft` does first to fill its cache.
//!
//! The batch is processed inside `send`: the kernel commits it whole or not at all and
//! queues an error for every message it refused. A `GETGEN` request sent after it
//! marks the end of those answers. One socket serves every batch of the process.

mod batch;
mod expr;

use std::os::fd::OwnedFd;
use std::time::Duration;

use rustix::net::netlink::{self, SocketAddrNetlink};
use rustix::net::{AddressFamily, RecvFlags, SendFlags, SocketType};

use crate::nft::{NftError, Step};
use batch::{Batch, NFNL_SUBSYS_NFTABLES, NLM_F_REQUEST};

// linux/netfilter/nfnetlink.h, nf_tables.h, netlink.h
const NFNL_MSG_BATCH_BEGIN: u16 = 16;
const NFNL_MSG_BATCH_END: u16 = 17;
const NFT_MSG_GETGEN: u16 = 16;
const NLM_F_ACK: u16 = 0x4;
const NLMSG_ERROR: u16 = 2;

/// The batch for `steps` and the sequence number of each step's message.
fn encode(steps: &[Step<'_>]) -> (Vec<u8>, Vec<u32>) {
    let mut b = Batch::new(0);
    b.begin(NFNL_MSG_BATCH_BEGIN, NLM_F_REQUEST, 0, NFNL_SUBSYS_NFTABLES);
    b.end();
    let seqs = steps.iter().map(|s| b.op(s.table, &s.op)).collect();
    b.begin(NFNL_MSG_BATCH_END, NLM_F_REQUEST, 0, NFNL_SUBSYS_NFTABLES);
    b.end();
    (b.buf, seqs)
}

fn socket() -> std::io::Result<OwnedFd> {
    let fd = rustix::net::socket(
        AddressFamily::NETLINK,
        SocketType::RAW,
        Some(netlink::NETFILTER),
    )?;
    rustix::net::bind(&fd, &SocketAddrNetlink::new(0, 0))?;
    rustix::net::sockopt::set_socket_timeout(
        &fd,
        rustix::net::sockopt::Timeout::Recv,
        Some(Duration::from_secs(10)),
    )?;
    Ok(fd)
}

/// The socket batches go through, kept open between them: closing a netlink socket
/// takes the kernel ~18 ms here (an RCU grace period, it seems), longer than a small
/// commit. Only a socket whose last exchange was read to its end is kept, so no
/// answer of an earlier batch is ever taken for one of the next.
static SOCKET: parking_lot::Mutex<Option<OwnedFd>> = parking_lot::Mutex::new(None);

/// Applies `steps` as one transaction.
pub fn apply(steps: &[Step<'_>]) -> Result<(), NftError> {
    if steps.is_empty() {
        return Ok(());
    }
    let mut kept = SOCKET.lock();
    let fd = match kept.take() {
        Some(fd) => fd,
        None => socket().map_err(NftError::Netlink)?,
    };
    let (result, read_to_end) = exchange(&fd, steps);
    if read_to_end {
        *kept = Some(fd);
    }
    result
}

/// Sends `steps` as a batch and reads every answer up to the marker's; whether it
/// got that far (the socket holds nothing more).
fn exchange(fd: &OwnedFd, steps: &[Step<'_>]) -> (Result<(), NftError>, bool) {
    let io = |e: rustix::io::Errno| (Err(NftError::Netlink(e.into())), false);
    let (batch, seqs) = encode(steps);
    // The whole batch must fit one datagram; root may raise the socket's limit.
    if batch.len() > 128 * 1024
        && let Err(e) = rustix::net::sockopt::set_socket_send_buffer_size_force(fd, batch.len() * 2)
    {
        return io(e);
    }
    if let Err(e) = rustix::net::send(fd, &batch, SendFlags::empty()) {
        return io(e);
    }
    let mut marker = Batch::new(seqs.last().copied().unwrap_or(0) + 1);
    let marker_seq = marker.begin(
        (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETGEN,
        NLM_F_REQUEST | NLM_F_ACK,
        0,
        0,
    );
    marker.end();
    if let Err(e) = rustix::net::send(fd, &marker.buf, SendFlags::empty()) {
        return io(e);
    }

    let mut errors = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match rustix::net::recv(fd, &mut buf[..], RecvFlags::empty()) {
            Ok((n, _)) => n,
            Err(e) => return io(e),
        };
        let mut at = 0;
        while at + 16 <= n {
            let len = u32::from_ne_bytes(buf[at..at + 4].try_into().expect("4 bytes")) as usize;
            let ty = u16::from_ne_bytes(buf[at + 4..at + 6].try_into().expect("2 bytes"));
            let seq = u32::from_ne_bytes(buf[at + 8..at + 12].try_into().expect("4 bytes"));
            if len < 16 || at + len > n {
                break;
            }
            if ty == NLMSG_ERROR && len >= 20 {
                let code = i32::from_ne_bytes(buf[at + 16..at + 20].try_into().expect("4 bytes"));
                if seq == marker_seq {
                    let result = if errors.is_empty() {
                        Ok(())
                    } else {
                        Err(NftError::Rejected(errors.join("; ")))
                    };
                    return (result, true);
                }
                if code != 0 {
                    let err = std::io::Error::from_raw_os_error(-code);
                    let what = seqs
                        .iter()
                        .position(|s| *s == seq)
                        .map(|i| steps[i].command())
                        .unwrap_or_else(|| "the transaction".into());
                    errors.push(format!("{what}: {err}"));
                }
            }
            at += len.div_ceil(4) * 4;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nft::{Op, in_table};
    use crate::rules::Rule;

    #[test]
    fn messages_carry_lengths_and_sequence_numbers() {
        let r = Rule::Goto("sep-a".into());
        let ops = vec![
            Op::AddChain("sep-a"),
            Op::AddRule {
                chain: "svc-a",
                rule: &r,
            },
        ];
        let (buf, seqs) = encode(&in_table("t", ops));
        assert_eq!(seqs, [2, 3]);
        // batch begin, two messages, batch end: each length walks to the next.
        let mut at = 0;
        let mut count = 0;
        while at < buf.len() {
            let len = u32::from_ne_bytes(buf[at..at + 4].try_into().unwrap()) as usize;
            assert!(len >= 20 && len.is_multiple_of(4), "length {len}");
            at += len;
            count += 1;
        }
        assert_eq!((at, count), (buf.len(), 4));
    }
}
