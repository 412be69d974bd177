//! The server's join token, like k3s's: `K10<sha256 of the CA PEM>::server:<secret>`,
//! so an agent can check the CA it is handed before trusting it.

use std::path::Path;

use rand::Rng;
use sha2::{Digest, Sha256};

use crate::files::{read, write_private};
use crate::{Error, Result};

/// The token in `path`, generated on first use.
pub fn ensure_server_token(path: &Path, ca_pem: &str) -> Result<String> {
    if let Some(t) = read(path)? {
        let t = t.trim().to_string();
        if !t.is_empty() {
            return Ok(t);
        }
    }
    let secret: String = rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(32)
        .map(char::from)
        .collect();
    let token = format!("K10{}::server:{secret}", ca_hash(ca_pem));
    write_private(path, format!("{token}\n").as_bytes())?;
    Ok(token)
}

pub fn ca_hash(ca_pem: &str) -> String {
    Sha256::digest(ca_pem.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A parsed join token: the CA hash (if the full form was given) and the secret.
#[derive(Debug, PartialEq, Eq)]
pub struct JoinToken {
    pub ca_hash: Option<String>,
    pub secret: String,
}

pub fn parse(token: &str) -> Result<JoinToken> {
    let token = token.trim();
    if let Some(rest) = token.strip_prefix("K10") {
        let (hash, tail) = rest
            .split_once("::")
            .ok_or_else(|| Error::Token("missing '::' after the CA hash".into()))?;
        let secret = tail.split_once(':').map(|(_, s)| s).unwrap_or(tail);
        if hash.len() != 64 || secret.is_empty() {
            return Err(Error::Token("malformed K10 token".into()));
        }
        return Ok(JoinToken {
            ca_hash: Some(hash.to_string()),
            secret: secret.to_string(),
        });
    }
    if token.is_empty() {
        return Err(Error::Token("empty token".into()));
    }
    Ok(JoinToken {
        ca_hash: None,
        secret: token.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let t = ensure_server_token(&dir.path().join("token"), "CA").unwrap();
        assert_eq!(
            ensure_server_token(&dir.path().join("token"), "CA").unwrap(),
            t,
            "reused"
        );
        let p = parse(&t).unwrap();
        assert_eq!(p.ca_hash.as_deref(), Some(ca_hash("CA").as_str()));
        assert!(parse("K10abc").is_err());
    }
}
