//! k3s's pass-through flags (`--kube-apiserver-arg`, `--kube-controller-manager-arg`):
//! `key=value` settings named as the upstream component's own flags. Only the keys
//! k8rs implements are accepted; anything else is refused by name rather than ignored.

use std::time::Duration;

use anyhow::{Context, Result, bail};

/// The settings one pass-through flag was given, in order.
pub struct ComponentArgs {
    flag: &'static str,
    pairs: Vec<(String, String)>,
}

impl ComponentArgs {
    /// Parses `key=value` items (a leading `--` on the key is allowed, as k3s allows),
    /// refusing keys not in `supported`.
    pub fn parse(flag: &'static str, items: &[String], supported: &[&str]) -> Result<Self> {
        let mut pairs = Vec::new();
        for item in items {
            let Some((key, value)) = item.split_once('=') else {
                bail!("--{flag} {item}: expected key=value");
            };
            let key = key.trim_start_matches("--");
            if !supported.contains(&key) {
                bail!(
                    "--{flag} {key}: not supported by k8rs; supported: {}",
                    supported.join(", ")
                );
            }
            pairs.push((key.to_string(), value.to_string()));
        }
        Ok(Self { flag, pairs })
    }

    /// The last value given for `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn duration(&self, key: &str) -> Result<Option<Duration>> {
        self.get(key)
            .map(|v| parse_duration(v).with_context(|| format!("--{} {key}={v}", self.flag)))
            .transpose()
    }

    pub fn number<T: std::str::FromStr>(&self, key: &str) -> Result<Option<T>>
    where
        T::Err: std::error::Error + Send + Sync + 'static,
    {
        self.get(key)
            .map(|v| {
                v.parse()
                    .with_context(|| format!("--{} {key}={v}", self.flag))
            })
            .transpose()
    }
}

/// A Go duration (`40s`, `1m30s`, `500ms`, `2h`), as upstream's flags take them.
pub fn parse_duration(s: &str) -> Result<Duration> {
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    let mut total = Duration::ZERO;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, tail) = rest.split_at(digits);
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let value: f64 = number
            .parse()
            .with_context(|| format!("invalid duration {s:?}"))?;
        let seconds = match unit {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => bail!("invalid duration {s:?}: unknown unit {unit:?} (use ms, s, m or h)"),
        };
        total += Duration::from_secs_f64(value * seconds);
        rest = tail;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(parse_duration("40s").unwrap(), Duration::from_secs(40));
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("10").is_err());
    }

    #[test]
    fn unknown_keys_are_named() {
        let items = vec!["node-monitor-grace-period=20s".into(), "bogus=1".into()];
        let err = ComponentArgs::parse(
            "kube-controller-manager-arg",
            &items,
            &["node-monitor-grace-period"],
        )
        .err()
        .unwrap();
        assert!(
            err.to_string()
                .contains("--kube-controller-manager-arg bogus"),
            "{err}"
        );
        let ok = ComponentArgs::parse("x", &["--a=1".into(), "a=2".into()], &["a"]).unwrap();
        assert_eq!(ok.get("a"), Some("2"));
    }
}
