//! Admission that fills in what upstream's plugins add to every new pod: the
//! `default` service account and its token volume (ServiceAccount), the 300 s
//! not-ready/unreachable tolerations (DefaultTolerationSeconds), and the priority of
//! its priority class (Priority).

use async_trait::async_trait;
use serde_json::{Value, json};

use super::node_restriction::MIRROR_ANNOTATION;
use super::{Operation, Plugin, Request};
use crate::error::ApiError;

/// Upstream's default for both tolerations (`--default-not-ready-toleration-seconds`).
pub const DEFAULT_TOLERATION_SECONDS: i64 = 300;

/// How long new pods tolerate a not-ready or unreachable node before eviction
/// (`--default-not-ready-toleration-seconds`, `--default-unreachable-toleration-seconds`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TolerationDefaults {
    pub not_ready: i64,
    pub unreachable: i64,
}

impl Default for TolerationDefaults {
    fn default() -> Self {
        Self {
            not_ready: DEFAULT_TOLERATION_SECONDS,
            unreachable: DEFAULT_TOLERATION_SECONDS,
        }
    }
}

#[derive(Default)]
pub struct PodDefaults {
    pub tolerations: TolerationDefaults,
}

fn is_pod_create(req: &Request<'_>) -> bool {
    req.operation == Operation::Create
        && req.subresource.is_none()
        && req.info.group.is_empty()
        && req.info.plural == "pods"
}

#[async_trait]
impl Plugin for PodDefaults {
    fn name(&self) -> &'static str {
        "PodDefaults"
    }

    async fn admit(&self, req: &mut Request<'_>) -> Result<(), ApiError> {
        if !is_pod_create(req) {
            return Ok(());
        }
        let mirror = req.object["metadata"]["annotations"]
            .get(MIRROR_ANNOTATION)
            .is_some();
        if mirror && let Some(why) = mirror_refusal(req.object) {
            let name = req.object["metadata"]["name"].as_str().unwrap_or_default();
            return Err(ApiError::forbidden(req.info, name, why));
        }
        let spec = req.object["spec"]
            .as_object_mut()
            .ok_or_else(|| ApiError::bad_request("pod has no spec"))?;
        // A mirror pod shows a kubelet's static pod as it is: no account, no token.
        if !mirror {
            service_account(spec);
        }
        tolerations(spec, self.tolerations);
        Ok(())
    }
}

/// Why upstream's ServiceAccount admission refuses a mirror pod: a static pod runs
/// without the API, so it may not depend on API credentials.
fn mirror_refusal(pod: &Value) -> Option<&'static str> {
    let spec = &pod["spec"];
    let named = |v: &Value| v.as_str().is_some_and(|s| !s.is_empty());
    if named(&spec["serviceAccountName"]) || named(&spec["serviceAccount"]) {
        return Some("a mirror pod may not reference service accounts");
    }
    let list = |v: &Value| v.as_array().cloned().unwrap_or_default();
    let volumes = list(&spec["volumes"]);
    let sources: Vec<Value> = volumes
        .iter()
        .flat_map(|v| list(&v["projected"]["sources"]))
        .collect();
    let containers: Vec<Value> = ["containers", "initContainers", "ephemeralContainers"]
        .iter()
        .flat_map(|k| list(&spec[*k]))
        .collect();
    let secrets = !list(&spec["imagePullSecrets"]).is_empty()
        || volumes.iter().any(|v| v.get("secret").is_some())
        || sources.iter().any(|s| s.get("secret").is_some())
        || containers.iter().any(|c| {
            list(&c["env"])
                .iter()
                .any(|e| e["valueFrom"].get("secretKeyRef").is_some())
                || list(&c["envFrom"])
                    .iter()
                    .any(|e| e.get("secretRef").is_some())
        });
    if secrets {
        return Some("a mirror pod may not reference secrets");
    }
    if sources
        .iter()
        .any(|s| s.get("serviceAccountToken").is_some())
    {
        return Some("a mirror pod may not use ServiceAccountToken volume projections");
    }
    None
}

/// ServiceAccount admission: `serviceAccountName` defaults to `default`, and unless
/// automount is off, a projected token volume is mounted at the well-known path.
fn service_account(spec: &mut serde_json::Map<String, Value>) {
    let name = spec
        .get("serviceAccountName")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .or_else(|| {
            spec.get("serviceAccount")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
        })
        .unwrap_or("default")
        .to_string();
    spec.insert("serviceAccountName".into(), json!(name));
    spec.insert("serviceAccount".into(), json!(name));
    if spec
        .get("automountServiceAccountToken")
        .and_then(Value::as_bool)
        == Some(false)
    {
        return;
    }
    const MOUNT: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
    let volume_name = format!("kube-api-access-{}", random_suffix());
    let already_mounted = ["containers", "initContainers"].iter().any(|k| {
        spec.get(*k)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .any(|c| {
                c["volumeMounts"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|m| m["mountPath"] == MOUNT)
            })
    });
    if already_mounted {
        return;
    }
    let volume = json!({
        "name": volume_name,
        "projected": {
            "defaultMode": 420,
            "sources": [
                {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
            ],
        },
    });
    let volumes = spec.entry("volumes").or_insert_with(|| json!([]));
    if let Some(v) = volumes.as_array_mut() {
        v.push(volume);
    }
    for key in ["containers", "initContainers"] {
        for c in spec
            .get_mut(key)
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
        {
            let mounts = c
                .as_object_mut()
                .map(|o| o.entry("volumeMounts").or_insert_with(|| json!([])));
            if let Some(Value::Array(m)) = mounts {
                m.push(json!({"name": volume_name, "readOnly": true, "mountPath": MOUNT}));
            }
        }
    }
}

/// DefaultTolerationSeconds: tolerate not-ready and unreachable nodes for a while (300 s
/// by default) unless the pod says otherwise.
fn tolerations(spec: &mut serde_json::Map<String, Value>, defaults: TolerationDefaults) {
    let list = spec.entry("tolerations").or_insert_with(|| json!([]));
    let Some(list) = list.as_array_mut() else {
        return;
    };
    for (key, seconds) in [
        ("node.kubernetes.io/not-ready", defaults.not_ready),
        ("node.kubernetes.io/unreachable", defaults.unreachable),
    ] {
        let covered = list.iter().any(|t| {
            let effect_ok = t["effect"]
                .as_str()
                .is_none_or(|e| e.is_empty() || e == "NoExecute");
            let key_ok = t["key"].as_str().is_none_or(|k| k.is_empty() || k == key);
            effect_ok && key_ok && (t["key"].as_str() == Some(key) || t["operator"] == "Exists")
        });
        if !covered {
            list.push(json!({
                "key": key,
                "operator": "Exists",
                "effect": "NoExecute",
                "tolerationSeconds": seconds,
            }));
        }
    }
}

fn random_suffix() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = rand::rng();
    (0..5)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirror_pods_may_not_use_api_credentials() {
        let pod = |spec: Value| json!({"metadata": {"name": "m"}, "spec": spec});
        let plain = json!({"containers": [{"name": "c", "image": "busybox"}]});
        assert_eq!(mirror_refusal(&pod(plain)), None);
        let account = json!({"serviceAccountName": "default", "containers": []});
        assert_eq!(
            mirror_refusal(&pod(account)),
            Some("a mirror pod may not reference service accounts")
        );
        let env = json!({"containers": [{"name": "c", "env": [
            {"name": "X", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]}]});
        assert_eq!(
            mirror_refusal(&pod(env)),
            Some("a mirror pod may not reference secrets")
        );
        let token = json!({"volumes": [{"name": "t", "projected": {"sources": [
            {"serviceAccountToken": {"path": "token"}}]}}], "containers": []});
        assert_eq!(
            mirror_refusal(&pod(token)),
            Some("a mirror pod may not use ServiceAccountToken volume projections")
        );
    }

    #[test]
    fn adds_account_volume_and_tolerations() {
        let mut pod = json!({"containers": [{"name": "c", "image": "busybox"}]});
        let spec = pod.as_object_mut().unwrap();
        service_account(spec);
        tolerations(spec, TolerationDefaults::default());
        assert_eq!(pod["serviceAccountName"], "default");
        assert_eq!(
            pod["containers"][0]["volumeMounts"][0]["mountPath"],
            "/var/run/secrets/kubernetes.io/serviceaccount"
        );
        assert_eq!(pod["tolerations"].as_array().unwrap().len(), 2);
        assert_eq!(pod["tolerations"][0]["tolerationSeconds"], 300);
    }

    #[test]
    fn respects_automount_false_and_own_tolerations() {
        let mut pod = json!({
            "automountServiceAccountToken": false,
            "containers": [{"name": "c"}],
            "tolerations": [{"operator": "Exists"}],
        });
        let spec = pod.as_object_mut().unwrap();
        service_account(spec);
        tolerations(spec, TolerationDefaults::default());
        assert!(pod.get("volumes").is_none());
        assert_eq!(pod["tolerations"].as_array().unwrap().len(), 1);
    }
}
