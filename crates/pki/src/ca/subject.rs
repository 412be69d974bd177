//! Subjects with several O values.
//!
//! Kubernetes reads each O of a client certificate as a group, so a user in two
//! groups needs two O attributes; rcgen's `DistinguishedName` keeps one value per
//! attribute type. For those certificates rcgen builds everything else, then the
//! subject is swapped for our own encoding and the to-be-signed part signed again.

use rcgen::SigningKey;

use crate::{Error, Result};

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const OID: u8 = 0x06;
const UTF8_STRING: u8 = 0x0c;
const BIT_STRING: u8 = 0x03;
const VERSION_TAG: u8 = 0xa0;
const OID_ORGANIZATION: &[u8] = &[0x55, 0x04, 0x0a];
const OID_COMMON_NAME: &[u8] = &[0x55, 0x04, 0x03];

fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let len = content.len();
    let mut out = vec![tag];
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

/// One DER element and what follows it.
struct Tlv<'a> {
    tag: u8,
    content: &'a [u8],
    /// The element with its header.
    whole: &'a [u8],
    rest: &'a [u8],
}

/// Splits the first element off `input`.
fn next_tlv(input: &[u8]) -> Option<Tlv<'_>> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (first as usize, rest)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| acc << 8 | *b as usize);
        (len, &rest[n..])
    };
    let header = input.len() - rest.len();
    if rest.len() < len {
        return None;
    }
    Some(Tlv {
        tag,
        content: &rest[..len],
        whole: &input[..header + len],
        rest: &rest[len..],
    })
}

fn attribute(oid: &[u8], value: &str) -> Vec<u8> {
    let pair = [tlv(OID, oid), tlv(UTF8_STRING, value.as_bytes())].concat();
    tlv(SET, &tlv(SEQUENCE, &pair))
}

/// A subject name: one RDN per O, then the CN (the order Go's crypto/x509 writes).
pub fn encode(common_name: &str, organizations: &[String]) -> Vec<u8> {
    let mut rdns: Vec<u8> = organizations
        .iter()
        .flat_map(|o| attribute(OID_ORGANIZATION, o))
        .collect();
    rdns.extend(attribute(OID_COMMON_NAME, common_name));
    tlv(SEQUENCE, &rdns)
}

/// `cert_der` with its subject replaced by `subject`, signed again by `signer` (the
/// key that signed it).
pub fn replace(cert_der: &[u8], subject: &[u8], signer: &impl SigningKey) -> Result<Vec<u8>> {
    let malformed = || Error::Crypto("could not re-encode the certificate subject");
    let cert = next_tlv(cert_der).ok_or_else(malformed)?;
    let tbs = next_tlv(cert.content).ok_or_else(malformed)?;
    let signature_algorithm = next_tlv(tbs.rest).ok_or_else(malformed)?.whole;

    let mut fields = Vec::new();
    let mut input = tbs.content;
    while !input.is_empty() {
        let field = next_tlv(input).ok_or_else(malformed)?;
        fields.push((field.tag, field.whole));
        input = field.rest;
    }
    // version, serial, signature, issuer, validity, subject, …
    let subject_index = if fields.first().map(|f| f.0) == Some(VERSION_TAG) {
        5
    } else {
        4
    };
    if fields.get(subject_index).map(|f| f.0) != Some(SEQUENCE) {
        return Err(malformed());
    }
    let new_tbs: Vec<u8> = fields
        .iter()
        .enumerate()
        .flat_map(|(i, (_, whole))| if i == subject_index { subject } else { whole })
        .copied()
        .collect();
    let new_tbs = tlv(SEQUENCE, &new_tbs);
    let signature = signer.sign(&new_tbs)?;
    let signature = tlv(BIT_STRING, &[&[0u8][..], &signature].concat());
    Ok(tlv(
        SEQUENCE,
        &[new_tbs.as_slice(), signature_algorithm, &signature].concat(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_round_trip() {
        for len in [0, 1, 127, 128, 255, 256, 70_000] {
            let content = vec![7u8; len];
            let encoded = tlv(SEQUENCE, &content);
            let t = next_tlv(&encoded).unwrap();
            assert_eq!(
                (t.tag, t.content.len(), t.whole.len(), t.rest.len()),
                (SEQUENCE, len, encoded.len(), 0)
            );
        }
        assert!(next_tlv(&[SEQUENCE, 5, 1]).is_none(), "truncated");
        assert!(
            next_tlv(&[SEQUENCE, 0x85, 1, 1, 1, 1, 1]).is_none(),
            "oversized length"
        );
    }
}
