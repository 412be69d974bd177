//! Static bearer tokens (upstream's `--token-auth-file`), checked in constant time.
//!
//! Tokens are not kept: each is stored as an HMAC-SHA256 tag under a key made at
//! start, and a presented token is checked with ring's constant-time tag comparison,
//! so neither its content nor its length leaks through timing.

use std::fmt;
use std::path::Path;

use ring::hmac;

use crate::files::read;
use crate::{Error, Result};

/// The user a static token stands for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TokenUser {
    pub name: String,
    pub uid: String,
    pub groups: Vec<String>,
}

/// A set of static tokens.
pub struct StaticTokens {
    key: hmac::Key,
    entries: Vec<(hmac::Tag, TokenUser)>,
}

impl fmt::Debug for StaticTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaticTokens")
            .field("tokens", &self.entries.len())
            .finish()
    }
}

fn new_key() -> Result<hmac::Key> {
    hmac::Key::generate(hmac::HMAC_SHA256, &ring::rand::SystemRandom::new())
        .map_err(|_| Error::Crypto("system random source unavailable"))
}

/// Whether `a == b`, in time that depends on neither's content nor length.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    match new_key() {
        Ok(key) => hmac::verify(&key, b, hmac::sign(&key, a).as_ref()).is_ok(),
        Err(_) => false,
    }
}

impl StaticTokens {
    /// Tokens and their users; empty tokens are skipped and a repeated token keeps its
    /// last user, as upstream's token file does.
    pub fn new(entries: impl IntoIterator<Item = (String, TokenUser)>) -> Result<Self> {
        let key = new_key()?;
        let mut out: Vec<(hmac::Tag, TokenUser)> = Vec::new();
        for (token, user) in entries {
            if token.is_empty() {
                continue;
            }
            let tag = hmac::sign(&key, token.as_bytes());
            out.retain(|(t, _)| t.as_ref() != tag.as_ref());
            out.push((tag, user));
        }
        Ok(Self { key, entries: out })
    }

    /// Parses upstream's token file: CSV lines `token,user,uid[,"group1,group2"]`.
    pub fn from_csv(text: &str) -> Result<Self> {
        let mut entries = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.strip_suffix('\r').unwrap_or(line);
            if line.is_empty() {
                continue;
            }
            let record = csv_record(line)
                .ok_or_else(|| Error::Token(format!("line {}: unterminated quote", n + 1)))?;
            if record.len() < 3 {
                return Err(Error::Token(format!(
                    "token file must have at least 3 columns (token, user name, user uid), found {}",
                    record.len()
                )));
            }
            let groups = record
                .get(3)
                .map(|g| g.split(',').map(str::to_string).collect())
                .unwrap_or_default();
            let mut fields = record.into_iter();
            let token = fields.next().unwrap_or_default();
            let name = fields.next().unwrap_or_default();
            let uid = fields.next().unwrap_or_default();
            entries.push((token, TokenUser { name, uid, groups }));
        }
        Self::new(entries)
    }

    /// Reads a token file; errors name it.
    pub fn load(path: &Path) -> Result<Self> {
        let text = read(path)?.ok_or_else(|| Error::Io {
            path: path.to_path_buf(),
            source: std::io::ErrorKind::NotFound.into(),
        })?;
        Self::from_csv(&text).map_err(|e| Error::BadFile {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })
    }

    /// The user of `token`, if it is one of ours.
    pub fn authenticate(&self, token: &str) -> Option<&TokenUser> {
        // Check every entry so the time taken does not say which one matched.
        let mut found = None;
        for (tag, user) in &self.entries {
            if hmac::verify(&self.key, token.as_bytes(), tag.as_ref()).is_ok() {
                found = Some(user);
            }
        }
        found
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// One CSV record (RFC 4180 quoting, on one line); `None` on an unterminated quote.
fn csv_record(line: &str) -> Option<Vec<String>> {
    let mut fields = vec![String::new()];
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        let field = fields.last_mut()?;
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (false, '"') if field.is_empty() => quoted = true,
            (false, ',') => fields.push(String::new()),
            (_, c) => field.push(c),
        }
    }
    (!quoted).then_some(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_upstreams_token_file() {
        let tokens = StaticTokens::from_csv(
            "t1,alice,1\n\nt2,bob,2,\"dev,ops\"\n,skipped,3\nt1,carol,4,\"say \"\"hi\"\"\"\r\n",
        )
        .unwrap();
        assert_eq!(tokens.len(), 2);
        assert_eq!(
            tokens.authenticate("t2"),
            Some(&TokenUser {
                name: "bob".into(),
                uid: "2".into(),
                groups: vec!["dev".into(), "ops".into()],
            })
        );
        let carol = tokens.authenticate("t1").unwrap();
        assert_eq!(
            (carol.name.as_str(), carol.groups.as_slice()),
            ("carol", &["say \"hi\"".to_string()][..])
        );
        assert_eq!(tokens.authenticate("t3"), None);
        assert_eq!(tokens.authenticate(""), None);
        assert_eq!(tokens.authenticate("t1 "), None);

        let err = StaticTokens::from_csv("t,only-two\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("at least 3 columns"), "{err}");
        assert!(StaticTokens::from_csv("\"t,a,b\n").is_err());
        assert!(!format!("{tokens:?}").contains("t1"));
    }

    #[test]
    fn load_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.csv");
        assert!(
            StaticTokens::load(&path)
                .unwrap_err()
                .to_string()
                .contains("tokens.csv")
        );
        std::fs::write(&path, "x\n").unwrap();
        assert!(
            StaticTokens::load(&path)
                .unwrap_err()
                .to_string()
                .contains("tokens.csv")
        );
        std::fs::write(&path, "x,y,z\n").unwrap();
        assert_eq!(
            StaticTokens::load(&path)
                .unwrap()
                .authenticate("x")
                .unwrap()
                .name,
            "y"
        );
    }

    #[test]
    fn constant_time_comparison() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
        assert!(constant_time_eq(b"", b""));
    }
}
