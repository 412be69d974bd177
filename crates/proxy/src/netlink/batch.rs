//! The netlink message buffer: headers, attributes, nests, nf_tables expressions.

// linux/netfilter/nfnetlink.h, nf_tables.h, netlink.h
pub(super) const NFNL_SUBSYS_NFTABLES: u16 = 10;
pub(super) const NLM_F_REQUEST: u16 = 0x1;
const NLA_F_NESTED: u16 = 0x8000;
pub(super) const NFPROTO_IPV4: u8 = 2;

/// A netlink message buffer with nested attributes.
pub(super) struct Batch {
    pub(super) buf: Vec<u8>,
    seq: u32,
    msg: usize,
    nests: Vec<usize>,
}

impl Batch {
    pub(super) fn new(seq: u32) -> Self {
        Self {
            buf: Vec::with_capacity(4096),
            seq,
            msg: 0,
            nests: Vec::new(),
        }
    }

    pub(super) fn pad(&mut self) {
        while !self.buf.len().is_multiple_of(4) {
            self.buf.push(0);
        }
    }

    /// Starts a message (nlmsghdr + nfgenmsg) and returns its sequence number.
    pub(super) fn begin(&mut self, ty: u16, flags: u16, family: u8, res_id: u16) -> u32 {
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

    pub(super) fn end(&mut self) {
        self.pad();
        let len = u32::try_from(self.buf.len() - self.msg).expect("message under 4 GiB");
        self.buf[self.msg..self.msg + 4].copy_from_slice(&len.to_ne_bytes());
    }

    pub(super) fn nft(&mut self, msg: u16, flags: u16) -> u32 {
        self.begin(
            (NFNL_SUBSYS_NFTABLES << 8) | msg,
            NLM_F_REQUEST | flags,
            NFPROTO_IPV4,
            0,
        )
    }

    pub(super) fn attr(&mut self, ty: u16, data: &[u8]) {
        self.pad();
        let len = u16::try_from(4 + data.len()).expect("attribute under 64 KiB");
        self.buf.extend_from_slice(&len.to_ne_bytes());
        self.buf.extend_from_slice(&ty.to_ne_bytes());
        self.buf.extend_from_slice(data);
    }

    pub(super) fn str(&mut self, ty: u16, s: &str) {
        let mut data = Vec::with_capacity(s.len() + 1);
        data.extend_from_slice(s.as_bytes());
        data.push(0);
        self.attr(ty, &data);
    }

    pub(super) fn u32(&mut self, ty: u16, v: u32) {
        self.attr(ty, &v.to_be_bytes());
    }

    pub(super) fn nest(&mut self, ty: u16) {
        self.pad();
        self.nests.push(self.buf.len());
        self.attr(ty | NLA_F_NESTED, &[]);
    }

    pub(super) fn end_nest(&mut self) {
        let at = self.nests.pop().expect("open nest");
        let len = u16::try_from(self.buf.len() - at).expect("attribute under 64 KiB");
        self.buf[at..at + 2].copy_from_slice(&len.to_ne_bytes());
    }

    /// `NFTA_DATA_VALUE` inside a nest of type `ty`.
    pub(super) fn value(&mut self, ty: u16, bytes: &[u8]) {
        self.nest(ty);
        self.attr(1, bytes);
        self.end_nest();
    }

    /// `NFTA_DATA_VERDICT` inside a nest of type `ty`.
    pub(super) fn verdict(&mut self, ty: u16, code: i32, chain: &str) {
        self.nest(ty);
        self.nest(2);
        self.u32(1, code.cast_unsigned());
        self.str(2, chain);
        self.end_nest();
        self.end_nest();
    }

    /// One expression of a rule: `NFTA_LIST_ELEM { NAME, DATA { … } }`.
    pub(super) fn expr(&mut self, name: &str, data: impl FnOnce(&mut Self)) {
        self.nest(1);
        self.str(1, name);
        self.nest(2);
        data(self);
        self.end_nest();
        self.end_nest();
    }
}
