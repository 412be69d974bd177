//! Rules, map elements and table changes as nf_tables messages, as `nft` compiles
//! the same commands.

use super::batch::{Batch, NFPROTO_IPV4};
use crate::model::Proto;
use crate::nft::Op;
use crate::rules::{Key, MARK_FOR_MASQUERADE, Pick, Rule};

// linux/netfilter/nf_tables.h, netlink.h, nf_nat.h
const NFT_MSG_NEWCHAIN: u16 = 3;
const NFT_MSG_DELCHAIN: u16 = 5;
const NFT_MSG_NEWRULE: u16 = 6;
const NFT_MSG_DELRULE: u16 = 8;
const NFT_MSG_NEWSET: u16 = 9;
const NFT_MSG_DELSET: u16 = 11;
const NFT_MSG_NEWSETELEM: u16 = 12;
const NFT_MSG_DELSETELEM: u16 = 14;
const NLM_F_CREATE: u16 = 0x400;
const NLM_F_APPEND: u16 = 0x800;
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

impl Batch {
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
    pub(super) fn rule(&mut self, rule: &Rule) {
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
            Rule::Masquerade => self.jump(NFT_JUMP, MARK_FOR_MASQUERADE),
            Rule::Goto(chain) => self.jump(NFT_GOTO, chain),
            Rule::Dnat {
                pick,
                affinity,
                proto,
                ip,
                port,
            } => {
                match pick {
                    Pick::Returning(set) => {
                        self.saddr(4);
                        self.expr("lookup", |b| {
                            b.u32(2, REG1);
                            b.str(1, set);
                        });
                    }
                    Pick::Random(modulus) => {
                        self.expr("numgen", |b| {
                            b.u32(1, REG1);
                            b.u32(2, *modulus);
                            b.u32(3, NFT_NG_RANDOM);
                            b.u32(4, 0);
                        });
                        self.cmp(NFT_CMP_EQ, &[0; 4]);
                    }
                    Pick::Always => {}
                }
                if let Some(set) = affinity {
                    self.saddr(4);
                    self.expr("dynset", |b| {
                        b.u32(4, REG1);
                        b.u32(3, NFT_DYNSET_OP_UPDATE);
                        b.str(1, set);
                    });
                }
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

    /// One element of a map or set: `key` and, for a verdict map, `goto <chain>`.
    fn element(&mut self, key: &Key, chain: Option<&str>) {
        self.nest(1);
        self.value(1, &key_bytes(key));
        if let Some(chain) = chain {
            self.verdict(2, NFT_GOTO, chain);
        }
        self.end_nest();
    }

    pub(super) fn op(&mut self, table: &str, op: &Op<'_>) -> u32 {
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
                self.element(key, *chain);
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
    let mut out = Vec::with_capacity(12);
    match key {
        Key::Addr(ip, proto, port) => {
            out.extend_from_slice(&ip.octets());
            out.extend_from_slice(&field(&[proto_number(*proto)]));
            out.extend_from_slice(&field(&port.to_be_bytes()));
        }
        Key::NodePort(proto, port) => {
            out.extend_from_slice(&field(&[proto_number(*proto)]));
            out.extend_from_slice(&field(&port.to_be_bytes()));
        }
        Key::Hairpin(ip) => {
            out.extend_from_slice(&ip.octets());
            out.extend_from_slice(&ip.octets());
        }
    }
    out
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
        let k = Key::Hairpin("10.42.0.5".parse().unwrap());
        assert_eq!(key_bytes(&k), [10, 42, 0, 5, 10, 42, 0, 5]);
    }
}
