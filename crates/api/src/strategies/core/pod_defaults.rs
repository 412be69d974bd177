//! Upstream's core/v1 defaulting of pod specs (`SetDefaults_PodSpec`, `_Container`,
//! `_Probe`, `_Volume` …), shared by pods and every pod template.

use serde_json::{Value, json};

use crate::strategies::util::{child, default_field, each_mut, existing, is_unset};

/// `SetDefaults_Pod`: the pod spec, plus what only pods (not templates) get.
pub fn default_pod(pod: &mut Value) {
    let Some(spec) = child(pod, "spec") else {
        return;
    };
    default_pod_spec(spec);
    default_field(spec, "enableServiceLinks", json!(true));
    for key in ["containers", "initContainers"] {
        each_mut(spec, key, requests_from_limits);
    }
}

/// A pod template (`spec.template` of the workload types): its spec when present.
pub fn default_template(template: &mut Value) {
    if let Some(spec) = existing(template, "spec") {
        default_pod_spec(spec);
    }
}

/// `SetDefaults_PodSpec` and everything nested in it.
pub fn default_pod_spec(spec: &mut Value) {
    default_field(spec, "dnsPolicy", json!("ClusterFirst"));
    default_field(spec, "restartPolicy", json!("Always"));
    default_field(spec, "securityContext", json!({}));
    default_field(spec, "terminationGracePeriodSeconds", json!(30));
    default_field(spec, "schedulerName", json!("default-scheduler"));
    let host_network = spec["hostNetwork"].as_bool() == Some(true);
    for key in ["containers", "initContainers", "ephemeralContainers"] {
        each_mut(spec, key, |c| default_container(c, host_network));
    }
    each_mut(spec, "volumes", default_volume);
}

/// `SetDefaults_Container` with its ports, probes, lifecycle handlers and env.
fn default_container(c: &mut Value, host_network: bool) {
    if !c.is_object() {
        return;
    }
    default_field(c, "terminationMessagePath", json!("/dev/termination-log"));
    default_field(c, "terminationMessagePolicy", json!("File"));
    if is_unset(c.get("imagePullPolicy")) {
        let image = c["image"].as_str().unwrap_or_default();
        let policy = if image_tag(image).as_deref() == Some("latest") {
            "Always"
        } else {
            "IfNotPresent"
        };
        c["imagePullPolicy"] = json!(policy);
    }
    default_field(c, "resources", json!({}));
    each_mut(c, "ports", |p| {
        default_field(p, "protocol", json!("TCP"));
        if host_network && p["hostPort"].as_i64().unwrap_or(0) == 0 {
            let port = p["containerPort"].clone();
            if let Some(o) = p.as_object_mut() {
                o.insert("hostPort".into(), port);
            }
        }
    });
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(p) = existing(c, probe) {
            default_field(p, "timeoutSeconds", json!(1));
            default_field(p, "periodSeconds", json!(10));
            default_field(p, "successThreshold", json!(1));
            default_field(p, "failureThreshold", json!(3));
            default_handler(p);
        }
    }
    if let Some(l) = existing(c, "lifecycle") {
        for hook in ["postStart", "preStop"] {
            if let Some(h) = existing(l, hook) {
                default_handler(h);
            }
        }
    }
    each_mut(c, "env", |e| {
        if let Some(from) = existing(e, "valueFrom") {
            default_field_selectors(from);
        }
    });
}

/// `SetDefaults_HTTPGetAction`: path `/`, scheme HTTP.
fn default_handler(h: &mut Value) {
    if let Some(get) = existing(h, "httpGet") {
        default_field(get, "path", json!("/"));
        default_field(get, "scheme", json!("HTTP"));
    }
}

/// `fieldRef.apiVersion` v1, and the zero `resourceFieldRef.divisor` upstream prints.
fn default_field_selectors(source: &mut Value) {
    if let Some(f) = existing(source, "fieldRef") {
        default_field(f, "apiVersion", json!("v1"));
    }
    if let Some(r) = existing(source, "resourceFieldRef") {
        default_field(r, "divisor", json!("0"));
    }
}

/// `SetDefaults_Volume` and the defaults of each volume source.
fn default_volume(v: &mut Value) {
    let Some(o) = v.as_object() else { return };
    if o.keys().all(|k| k == "name") {
        v["emptyDir"] = json!({});
        return;
    }
    for source in ["secret", "configMap", "downwardAPI", "projected"] {
        if let Some(s) = existing(v, source) {
            default_field(s, "defaultMode", json!(420));
        }
    }
    if let Some(d) = existing(v, "downwardAPI") {
        each_mut(d, "items", default_field_selectors);
    }
    if let Some(p) = existing(v, "projected") {
        each_mut(p, "sources", |s| {
            if let Some(d) = existing(s, "downwardAPI") {
                each_mut(d, "items", default_field_selectors);
            }
        });
    }
    if let Some(h) = existing(v, "hostPath")
        && h.get("type").is_none()
    {
        h["type"] = json!("");
    }
    if let Some(i) = existing(v, "iscsi") {
        default_field(i, "iscsiInterface", json!("default"));
    }
    if let Some(r) = existing(v, "rbd") {
        default_field(r, "pool", json!("rbd"));
        default_field(r, "user", json!("admin"));
        default_field(r, "keyring", json!("/etc/ceph/keyring"));
    }
    if let Some(spec) = v
        .pointer_mut("/ephemeral/volumeClaimTemplate/spec")
        .filter(|s| s.is_object())
    {
        default_field(spec, "volumeMode", json!("Filesystem"));
    }
}

/// Limits without a request set the request (pods only).
fn requests_from_limits(c: &mut Value) {
    let Some(limits) = c.pointer("/resources/limits").and_then(Value::as_object) else {
        return;
    };
    let limits = limits.clone();
    let Some(resources) = child(c, "resources") else {
        return;
    };
    let Some(requests) = child(resources, "requests").and_then(Value::as_object_mut) else {
        return;
    };
    for (k, v) in limits {
        requests.entry(k).or_insert(v);
    }
}

/// The tag of an image reference as upstream's `ParseImageName` sees it: `latest` when
/// neither tag nor digest is given, `None` for a digest without tag.
pub fn image_tag(image: &str) -> Option<String> {
    let (name, digest) = match image.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (image, None),
    };
    let last = name.rsplit('/').next().unwrap_or(name);
    match last.split_once(':') {
        Some((_, tag)) => Some(tag.to_string()),
        None if digest.is_none() => Some("latest".to_string()),
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_defaults() {
        let mut pod = json!({"spec": {
            "containers": [{
                "name": "a", "image": "nginx",
                "ports": [{"containerPort": 80}],
                "resources": {"limits": {"cpu": "1"}},
                "livenessProbe": {"httpGet": {"port": 80}},
                "env": [{"name": "N", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
            }, {"name": "b", "image": "nginx:1.25"}],
            "volumes": [{"name": "e"}, {"name": "s", "secret": {"secretName": "x"}}],
        }});
        default_pod(&mut pod);
        let s = &pod["spec"];
        assert_eq!(s["restartPolicy"], "Always");
        assert_eq!(s["dnsPolicy"], "ClusterFirst");
        assert_eq!(s["schedulerName"], "default-scheduler");
        assert_eq!(s["terminationGracePeriodSeconds"], 30);
        assert_eq!(s["securityContext"], json!({}));
        assert_eq!(s["enableServiceLinks"], true);
        let a = &s["containers"][0];
        assert_eq!(a["imagePullPolicy"], "Always");
        assert_eq!(a["terminationMessagePath"], "/dev/termination-log");
        assert_eq!(a["terminationMessagePolicy"], "File");
        assert_eq!(a["ports"][0]["protocol"], "TCP");
        assert_eq!(a["resources"]["requests"]["cpu"], "1");
        let p = &a["livenessProbe"];
        assert_eq!(
            (&p["timeoutSeconds"], &p["periodSeconds"]),
            (&json!(1), &json!(10))
        );
        assert_eq!(
            (&p["successThreshold"], &p["failureThreshold"]),
            (&json!(1), &json!(3))
        );
        assert_eq!(p["httpGet"]["scheme"], "HTTP");
        assert_eq!(p["httpGet"]["path"], "/");
        assert_eq!(a["env"][0]["valueFrom"]["fieldRef"]["apiVersion"], "v1");
        assert_eq!(s["containers"][1]["imagePullPolicy"], "IfNotPresent");
        assert_eq!(s["volumes"][0]["emptyDir"], json!({}));
        assert_eq!(s["volumes"][1]["secret"]["defaultMode"], 420);
    }

    #[test]
    fn templates_do_not_get_pod_only_defaults() {
        let mut t = json!({"spec": {"containers": [{"name": "a", "image": "x",
            "resources": {"limits": {"cpu": "1"}}}]}});
        default_template(&mut t);
        assert!(t["spec"].get("enableServiceLinks").is_none());
        assert!(
            t["spec"]["containers"][0]["resources"]
                .get("requests")
                .is_none()
        );
        assert_eq!(t["spec"]["restartPolicy"], "Always");
    }

    #[test]
    fn image_tags() {
        assert_eq!(image_tag("nginx").as_deref(), Some("latest"));
        assert_eq!(image_tag("localhost:5000/nginx").as_deref(), Some("latest"));
        assert_eq!(image_tag("localhost:5000/nginx:1").as_deref(), Some("1"));
        assert_eq!(image_tag("nginx@sha256:abc"), None);
        assert_eq!(image_tag("nginx:latest").as_deref(), Some("latest"));
    }
}
