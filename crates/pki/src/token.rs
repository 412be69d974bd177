//! The server's join token, like k3s's: `K10<sha256 hex of the CA PEM>::server:<secret>`.
//!
//! An agent given the full form fetches the CA from the server, checks it against the
//! hash ([`JoinToken::check_ca`]) before trusting it, then authenticates with the secret.
//! The short form (just the secret) also joins, but cannot check the CA. The hash is of
//! the exact bytes the server hands out as its CA (the `server-ca.crt` file's text).

use std::fmt;
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::files::{read, write_private};
use crate::{Error, Result, hex, random_bytes};

const PREFIX: &str = "K10";
/// The user name servers' tokens carry.
pub const SERVER_USER: &str = "server";

/// A parsed join token.
#[derive(Clone, PartialEq, Eq)]
pub struct JoinToken {
    /// Lower-case hex SHA-256 of the CA PEM, in the full form only.
    pub ca_hash: Option<String>,
    /// `server` for the server token.
    pub username: String,
    pub secret: String,
}

impl fmt::Debug for JoinToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinToken")
            .field("ca_hash", &self.ca_hash)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// The full form when the CA hash is known, else the bare secret.
impl fmt::Display for JoinToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.ca_hash {
            Some(hash) => write!(f, "{PREFIX}{hash}::{}:{}", self.username, self.secret),
            None => f.write_str(&self.secret),
        }
    }
}

impl JoinToken {
    /// A server token for `secret` pinned to `ca_pem`.
    pub fn new(ca_pem: impl AsRef<[u8]>, secret: impl Into<String>) -> Self {
        Self {
            ca_hash: Some(ca_hash(ca_pem)),
            username: SERVER_USER.into(),
            secret: secret.into(),
        }
    }

    /// Checks a CA received from a server against the token's hash. A short token
    /// carries no hash and accepts any CA: the caller decides whether to allow that.
    pub fn check_ca(&self, ca_pem: impl AsRef<[u8]>) -> Result<()> {
        match &self.ca_hash {
            Some(hash) if !ca_matches(ca_pem, hash) => Err(Error::Token(format!(
                "the server's CA does not match the token's hash {hash}"
            ))),
            _ => Ok(()),
        }
    }
}

/// Lower-case hex SHA-256 of the CA PEM bytes.
pub fn ca_hash(ca_pem: impl AsRef<[u8]>) -> String {
    hex(&Sha256::digest(ca_pem.as_ref()))
}

/// Whether `ca_pem` hashes to `hash` (hex, any case).
pub fn ca_matches(ca_pem: impl AsRef<[u8]>, hash: &str) -> bool {
    ca_hash(ca_pem).eq_ignore_ascii_case(hash.trim())
}

/// Parses `K10<hash>::<user>:<secret>` or a bare secret.
pub fn parse_join_token(token: &str) -> Result<JoinToken> {
    let token = token.trim();
    if token.is_empty() {
        return Err(Error::Token("empty token".into()));
    }
    if token.chars().any(char::is_whitespace) {
        return Err(Error::Token("token contains whitespace".into()));
    }
    let Some(rest) = token.strip_prefix(PREFIX).filter(|r| r.contains("::")) else {
        return Ok(JoinToken {
            ca_hash: None,
            username: SERVER_USER.into(),
            secret: token.to_string(),
        });
    };
    let (hash, credentials) = rest.split_once("::").unwrap_or((rest, ""));
    if hash.len() != 64 || !hash.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(Error::Token(
            "the CA hash after K10 must be 64 hex digits (sha256)".into(),
        ));
    }
    let Some((username, secret)) = credentials.split_once(':') else {
        return Err(Error::Token(
            "expected <user>:<secret> after the CA hash".into(),
        ));
    };
    if username.is_empty() || secret.is_empty() {
        return Err(Error::Token("empty user or secret in the token".into()));
    }
    Ok(JoinToken {
        ca_hash: Some(hash.to_ascii_lowercase()),
        username: username.to_string(),
        secret: secret.to_string(),
    })
}

/// Same as [`parse_join_token`].
pub fn parse(token: &str) -> Result<JoinToken> {
    parse_join_token(token)
}

/// A random secret: 16 bytes from the system's secure source, as 32 hex digits.
pub fn generate_secret() -> Result<String> {
    let mut bytes = [0u8; 16];
    random_bytes(&mut bytes)?;
    Ok(hex(&bytes))
}

/// The server token kept in `path` (0600), in full form. Generated on first use; a
/// stored short token, or one pinned to another CA, is rewritten with the current
/// CA's hash and the same secret, so agents already joined keep working.
pub fn ensure_server_token(path: &Path, ca_pem: &str) -> Result<String> {
    let stored = match read(path)? {
        Some(text) if !text.trim().is_empty() => {
            Some(parse_join_token(&text).map_err(|e| Error::BadFile {
                path: path.to_path_buf(),
                reason: e.to_string(),
            })?)
        }
        _ => None,
    };
    let current = ca_hash(ca_pem);
    let token = match stored {
        Some(t) if t.ca_hash.as_deref() == Some(current.as_str()) => return Ok(t.to_string()),
        Some(t) => JoinToken {
            ca_hash: Some(current),
            ..t
        },
        None => JoinToken::new(ca_pem, generate_secret()?),
    };
    let text = token.to_string();
    write_private(path, format!("{text}\n").as_bytes())?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::files::mode;

    #[test]
    fn server_token_is_generated_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server/token");
        let t = ensure_server_token(&path, "CA").unwrap();
        assert_eq!(mode(&path), 0o600);
        assert_eq!(ensure_server_token(&path, "CA").unwrap(), t, "reused");
        let parsed = parse_join_token(&t).unwrap();
        assert_eq!(parsed.ca_hash.as_deref(), Some(ca_hash("CA").as_str()));
        assert_eq!(parsed.username, "server");
        assert_eq!(parsed.secret.len(), 32);
        assert_eq!(parsed.to_string(), t);
        assert!(t.starts_with(&format!("K10{}::server:", ca_hash("CA"))));

        // A new CA keeps the secret and updates the hash.
        let t2 = ensure_server_token(&path, "CA2").unwrap();
        assert_eq!(parse_join_token(&t2).unwrap().secret, parsed.secret);
        assert!(parse_join_token(&t2).unwrap().check_ca("CA2").is_ok());
    }

    #[test]
    fn stored_short_token_is_upgraded_and_garbage_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "mysecret\n").unwrap();
        let t = ensure_server_token(&path, "CA").unwrap();
        assert_eq!(t, format!("K10{}::server:mysecret", ca_hash("CA")));
        std::fs::write(&path, "K10abc::server:x").unwrap();
        let err = ensure_server_token(&path, "CA").unwrap_err().to_string();
        assert!(err.contains(&path.display().to_string()), "{err}");
    }

    #[test]
    fn parses_both_forms() {
        let hash = ca_hash("PEM");
        let full =
            parse_join_token(&format!(" K10{}::node:s3cr:et\n", hash.to_uppercase())).unwrap();
        assert_eq!(full.ca_hash.as_deref(), Some(hash.as_str()));
        assert_eq!(
            (full.username.as_str(), full.secret.as_str()),
            ("node", "s3cr:et")
        );
        assert!(full.check_ca("PEM").is_ok());
        assert!(
            full.check_ca("OTHER")
                .unwrap_err()
                .to_string()
                .contains("does not match")
        );

        let short = parse_join_token("K10-looks-like-but-is-a-secret").unwrap();
        assert_eq!(
            (short.ca_hash, short.secret.as_str()),
            (None, "K10-looks-like-but-is-a-secret")
        );
        assert!(parse("plain").unwrap().check_ca("anything").is_ok());

        for bad in [
            "",
            "  ",
            "K10abc::server:x",
            &format!("K10{hash}::server"),
            &format!("K10{hash}::server:"),
            &format!("K10{hash}:::x"),
            "two words",
        ] {
            assert!(parse_join_token(bad).is_err(), "{bad:?}");
        }
        assert!(ca_matches("PEM", &hash.to_uppercase()));
        assert!(!format!("{full:?}").contains("s3cr"));
    }
}
