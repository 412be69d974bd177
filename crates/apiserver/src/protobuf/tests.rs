//! Objects encoded with k8s-pb (prost) decode to what k8s-openapi serializes for the
//! same object; hostile bytes give errors, never panics.

use std::collections::BTreeMap;

use k8s_pb::api::{apps, authentication, core, events, policy};
use k8s_pb::apimachinery::pkg::api::resource::Quantity;
use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;
use k8s_pb::apimachinery::pkg::runtime::{RawExtension, TypeMeta, Unknown};
use k8s_pb::apimachinery::pkg::util::intstr::IntOrString;
use prost::Message;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::special::go_duration;
use super::{MAGIC, decode};

fn s(v: &str) -> Option<String> {
    Some(v.to_string())
}

fn envelope(api_version: &str, kind: &str, raw: Vec<u8>) -> Vec<u8> {
    let unknown = Unknown {
        type_meta: Some(TypeMeta {
            api_version: s(api_version),
            kind: s(kind),
        }),
        raw: Some(raw),
        // Go's encoder writes the empty strings of these non-pointer fields.
        content_encoding: s(""),
        content_type: s(""),
    };
    let mut out = MAGIC.to_vec();
    out.extend(unknown.encode_to_vec());
    out
}

fn encode<M: Message>(api_version: &str, kind: &str, m: &M) -> Vec<u8> {
    envelope(api_version, kind, m.encode_to_vec())
}

/// What k8s-openapi makes of `expected`: the canonical JSON of the typed object.
fn canonical<T: DeserializeOwned + Serialize>(expected: Value) -> Value {
    let typed: T = serde_json::from_value(expected.clone()).expect("k8s-openapi accepts it");
    let out = serde_json::to_value(&typed).unwrap();
    assert_eq!(
        out, expected,
        "the expectation is canonical k8s-openapi JSON"
    );
    out
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn quantities(pairs: &[(&str, &str)]) -> BTreeMap<String, Quantity> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), Quantity { string: s(v) }))
        .collect()
}

fn deployment() -> apps::v1::Deployment {
    let template_meta = meta::ObjectMeta {
        labels: labels(&[("app", "web")]),
        ..Default::default()
    };
    let container = core::v1::Container {
        name: s("nginx"),
        image: s("nginx:1.27"),
        ports: vec![core::v1::ContainerPort {
            container_port: Some(80),
            protocol: s("TCP"),
            ..Default::default()
        }],
        resources: Some(core::v1::ResourceRequirements {
            limits: quantities(&[("cpu", "500m"), ("memory", "128Mi")]),
            requests: quantities(&[("cpu", "100m")]),
            ..Default::default()
        }),
        readiness_probe: Some(core::v1::Probe {
            handler: Some(core::v1::ProbeHandler {
                http_get: Some(core::v1::HttpGetAction {
                    path: s("/healthz"),
                    port: Some(IntOrString {
                        r#type: Some(1),
                        int_val: Some(0),
                        str_val: s("http"),
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            period_seconds: Some(5),
            ..Default::default()
        }),
        env: vec![core::v1::EnvVar {
            name: s("A"),
            value: s("b"),
            ..Default::default()
        }],
        ..Default::default()
    };
    apps::v1::Deployment {
        metadata: Some(meta::ObjectMeta {
            name: s("web"),
            namespace: s("default"),
            labels: labels(&[("app", "web")]),
            annotations: labels(&[("note", "")]),
            creation_timestamp: Some(meta::Time {
                seconds: Some(1_700_000_000),
                nanos: Some(0),
            }),
            ..Default::default()
        }),
        spec: Some(apps::v1::DeploymentSpec {
            replicas: Some(0),
            selector: Some(meta::LabelSelector {
                match_labels: labels(&[("app", "web")]),
                match_expressions: vec![meta::LabelSelectorRequirement {
                    key: s("tier"),
                    operator: s("In"),
                    values: vec!["a".into(), "b".into()],
                }],
            }),
            template: Some(core::v1::PodTemplateSpec {
                metadata: Some(template_meta),
                spec: Some(core::v1::PodSpec {
                    containers: vec![container],
                    restart_policy: s("Always"),
                    termination_grace_period_seconds: Some(0),
                    automount_service_account_token: Some(false),
                    ..Default::default()
                }),
            }),
            strategy: Some(apps::v1::DeploymentStrategy {
                r#type: s("RollingUpdate"),
                rolling_update: Some(apps::v1::RollingUpdateDeployment {
                    max_unavailable: Some(IntOrString {
                        r#type: Some(0),
                        int_val: Some(1),
                        str_val: s(""),
                    }),
                    max_surge: Some(IntOrString {
                        r#type: Some(1),
                        int_val: Some(0),
                        str_val: s("25%"),
                    }),
                }),
            }),
            revision_history_limit: Some(10),
            ..Default::default()
        }),
        status: None,
    }
}

#[test]
fn deployment_decodes_like_json() {
    let body = encode("apps/v1", "Deployment", &deployment());
    let got = decode(&body).unwrap();
    let want = canonical::<k8s_openapi::api::apps::v1::Deployment>(json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "web",
            "namespace": "default",
            "labels": {"app": "web"},
            "annotations": {"note": ""},
            "creationTimestamp": "2023-11-14T22:13:20Z",
        },
        "spec": {
            "replicas": 0,
            "revisionHistoryLimit": 10,
            "selector": {
                "matchLabels": {"app": "web"},
                "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]}],
            },
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 1},
            },
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "automountServiceAccountToken": false,
                    "restartPolicy": "Always",
                    "terminationGracePeriodSeconds": 0,
                    "containers": [{
                        "name": "nginx",
                        "image": "nginx:1.27",
                        "env": [{"name": "A", "value": "b"}],
                        "ports": [{"containerPort": 80, "protocol": "TCP"}],
                        "readinessProbe": {
                            "httpGet": {"path": "/healthz", "port": "http"},
                            "periodSeconds": 5,
                        },
                        "resources": {
                            "limits": {"cpu": "500m", "memory": "128Mi"},
                            "requests": {"cpu": "100m"},
                        },
                    }],
                },
            },
        },
    }));
    assert_eq!(got, want);
}

#[test]
fn secret_bytes_and_pointer_false() {
    let secret = core::v1::Secret {
        metadata: Some(meta::ObjectMeta {
            name: s("s"),
            ..Default::default()
        }),
        immutable: Some(false),
        data: [("k".to_string(), b"v\x00\xff".to_vec())].into(),
        string_data: labels(&[("plain", "text")]),
        r#type: s("Opaque"),
    };
    let got = decode(&encode("v1", "Secret", &secret)).unwrap();
    let want = canonical::<k8s_openapi::api::core::v1::Secret>(json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "s"},
        "immutable": false,
        "data": {"k": "dgD/"},
        "stringData": {"plain": "text"},
        "type": "Opaque",
    }));
    assert_eq!(got, want);
}

#[test]
fn pod_status_names_keep_their_acronyms() {
    let pod = core::v1::Pod {
        metadata: Some(meta::ObjectMeta {
            name: s("p"),
            ..Default::default()
        }),
        spec: None,
        status: Some(core::v1::PodStatus {
            host_ip: s("10.0.0.1"),
            pod_ip: s("10.1.0.5"),
            pod_ips: vec![core::v1::PodIp { ip: s("10.1.0.5") }],
            host_ips: vec![core::v1::HostIp { ip: s("10.0.0.1") }],
            phase: s("Running"),
            ..Default::default()
        }),
    };
    let got = decode(&encode("v1", "Pod", &pod)).unwrap();
    let want = canonical::<k8s_openapi::api::core::v1::Pod>(json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p"},
        "status": {
            "hostIP": "10.0.0.1",
            "hostIPs": [{"ip": "10.0.0.1"}],
            "podIP": "10.1.0.5",
            "podIPs": [{"ip": "10.1.0.5"}],
            "phase": "Running",
        },
    }));
    assert_eq!(got, want);
}

#[test]
fn go_style_empty_strings_are_unset_fields() {
    // Go writes every non-pointer string; "" means unset, except where required.
    let cm = core::v1::ConfigMap {
        metadata: Some(meta::ObjectMeta {
            name: s("x"),
            generate_name: s(""),
            namespace: s(""),
            uid: s(""),
            resource_version: s(""),
            generation: Some(0),
            creation_timestamp: Some(meta::Time::default()),
            ..Default::default()
        }),
        data: labels(&[("a", "b"), ("empty", "")]),
        ..Default::default()
    };
    let got = decode(&encode("v1", "ConfigMap", &cm)).unwrap();
    assert_eq!(
        got,
        json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "x", "creationTimestamp": null},
            "data": {"a": "b", "empty": ""},
        })
    );
    // Container.name is required: kept even when empty.
    let pod = core::v1::Pod {
        spec: Some(core::v1::PodSpec {
            containers: vec![core::v1::Container {
                name: s(""),
                ..Default::default()
            }],
            ..Default::default()
        }),
        ..Default::default()
    };
    let got = decode(&encode("v1", "Pod", &pod)).unwrap();
    assert_eq!(got["spec"]["containers"], json!([{"name": ""}]));
}

#[test]
fn go_non_pointer_zeros_are_unset() {
    // What Go writes for a Deployment whose optional non-pointer fields are unset.
    let d = apps::v1::Deployment {
        metadata: Some(meta::ObjectMeta {
            name: s("web"),
            generation: Some(0),
            ..Default::default()
        }),
        spec: Some(apps::v1::DeploymentSpec {
            replicas: Some(0),
            min_ready_seconds: Some(0),
            paused: Some(false),
            template: Some(core::v1::PodTemplateSpec {
                metadata: Some(meta::ObjectMeta::default()),
                spec: Some(core::v1::PodSpec {
                    host_network: Some(false),
                    containers: vec![core::v1::Container {
                        name: s("c"),
                        stdin: Some(false),
                        tty: Some(false),
                        liveness_probe: Some(core::v1::Probe {
                            timeout_seconds: Some(0),
                            period_seconds: Some(7),
                            ..Default::default()
                        }),
                        volume_mounts: vec![core::v1::VolumeMount {
                            name: s("v"),
                            mount_path: s("/v"),
                            read_only: Some(false),
                            ..Default::default()
                        }],
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
            }),
            ..Default::default()
        }),
        status: Some(apps::v1::DeploymentStatus {
            replicas: Some(0),
            ..Default::default()
        }),
    };
    let got = decode(&encode("apps/v1", "Deployment", &d)).unwrap();
    assert_eq!(
        got,
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web"},
            "spec": {
                "replicas": 0,
                "template": {
                    "metadata": {},
                    "spec": {"containers": [{
                        "name": "c",
                        "livenessProbe": {"periodSeconds": 7},
                        "volumeMounts": [{"name": "v", "mountPath": "/v"}],
                    }]},
                },
            },
            "status": {"replicas": 0},
        })
    );
}

#[test]
fn subresource_and_review_kinds() {
    let eviction = policy::v1::Eviction {
        metadata: Some(meta::ObjectMeta {
            name: s("p"),
            namespace: s("default"),
            ..Default::default()
        }),
        delete_options: Some(meta::DeleteOptions {
            grace_period_seconds: Some(0),
            propagation_policy: s("Background"),
            dry_run: vec!["All".into()],
            ..Default::default()
        }),
    };
    let got = decode(&encode("policy/v1", "Eviction", &eviction)).unwrap();
    let want = canonical::<k8s_openapi::api::policy::v1::Eviction>(json!({
        "apiVersion": "policy/v1",
        "kind": "Eviction",
        "metadata": {"name": "p", "namespace": "default"},
        "deleteOptions": {"gracePeriodSeconds": 0, "propagationPolicy": "Background", "dryRun": ["All"]},
    }));
    assert_eq!(got, want);

    let tr = authentication::v1::TokenRequest {
        metadata: Some(meta::ObjectMeta {
            name: s("default"),
            ..Default::default()
        }),
        spec: Some(authentication::v1::TokenRequestSpec {
            audiences: vec!["https://kubernetes.default.svc".into()],
            expiration_seconds: Some(3600),
            bound_object_ref: None,
        }),
        status: Some(authentication::v1::TokenRequestStatus {
            token: s(""),
            expiration_timestamp: Some(meta::Time::default()),
        }),
    };
    let got = decode(&encode("authentication.k8s.io/v1", "TokenRequest", &tr)).unwrap();
    assert_eq!(
        got,
        json!({
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "metadata": {"name": "default"},
            "spec": {"audiences": ["https://kubernetes.default.svc"], "expirationSeconds": 3600},
            // `token` is required (no omitempty in Go): kept even when empty.
            "status": {"token": "", "expirationTimestamp": null},
        })
    );

    let ssr = authentication::v1::SelfSubjectReview {
        metadata: Some(meta::ObjectMeta::default()),
        status: Some(authentication::v1::SelfSubjectReviewStatus {
            user_info: Some(authentication::v1::UserInfo {
                username: s("me"),
                extra: [(
                    "scopes".to_string(),
                    authentication::v1::ExtraValue {
                        items: vec!["a".into()],
                    },
                )]
                .into(),
                ..Default::default()
            }),
        }),
    };
    let got = decode(&encode(
        "authentication.k8s.io/v1",
        "SelfSubjectReview",
        &ssr,
    ))
    .unwrap();
    assert_eq!(
        got["status"],
        json!({"userInfo": {"username": "me", "extra": {"scopes": ["a"]}}})
    );

    // DeleteOptions is registered in every group version.
    let opts = meta::DeleteOptions {
        propagation_policy: s("Foreground"),
        ..Default::default()
    };
    let got = decode(&encode("apps/v1", "DeleteOptions", &opts)).unwrap();
    assert_eq!(
        got,
        json!({"apiVersion": "apps/v1", "kind": "DeleteOptions", "propagationPolicy": "Foreground"})
    );
}

#[test]
fn micro_time_raw_extension_and_durations() {
    let ev = events::v1::Event {
        metadata: Some(meta::ObjectMeta {
            name: s("e"),
            ..Default::default()
        }),
        event_time: Some(meta::MicroTime {
            seconds: Some(1_700_000_000),
            nanos: Some(123_456_789),
        }),
        reason: s("Started"),
        ..Default::default()
    };
    let got = decode(&encode("events.k8s.io/v1", "Event", &ev)).unwrap();
    let want = canonical::<k8s_openapi::api::events::v1::Event>(json!({
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        "metadata": {"name": "e"},
        "eventTime": "2023-11-14T22:13:20.123456Z",
        "reason": "Started",
    }));
    assert_eq!(got, want);

    let rev = apps::v1::ControllerRevision {
        metadata: Some(meta::ObjectMeta {
            name: s("r"),
            ..Default::default()
        }),
        data: Some(RawExtension {
            raw: Some(br#"{"spec":{"x":1}}"#.to_vec()),
        }),
        revision: Some(3),
    };
    let got = decode(&encode("apps/v1", "ControllerRevision", &rev)).unwrap();
    assert_eq!(got["data"], json!({"spec": {"x": 1}}));
    assert_eq!(got["revision"], json!(3));

    for (ns, want) in [
        (0, "0s"),
        (1, "1ns"),
        (1_500, "1.5µs"),
        (100_000_000, "100ms"),
        (1_500_000_000, "1.5s"),
        (90_000_000_000, "1m30s"),
        (3_600_000_000_000, "1h0m0s"),
        (-2_000_000_000, "-2s"),
    ] {
        assert_eq!(go_duration(ns), want, "{ns}");
    }
}

#[test]
fn envelope_errors() {
    let err = decode(b"{\"kind\":\"Pod\"}").unwrap_err();
    assert_eq!(err.code, 400, "{err:?}");
    let err = decode(&envelope("example.com/v1", "Widget", vec![])).unwrap_err();
    assert_eq!(err.code, 415, "{err:?}");
    let mut body = encode("apps/v1", "Deployment", &deployment());
    body.truncate(body.len() - 3);
    let err = decode(&body).unwrap_err();
    assert_eq!(err.code, 400, "{err:?}");
    // A string field sent as a varint.
    let err = decode(&envelope("v1", "ConfigMap", vec![0x0a, 0x02, 0x08, 0x01])).unwrap_err();
    assert_eq!(err.code, 400, "{err:?}");
}

#[test]
fn deep_nesting_is_refused() {
    use k8s_pb::apiextensions_apiserver::pkg::apis::apiextensions::v1 as ext;
    let mut schema = ext::JsonSchemaProps::default();
    for _ in 0..200 {
        schema = ext::JsonSchemaProps {
            not: Some(Box::new(schema)),
            ..Default::default()
        };
    }
    let crd = ext::CustomResourceDefinition {
        spec: Some(ext::CustomResourceDefinitionSpec {
            versions: vec![ext::CustomResourceDefinitionVersion {
                schema: Some(ext::CustomResourceValidation {
                    open_apiv3_schema: Some(schema),
                }),
                ..Default::default()
            }],
            ..Default::default()
        }),
        ..Default::default()
    };
    let err = decode(&encode(
        "apiextensions.k8s.io/v1",
        "CustomResourceDefinition",
        &crd,
    ))
    .unwrap_err();
    assert_eq!(err.code, 400, "{err:?}");
}

#[test]
fn crd_schema_shapes() {
    use k8s_pb::apiextensions_apiserver::pkg::apis::apiextensions::v1 as ext;
    let string = ext::JsonSchemaProps {
        r#type: s("string"),
        ..Default::default()
    };
    let schema = ext::JsonSchemaProps {
        r#type: s("object"),
        properties: [("name".to_string(), string.clone())].into(),
        additional_properties: Some(Box::new(ext::JsonSchemaPropsOrBool {
            allows: Some(false),
            schema: None,
        })),
        items: None,
        default: Some(ext::Json {
            raw: Some(br#"{"name":"x"}"#.to_vec()),
        }),
        x_kubernetes_preserve_unknown_fields: Some(true),
        ..Default::default()
    };
    let crd = ext::CustomResourceDefinition {
        spec: Some(ext::CustomResourceDefinitionSpec {
            versions: vec![ext::CustomResourceDefinitionVersion {
                name: s("v1"),
                schema: Some(ext::CustomResourceValidation {
                    open_apiv3_schema: Some(schema),
                }),
                ..Default::default()
            }],
            ..Default::default()
        }),
        ..Default::default()
    };
    let got = decode(&encode(
        "apiextensions.k8s.io/v1",
        "CustomResourceDefinition",
        &crd,
    ))
    .unwrap();
    assert_eq!(
        got["spec"]["versions"][0]["schema"]["openAPIV3Schema"],
        json!({
            "type": "object",
            "properties": {"name": {"type": "string"}},
            "additionalProperties": false,
            "default": {"name": "x"},
            "x-kubernetes-preserve-unknown-fields": true,
        })
    );
}

/// A small deterministic generator, so failures reproduce.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn fuzzed_bodies_never_panic() {
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let valid = deployment().encode_to_vec();
    let kinds = [
        ("apps/v1", "Deployment"),
        ("v1", "Pod"),
        ("v1", "Secret"),
        ("apiextensions.k8s.io/v1", "CustomResourceDefinition"),
    ];
    for i in 0..20_000 {
        let (av, kind) = kinds[i % kinds.len()];
        let raw: Vec<u8> = match i % 3 {
            // Random bytes.
            0 => (0..rng.next() % 64).map(|_| rng.next() as u8).collect(),
            // A valid message with bytes flipped.
            1 => {
                let mut v = valid.clone();
                for _ in 0..1 + rng.next() % 4 {
                    let at = (rng.next() as usize) % v.len();
                    v[at] = rng.next() as u8;
                }
                v
            }
            // A valid message cut short.
            _ => valid[..(rng.next() as usize) % valid.len()].to_vec(),
        };
        let _ = decode(&envelope(av, kind, raw.clone()));
        // And the envelope itself mangled.
        let mut body = envelope(av, kind, raw);
        let at = 4 + (rng.next() as usize) % (body.len() - 4);
        body[at] = rng.next() as u8;
        let _ = decode(&body);
    }
}
