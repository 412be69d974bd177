//! configMap and secret volumes (and projected sources): the object's keys as files,
//! mapped through `items` (key → path, mode) as upstream's MakePayload does.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap, KeyToPath, Secret};
use kube::Api;

use super::atomic::{File, Payload};

/// Upstream's default file mode for API-data volumes (0644).
pub const DEFAULT_MODE: i32 = 0o644;

/// Which kind of object a payload comes from, for upstream's messages.
#[derive(Clone, Copy)]
pub enum Kind {
    ConfigMap,
    Secret,
}

/// The files of one object: every key when `items` is empty, else each item's key at
/// its path (a missing key fails unless `optional`).
pub fn make(
    kind: Kind,
    items: &[KeyToPath],
    data: &BTreeMap<String, Vec<u8>>,
    default_mode: i32,
    optional: bool,
) -> Result<Payload, String> {
    let mode = |m: Option<i32>| m.unwrap_or(default_mode) as u32;
    if items.is_empty() {
        return Ok(data
            .iter()
            .map(|(k, v)| {
                let file = File {
                    data: v.clone(),
                    mode: mode(None),
                    owner: None,
                };
                (k.clone(), file)
            })
            .collect());
    }
    let mut out = Payload::new();
    for item in items {
        let Some(v) = data.get(&item.key) else {
            if optional {
                continue;
            }
            return Err(match kind {
                Kind::ConfigMap => {
                    format!("configmap references non-existent config key: {}", item.key)
                }
                Kind::Secret => format!("references non-existent secret key: {}", item.key),
            });
        };
        let file = File {
            data: v.clone(),
            mode: mode(item.mode),
            owner: None,
        };
        out.insert(item.path.clone(), file);
    }
    Ok(out)
}

/// A configMap's data and binaryData; `None` when it does not exist. The error reads
/// like upstream's kubelet object cache: `configmap "x" not found`.
pub async fn config_map(
    client: &kube::Client,
    ns: &str,
    name: &str,
    optional: bool,
) -> Result<BTreeMap<String, Vec<u8>>, String> {
    let cm = Api::<ConfigMap>::namespaced(client.clone(), ns)
        .get_opt(name)
        .await
        .map_err(|e| e.to_string())?;
    let Some(cm) = cm else {
        return if optional {
            Ok(BTreeMap::new())
        } else {
            Err(format!("configmap {name:?} not found"))
        };
    };
    let mut data: BTreeMap<String, Vec<u8>> = cm
        .data
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.into_bytes()))
        .collect();
    for (k, v) in cm.binary_data.unwrap_or_default() {
        data.insert(k, v.0);
    }
    Ok(data)
}

/// A secret's data; as [`config_map`].
pub async fn secret(
    client: &kube::Client,
    ns: &str,
    name: &str,
    optional: bool,
) -> Result<BTreeMap<String, Vec<u8>>, String> {
    let s = Api::<Secret>::namespaced(client.clone(), ns)
        .get_opt(name)
        .await
        .map_err(|e| e.to_string())?;
    let Some(s) = s else {
        return if optional {
            Ok(BTreeMap::new())
        } else {
            Err(format!("secret {name:?} not found"))
        };
    };
    let mut data: BTreeMap<String, Vec<u8>> = s
        .string_data
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.into_bytes()))
        .collect();
    for (k, v) in s.data.unwrap_or_default() {
        data.insert(k, v.0);
    }
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data() -> BTreeMap<String, Vec<u8>> {
        BTreeMap::from([("a".into(), b"1".to_vec()), ("b".into(), b"2".to_vec())])
    }

    fn item(key: &str, path: &str, mode: Option<i32>) -> KeyToPath {
        KeyToPath {
            key: key.into(),
            path: path.into(),
            mode,
        }
    }

    #[test]
    fn every_key_with_the_default_mode() {
        let p = make(Kind::ConfigMap, &[], &data(), DEFAULT_MODE, false).unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(p["a"].data, b"1");
        assert_eq!(p["b"].mode, 0o644);
    }

    #[test]
    fn items_map_keys_to_paths_and_modes() {
        let items = [
            item("a", "dir/first", Some(0o400)),
            item("b", "second", None),
        ];
        let p = make(Kind::Secret, &items, &data(), 0o640, false).unwrap();
        assert_eq!(p.keys().collect::<Vec<_>>(), ["dir/first", "second"]);
        assert_eq!(p["dir/first"].mode, 0o400);
        assert_eq!(p["second"].mode, 0o640);
    }

    #[test]
    fn missing_keys_fail_unless_optional() {
        let items = [item("zz", "z", None), item("a", "a", None)];
        assert_eq!(
            make(Kind::ConfigMap, &items, &data(), 0o644, false).unwrap_err(),
            "configmap references non-existent config key: zz"
        );
        assert_eq!(
            make(Kind::Secret, &items, &data(), 0o644, false).unwrap_err(),
            "references non-existent secret key: zz"
        );
        let p = make(Kind::Secret, &items, &data(), 0o644, true).unwrap();
        assert_eq!(p.keys().collect::<Vec<_>>(), ["a"]);
    }
}
