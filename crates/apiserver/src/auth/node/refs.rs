//! What stored objects name, read from their JSON as the graph needs it: the secrets,
//! configmaps, claims and service account of a pod (upstream's pod visitors: image
//! pull secrets, env and envFrom of every container kind, volumes and projected
//! sources, generic ephemeral volumes' claims), the secrets and claim of a
//! PersistentVolume.

use serde_json::Value;

use super::graph::{Kind, NsName};

fn name_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    let mut cur = v;
    for p in path {
        cur = cur.get(p)?;
    }
    cur.as_str().filter(|s| !s.is_empty())
}

fn items<'a>(v: &'a Value, key: &str) -> impl Iterator<Item = &'a Value> {
    v.get(key).and_then(Value::as_array).into_iter().flatten()
}

/// The node a pod is bound to ("" if none) and the objects it names.
pub fn pod(pod: &Value) -> (String, Vec<(Kind, String)>) {
    let mut out = Vec::new();
    let mut add = |kind, name: Option<&str>| {
        if let Some(n) = name {
            out.push((kind, n.to_string()));
        }
    };
    let pod_name = name_at(pod, &["metadata", "name"]).unwrap_or_default();
    let Some(spec) = pod.get("spec") else {
        return (String::new(), Vec::new());
    };
    let node = name_at(spec, &["nodeName"]).unwrap_or_default().to_string();
    add(Kind::ServiceAccount, name_at(spec, &["serviceAccountName"]));
    for s in items(spec, "imagePullSecrets") {
        add(Kind::Secret, name_at(s, &["name"]));
    }
    for list in ["containers", "initContainers", "ephemeralContainers"] {
        for c in items(spec, list) {
            for e in items(c, "envFrom") {
                add(Kind::Secret, name_at(e, &["secretRef", "name"]));
                add(Kind::ConfigMap, name_at(e, &["configMapRef", "name"]));
            }
            for e in items(c, "env") {
                let from = e.get("valueFrom").unwrap_or(&Value::Null);
                add(Kind::Secret, name_at(from, &["secretKeyRef", "name"]));
                add(Kind::ConfigMap, name_at(from, &["configMapKeyRef", "name"]));
            }
        }
    }
    for vol in items(spec, "volumes") {
        add(Kind::Secret, name_at(vol, &["secret", "secretName"]));
        add(Kind::ConfigMap, name_at(vol, &["configMap", "name"]));
        add(
            Kind::Claim,
            name_at(vol, &["persistentVolumeClaim", "claimName"]),
        );
        add(Kind::Secret, name_at(vol, &["azureFile", "secretName"]));
        add(
            Kind::Secret,
            name_at(vol, &["csi", "nodePublishSecretRef", "name"]),
        );
        if let Some(sources) = vol.get("projected") {
            for src in items(sources, "sources") {
                add(Kind::Secret, name_at(src, &["secret", "name"]));
                add(Kind::ConfigMap, name_at(src, &["configMap", "name"]));
            }
        }
        // The in-tree plugins that take a secret (cephfs, cinder, flexVolume, iscsi,
        // rbd, scaleIO, storageos) all call it `secretRef`.
        if let Some(sources) = vol.as_object() {
            for src in sources.values() {
                add(Kind::Secret, name_at(src, &["secretRef", "name"]));
            }
        }
        if vol.get("ephemeral").is_some()
            && let Some(v) = name_at(vol, &["name"])
        {
            // A generic ephemeral volume's claim is named after the pod and volume.
            add(Kind::Claim, Some(&format!("{pod_name}-{v}")));
        }
    }
    (node, out)
}

/// A PersistentVolume's claim (`spec.claimRef`) and the secrets it names.
pub fn volume(pv: &Value) -> (Option<NsName>, Vec<NsName>) {
    let Some(spec) = pv.get("spec") else {
        return (None, Vec::new());
    };
    let claim_ns = name_at(spec, &["claimRef", "namespace"]);
    let claim = claim_ns
        .zip(name_at(spec, &["claimRef", "name"]))
        .map(|(ns, n)| (ns.to_string(), n.to_string()));
    let mut secrets = Vec::new();
    let mut add = |r: Option<&Value>, ns_key: &str| {
        let Some(r) = r else { return };
        let Some(name) = name_at(r, &["name"]) else {
            return;
        };
        // A reference without a namespace means the claim's (upstream's default for
        // the plugins that allow it), else "default".
        let ns = name_at(r, &[ns_key]).or(claim_ns).unwrap_or("default");
        secrets.push((ns.to_string(), name.to_string()));
    };
    if let Some(csi) = spec.get("csi") {
        for key in [
            "controllerPublishSecretRef",
            "nodeStageSecretRef",
            "nodePublishSecretRef",
            "controllerExpandSecretRef",
            "nodeExpandSecretRef",
        ] {
            add(csi.get(key), "namespace");
        }
    }
    if let Some(spec) = spec.as_object() {
        for src in spec.values() {
            add(src.get("secretRef"), "namespace");
        }
    }
    if let Some(af) = spec.get("azureFile")
        && let Some(name) = name_at(af, &["secretName"])
    {
        let ns = name_at(af, &["secretNamespace"]).unwrap_or("default");
        secrets.push((ns.to_string(), name.to_string()));
    }
    (claim, secrets)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_pod_names_what_its_containers_and_volumes_use() {
        let p = json!({
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {
                "nodeName": "n1",
                "serviceAccountName": "builder",
                "imagePullSecrets": [{"name": "pull"}],
                "initContainers": [{"envFrom": [{"configMapRef": {"name": "init-env"}}]}],
                "containers": [{
                    "env": [
                        {"name": "A", "value": "x"},
                        {"name": "B", "valueFrom": {"secretKeyRef": {"name": "db", "key": "k"}}},
                        {"name": "C", "valueFrom": {"configMapKeyRef": {"name": "conf", "key": "k"}}},
                    ],
                    "envFrom": [{"secretRef": {"name": "env-secret"}}],
                }],
                "ephemeralContainers": [{"envFrom": [{"secretRef": {"name": "debug"}}]}],
                "volumes": [
                    {"name": "s", "secret": {"secretName": "certs"}},
                    {"name": "c", "configMap": {"name": "files"}},
                    {"name": "d", "persistentVolumeClaim": {"claimName": "data"}},
                    {"name": "p", "projected": {"sources": [
                        {"secret": {"name": "proj-s"}},
                        {"configMap": {"name": "proj-c"}},
                        {"serviceAccountToken": {"path": "token"}},
                    ]}},
                    {"name": "r", "rbd": {"secretRef": {"name": "ceph"}}},
                    {"name": "e", "ephemeral": {"volumeClaimTemplate": {}}},
                ],
            },
        });
        let (node, mut got) = pod(&p);
        assert_eq!(node, "n1");
        got.sort();
        let want: Vec<(Kind, String)> = [
            (Kind::Secret, "ceph"),
            (Kind::Secret, "certs"),
            (Kind::Secret, "db"),
            (Kind::Secret, "debug"),
            (Kind::Secret, "env-secret"),
            (Kind::Secret, "proj-s"),
            (Kind::Secret, "pull"),
            (Kind::ConfigMap, "conf"),
            (Kind::ConfigMap, "files"),
            (Kind::ConfigMap, "init-env"),
            (Kind::ConfigMap, "proj-c"),
            (Kind::Claim, "data"),
            (Kind::Claim, "web-e"),
            (Kind::ServiceAccount, "builder"),
        ]
        .into_iter()
        .map(|(k, n)| (k, n.to_string()))
        .collect();
        assert_eq!(got, want);
        assert_eq!(
            pod(&json!({"metadata": {"name": "x"}})),
            (String::new(), vec![])
        );
    }

    #[test]
    fn a_volume_names_its_claim_and_secrets() {
        let pv = json!({"spec": {
            "claimRef": {"namespace": "ns", "name": "data"},
            "csi": {
                "driver": "d",
                "nodePublishSecretRef": {"name": "pub", "namespace": "creds"},
                "nodeStageSecretRef": {"name": "stage", "namespace": "creds"},
            },
            "cephfs": {"monitors": [], "secretRef": {"name": "ceph"}},
        }});
        let (claim, mut secrets) = volume(&pv);
        assert_eq!(claim, Some(("ns".into(), "data".into())));
        secrets.sort();
        assert_eq!(
            secrets,
            vec![
                ("creds".to_string(), "pub".to_string()),
                ("creds".to_string(), "stage".to_string()),
                ("ns".to_string(), "ceph".to_string()),
            ]
        );
        assert_eq!(volume(&json!({"spec": {}})), (None, vec![]));
    }
}
