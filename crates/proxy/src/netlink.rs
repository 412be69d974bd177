//! Changes to the proxy's table as one nf_tables netlink batch, sent straight to the
//! kernel: the same messages `nft -f` would send for the same commands, without the
//! dump of every chain and set that `nft` does first to fill its cache.
//!
//! The batch is processed inside `send`: the kernel commits it whole or not at all and
//! queues an error for every message it refused. A `GETGEN` request sent after it
//! marks the end of those answers.

use std::net::Ipv4Addr;
use std::os::fd::OwnedFd;
use std::time::Duration;

use rustix::net::netlink::{self, SocketAddrNetlink};
use rustix::net::{AddressFamily, RecvFlags, SendFlags, SocketType};

use crate::model::Proto;
use crate::nft::{NftError, Op};
use crate::rules::{Key, MARK_FOR_MASQUERADE, Rule};

// linux/netfilter/nfnetlink.h, nf_tables.h, netlink.h
const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFNL_MSG_BATCH_BEGIN: u16 = 16;
const NFNL_MSG_BATCH_END: u16 = 17;
const NFT_MSG_NEWCHAIN: u16 = 3;
const NFT_MSG_DELCHAIN: u16 = 5;
const NFT_MSG_NEWRULE: u16 = 6;
const NFT_MSG_DELRULE: u16 = 8;
const NFT_MSG_NEWSET: u16 = 9;
const NFT_MSG_DELSET: u16 = 11;
const NFT_MSG_NEWSETELEM: u16 = 12;
const NFT_MSG_DELSETELEM: u16 = 14;
const NFT_MSG_GETGEN: u16 = 16;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_CREATE: u16 = 0x400;
const NLM_F_APPEND: u16 = 0x800;
const NLMSG_ERROR: u16 = 2;
const NLA_F_NESTED: u16 = 0x8000;
const NFPROTO_IPV4: u8 = 2;
const NFT_JUMP: i32 = -3;
const NFT_GOTO: i32 = -4;
const NFT_REG_VERDICT: u32 = 0;
const REG1: u32 = 1;
const REG2: u32 = 2;
const NFT_PAYLOAD_NETWORK_HEADER: u32 = 1;
const IPV4_SADDR_OFFSET: u32 = 12;
const NFT_CMP_EQ: u32 = 0;
const NFT_CMP_NEQ: u32 = 1;
const NFT_META_L4PROTO: u32 = 16;
const NFT_NG_RANDOM: u32 = 1;
const NFT_DYNSET_OP_UPDATE: u32 = 1;
const NFT_NAT_DNAT: u32 = 1;
const NF_NAT_RANGE_PROTO_SPECIFIED: u32 = 2;
const NFT_SET_TIMEOUT: u32 = 0x10;
const NFT_SET_EVAL: u32 = 0x20;
/// nft's datatype number for `ipv4_addr`, kept in the set so `nft list` prints it.
const TYPE_IPV4_ADDR: u32 = 7;

/// nft's userdata for a set, one TLV (type, length, host-order u32): the key is
/// big-endian (BYTEORDER_BIG_ENDIAN), as `nft` stores it.
fn set_userdata() -> [u8; 6] {
    let v = 2u32.to_ne_bytes();
    [0, 4, v[0], v[1], v[2], v[3]]
}

/// A netlink message buffer with nested attributes.
struct Batch {
    buf: Vec<u8>,
    seq: u32,
    msg: usize,
    nests: Vec<usize>,
}

impl Batch {
    fn new(seq: u32) -> Self {
        Self {
            buf: Vec::with_capacity(4096),
            seq,
            msg: 0,
            nests: Vec::new(),
        }
    }

    fn pad(&mut self) {
        while !self.buf.len().is_multiple_of(4) {
            self.buf.push(0);
        }
    }

    /// Starts a message (nlmsghdr + nfgenmsg) and returns its sequence number.
    fn begin(&mut self, ty: u16, flags: u16, family: u8, res_id: u16) -> u32 {
        self.pad();
        self.msg = self.buf.len();
        self.seq += 1;
        self.buf.extend_from_slice(&0u32.to_ne_bytes());
        self.buf.extend_from_slice(&ty.to_ne_bytes());
        self.buf.extend_from_slice(&flags.to_ne_bytes());
        self.buf.extend_from_slice(&self.seq.to_ne_bytes());
        self.buf.extend_from_slice(&0u32.to_ne_bytes());
        self.buf.extend_from_slice(&[family, 0]);
        self.buf.extend_from_slice(&res_id.to_be_bytes());
        self.seq
    }

    fn end(&mut self) {
        self.pad();
        let len = u32::try_from(self.buf.len() - self.msg).expect("message under 4 GiB");
        self.buf[self.msg..self.msg + 4].copy_from_slice(&len.to_ne_bytes());
    }

    fn nft(&mut self, msg: u16, flags: u16) -> u32 {
        self.begin(
            (NFNL_SUBSYS_NFTABLES << 8) | msg,
            NLM_F_REQUEST | flags,
            NFPROTO_IPV4,
            0,
        )
    }

    fn attr(&mut self, ty: u16, data: &[u8]) {
        self.pad();
        let len = u16::try_from(4 + data.len()).expect("attribute under 64 KiB");
        self.buf.extend_from_slice(&len.to_ne_bytes());
        self.buf.extend_from_slice(&ty.to_ne_bytes());
        self.buf.extend_from_slice(data);
    }

    fn str(&mut self, ty: u16, s: &str) {
        let mut data = Vec::with_capacity(s.len() + 1);
        data.extend_from_slice(s.as_bytes());
        data.push(0);
        self.attr(ty, &data);
    }

    fn u32(&mut self, ty: u16, v: u32) {
        self.attr(ty, &v.to_be_bytes());
    }

    fn nest(&mut self, ty: u16) {
        self.pad();
        self.nests.push(self.buf.len());
        self.attr(ty | NLA_F_NESTED, &[]);
    }

    fn end_nest(&mut self) {
        let at = self.nests.pop().expect("open nest");
        let len = u16::try_from(self.buf.len() - at).expect("attribute under 64 KiB");
        self.buf[at..at + 2].copy_from_slice(&len.to_ne_bytes());
    }

    /// `NFTA_DATA_VALUE` inside a nest of type `ty`.
    fn value(&mut self, ty: u16, bytes: &[u8]) {
        self.nest(ty);
        self.attr(1, bytes);
        self.end_nest();
    }

    /// `NFTA_DATA_VERDICT` inside a nest of type `ty`.
    fn verdict(&mut self, ty: u16, code: i32, chain: &str) {
        self.nest(ty);
        self.nest(2);
        self.u32(1, code.cast_unsigned());
        self.str(2, chain);
        self.end_nest();
        self.end_nest();
    }

    /// One expression of a rule: `NFTA_LIST_ELEM { NAME, DATA { … } }`.
    fn expr(&mut self, name: &str, data: impl FnOnce(&mut Self)) {
        self.nest(1);
        self.str(1, name);
        self.nest(2);
        data(self);
        self.end_nest();
        self.end_nest();
    }

    fn saddr(&mut self, len: u32) {
        self.expr("payload", |b| {
            b.u32(1, REG1);
            b.u32(2, NFT_PAYLOAD_NETWORK_HEADER);
            b.u32(3, IPV4_SADDR_OFFSET);
            b.u32(4, len);
        });
    }

    fn cmp(&mut self, op: u32, bytes: &[u8]) {
        self.expr("cmp", |b| {
            b.u32(1, REG1);
            b.u32(2, op);
            b.value(3, bytes);
        });
    }

    fn jump(&mut self, code: i32, chain: &str) {
        self.expr("immediate", |b| {
            b.u32(1, NFT_REG_VERDICT);
            b.verdict(2, code, chain);
        });
    }

    fn immediate(&mut self, reg: u32, bytes: &[u8]) {
        self.expr("immediate", |b| {
            b.u32(1, reg);
            b.value(2, bytes);
        });
    }

    /// The expressions of `rule`, as `nft` compiles its text.
    fn rule(&mut self, rule: &Rule) {
        match rule {
            Rule::MasqueradeUnlessFrom(net) => {
                let (addr, prefix) = (net.network().octets(), u32::from(net.prefix_len()));
                if prefix > 0 && prefix % 8 == 0 {
                    // Whole bytes: nft loads just those.
                    let n = (prefix / 8) as usize;
                    self.saddr(prefix / 8);
                    self.cmp(NFT_CMP_NEQ, &addr[..n]);
                } else {
                    self.saddr(4);
                    self.expr("bitwise", |b| {
                        b.u32(1, REG1);
                        b.u32(2, REG1);
                        b.u32(3, 4);
                        b.value(4, &net.netmask().octets());
                        b.value(5, &[0; 4]);
                    });
                    self.cmp(NFT_CMP_NEQ, &addr);
                }
                self.jump(NFT_JUMP, MARK_FOR_MASQUERADE);
            }
            Rule::MasqueradeFrom(ip) => {
                self.saddr(4);
                self.cmp(NFT_CMP_EQ, &ip.octets());
                self.jump(NFT_JUMP, MARK_FOR_MASQUERADE);
            }
            Rule::Masquerade => self.jump(NFT_JUMP, MARK_FOR_MASQUERADE),
            Rule::AffinityGoto { set, chain } => {
                self.saddr(4);
                self.expr("lookup", |b| {
                    b.u32(2, REG1);
                    b.str(1, set);
                });
                self.jump(NFT_GOTO, chain);
            }
            Rule::AffinityUpdate(set) => {
                self.saddr(4);
                self.expr("dynset", |b| {
                    b.u32(4, REG1);
                    b.u32(3, NFT_DYNSET_OP_UPDATE);
                    b.str(1, set);
                });
            }
            Rule::RandomGoto { modulus, chain } => {
                self.expr("numgen", |b| {
                    b.u32(1, REG1);
                    b.u32(2, *modulus);
                    b.u32(3, NFT_NG_RANDOM);
                    b.u32(4, 0);
                });
                self.cmp(NFT_CMP_EQ, &[0; 4]);
                self.jump(NFT_GOTO, chain);
            }
            Rule::Goto(chain) => self.jump(NFT_GOTO, chain),
            Rule::Dnat { proto, ip, port } => {
                self.expr("meta", |b| {
                    b.u32(2, NFT_META_L4PROTO);
                    b.u32(1, REG1);
                });
                self.cmp(NFT_CMP_EQ, &[proto_number(*proto)]);
                self.immediate(REG1, &ip.octets());
                self.immediate(REG2, &port.to_be_bytes());
                self.expr("nat", |b| {
                    b.u32(1, NFT_NAT_DNAT);
                    b.u32(2, u32::from(NFPROTO_IPV4));
                    b.u32(3, REG1);
                    b.u32(5, REG2);
                    b.u32(7, NF_NAT_RANGE_PROTO_SPECIFIED);
                });
            }
        }
    }

    /// One element of a map or set, `key` and, for a verdict map, `goto <chain>`.
    fn element(&mut self, key: &Key, chain: Option<&str>) {
        self.nest(1);
        self.value(1, &key_bytes(key));
        if let Some(chain) = chain {
            self.verdict(2, NFT_GOTO, chain);
        }
        self.end_nest();
    }

    fn op(&mut self, table: &str, op: &Op<'_>) -> u32 {
        let seq;
        match op {
            Op::AddSet { name, timeout } => {
                seq = self.nft(NFT_MSG_NEWSET, NLM_F_CREATE);
                self.str(1, table);
                self.str(2, name);
                self.u32(3, NFT_SET_TIMEOUT | NFT_SET_EVAL);
                self.u32(4, TYPE_IPV4_ADDR);
                self.u32(5, 4);
                // The kernel requires an id for sets created in a batch.
                self.u32(10, seq);
                let ms = u64::try_from(*timeout).unwrap_or(0) * 1000;
                self.attr(11, &ms.to_be_bytes());
                self.attr(13, &set_userdata());
            }
            Op::AddChain(name) => {
                seq = self.nft(NFT_MSG_NEWCHAIN, NLM_F_CREATE);
                self.str(1, table);
                self.str(3, name);
            }
            Op::FlushChain(name) => {
                seq = self.nft(NFT_MSG_DELRULE, 0);
                self.str(1, table);
                self.str(2, name);
            }
            Op::AddRule { chain, rule } => {
                seq = self.nft(NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND);
                self.str(1, table);
                self.str(2, chain);
                self.nest(4);
                self.rule(rule);
                self.end_nest();
            }
            Op::DeleteElement { map, key } => {
                seq = self.nft(NFT_MSG_DELSETELEM, 0);
                self.str(1, table);
                self.str(2, map);
                self.nest(3);
                self.element(key, None);
                self.end_nest();
            }
            Op::AddElement { map, key, chain } => {
                seq = self.nft(NFT_MSG_NEWSETELEM, NLM_F_CREATE);
                self.str(1, table);
                self.str(2, map);
                self.nest(3);
                self.element(key, Some(chain));
                self.end_nest();
            }
            Op::DeleteChain(name) => {
                seq = self.nft(NFT_MSG_DELCHAIN, 0);
                self.str(1, table);
                self.str(3, name);
            }
            Op::DeleteSet(name) => {
                seq = self.nft(NFT_MSG_DELSET, 0);
                self.str(1, table);
                self.str(2, name);
            }
        }
        self.end();
        seq
    }
}

fn proto_number(p: Proto) -> u8 {
    match p {
        Proto::Tcp => 6,
        Proto::Udp => 17,
        Proto::Sctp => 132,
    }
}

/// A concatenated key: every field padded to 4 bytes, in network byte order.
fn key_bytes(key: &Key) -> Vec<u8> {
    let field = |bytes: &[u8]| {
        let mut f = [0u8; 4];
        f[..bytes.len()].copy_from_slice(bytes);
        f
    };
    let (ip, proto, port): (Option<Ipv4Addr>, Proto, u16) = match key {
        Key::Addr(ip, proto, port) => (Some(*ip), *proto, *port),
        Key::NodePort(proto, port) => (None, *proto, *port),
    };
    let mut out = Vec::with_capacity(12);
    if let Some(ip) = ip {
        out.extend_from_slice(&ip.octets());
    }
    out.extend_from_slice(&field(&[proto_number(proto)]));
    out.extend_from_slice(&field(&port.to_be_bytes()));
    out
}

/// The batch for `ops` and the sequence number of each op's message.
fn encode(table: &str, ops: &[Op<'_>]) -> (Vec<u8>, Vec<u32>) {
    let mut b = Batch::new(0);
    b.begin(NFNL_MSG_BATCH_BEGIN, NLM_F_REQUEST, 0, NFNL_SUBSYS_NFTABLES);
    b.end();
    let seqs = ops.iter().map(|op| b.op(table, op)).collect();
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

/// Applies `ops` to `ip <table>` as one transaction.
pub fn apply(table: &str, ops: &[Op<'_>]) -> Result<(), NftError> {
    if ops.is_empty() {
        return Ok(());
    }
    let (batch, seqs) = encode(table, ops);
    let fd = socket().map_err(NftError::Netlink)?;
    // The whole batch must fit one datagram; root may raise the socket's limit.
    if batch.len() > 128 * 1024 {
        rustix::net::sockopt::set_socket_send_buffer_size_force(&fd, batch.len() * 2)
            .map_err(|e| NftError::Netlink(e.into()))?;
    }
    rustix::net::send(&fd, &batch, SendFlags::empty()).map_err(|e| NftError::Netlink(e.into()))?;
    let mut marker = Batch::new(seqs.last().copied().unwrap_or(0) + 1);
    let marker_seq = marker.begin(
        (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETGEN,
        NLM_F_REQUEST | NLM_F_ACK,
        0,
        0,
    );
    marker.end();
    rustix::net::send(&fd, &marker.buf, SendFlags::empty())
        .map_err(|e| NftError::Netlink(e.into()))?;

    let mut errors = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let (n, _) = rustix::net::recv(&fd, &mut buf[..], RecvFlags::empty())
            .map_err(|e| NftError::Netlink(e.into()))?;
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
                    return if errors.is_empty() {
                        Ok(())
                    } else {
                        Err(NftError::Rejected(errors.join("; ")))
                    };
                }
                if code != 0 {
                    let err = std::io::Error::from_raw_os_error(-code);
                    let what = seqs
                        .iter()
                        .position(|s| *s == seq)
                        .map(|i| ops[i].command(table))
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

    #[test]
    fn keys_pad_every_field_to_four_bytes() {
        let k = Key::Addr("10.43.0.9".parse().unwrap(), Proto::Tcp, 80);
        assert_eq!(key_bytes(&k), [10, 43, 0, 9, 6, 0, 0, 0, 0, 80, 0, 0]);
        let k = Key::NodePort(Proto::Tcp, 30081);
        assert_eq!(key_bytes(&k), [6, 0, 0, 0, 0x75, 0x81, 0, 0]);
    }

    #[test]
    fn messages_carry_lengths_and_sequence_numbers() {
        let r = Rule::Goto("sep-a".into());
        let ops = [
            Op::AddChain("sep-a"),
            Op::AddRule {
                chain: "svc-a",
                rule: &r,
            },
        ];
        let (buf, seqs) = encode("t", &ops);
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
