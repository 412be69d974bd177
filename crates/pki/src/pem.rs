//! PEM decoding through rustls-pki-types.

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::{Error, Result};

/// Every certificate in `pem`; at least one.
pub fn certs(pem: &str) -> Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Error::BadPem(format!("bad certificate PEM: {e}")))?;
    if certs.is_empty() {
        return Err(Error::BadPem("no certificate in PEM".into()));
    }
    Ok(certs)
}

/// The first certificate in `pem`.
pub fn first_cert(pem: &str) -> Result<CertificateDer<'static>> {
    Ok(certs(pem)?.swap_remove(0))
}

/// The private key in `pem` (PKCS#8, SEC1 or PKCS#1).
pub fn key(pem: &str) -> Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_slice(pem.as_bytes())
        .map_err(|e| Error::BadPem(format!("bad private key PEM: {e}")))
}

/// `der` as a PEM block with `label` (e.g. `CERTIFICATE`, `PRIVATE KEY`).
pub fn encode(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        // base64 output is ASCII, so every chunk is valid UTF-8.
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}
