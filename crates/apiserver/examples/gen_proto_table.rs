//! Generates `crates/apiserver/src/protobuf/table.rs`, the field table the protobuf
//! request decoder runs on.
//!
//! Regenerate (after bumping k8s-pb or k8s-openapi, or serving new kinds):
//!
//! ```text
//! cargo run -p apiserver --example gen_proto_table > crates/apiserver/src/protobuf/table.rs
//! ```
//!
//! (`-- <path to k8s-pb's src>` overrides where the k8s-pb sources are read from;
//! by default `cargo metadata` says where the k8s-pb dev-dependency lives.)
//!
//! Inputs:
//! - the message structs of the `k8s-pb` crate (prost-generated from k8s.io/api's
//!   `generated.proto`): each field's tag, wire type, label and message type. Those
//!   sources are parsed as text: one `#[prost(...)]` attribute and one `pub name: Type`
//!   per field.
//! - the OpenAPI definitions this server publishes for the kinds it serves (k8s-openapi's
//!   schemas), plus the subresource kinds: the exact JSON name of each field, and which
//!   fields are required. prost snake-cases the proto names, which is lossy (`hostIP` ->
//!   `host_ip`), so a field's JSON name is the schema property equal to it once both are
//!   lower-cased without `_`/`-`/`$`; lowerCamelCase of the snake name is the fallback.
//!   prost also CamelCases acronyms in message names (`HttpGetAction`), so definitions
//!   are matched without case and give the table upstream's spelling.
//!
//! The table holds the messages with an OpenAPI definition and every message they
//! reach, sorted by lower-cased path (`api.apps.v1.Deployment`), which is how the
//! decoder searches it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use apiserver::openapi::{Dialect, build};
use schemars::generate::SchemaSettings;
use serde_json::Value;

#[derive(Debug, Clone)]
enum Ty {
    Scalar(String),
    Message(String),
    Map(String, Box<Ty>),
}

#[derive(Debug, Clone)]
struct RawField {
    rust_name: String,
    tag: u32,
    ty: Ty,
    repeated: bool,
}

/// Kinds reached through subresources or served without a storage resource; the
/// served resources' own kinds come from the OpenAPI document.
fn extra_definitions() -> serde_json::Map<String, Value> {
    use k8s_openapi::api;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1 as meta;
    let mut generator = SchemaSettings::draft07().into_generator();
    generator.subschema_for::<api::policy::v1::Eviction>();
    generator.subschema_for::<api::authentication::v1::TokenRequest>();
    generator.subschema_for::<api::authentication::v1::TokenReview>();
    generator.subschema_for::<api::authentication::v1::SelfSubjectReview>();
    generator.subschema_for::<api::authorization::v1::SubjectAccessReview>();
    generator.subschema_for::<api::authorization::v1::SelfSubjectAccessReview>();
    generator.subschema_for::<api::authorization::v1::LocalSubjectAccessReview>();
    generator.subschema_for::<api::authorization::v1::SelfSubjectRulesReview>();
    generator.subschema_for::<api::autoscaling::v1::Scale>();
    generator.subschema_for::<api::core::v1::Binding>();
    generator.subschema_for::<meta::DeleteOptions>();
    generator.take_definitions(true)
}

/// Numbers and booleans whose zero means unset, by message and JSON name: Go's
/// non-pointer `omitempty` fields (which its protobuf encoder always writes, and its
/// JSON encoder leaves out when zero) of the common kinds, and fields defaulted when
/// zero. Every other number or boolean on the wire is kept, zero or not, as pointer
/// fields (`replicas: 0`, `automountServiceAccountToken: false`) mean what they say.
/// Any `readOnly` boolean of core/v1 is also here: false is its default.
const ZERO_IS_UNSET: &[(&str, &[&str])] = &[
    ("apimachinery.pkg.apis.meta.v1.ObjectMeta", &["generation"]),
    ("api.core.v1.Container", &["stdin", "stdinOnce", "tty"]),
    (
        "api.core.v1.EphemeralContainerCommon",
        &["stdin", "stdinOnce", "tty"],
    ),
    (
        "api.core.v1.PodSpec",
        &["hostNetwork", "hostPID", "hostIPC"],
    ),
    (
        "api.core.v1.Probe",
        &[
            "initialDelaySeconds",
            "timeoutSeconds",
            "periodSeconds",
            "successThreshold",
            "failureThreshold",
        ],
    ),
    ("api.core.v1.ContainerPort", &["hostPort"]),
    ("api.core.v1.ServicePort", &["nodePort"]),
    (
        "api.core.v1.ServiceSpec",
        &["publishNotReadyAddresses", "healthCheckNodePort"],
    ),
    ("api.core.v1.NodeSpec", &["unschedulable"]),
    ("api.core.v1.Event", &["count"]),
    ("api.core.v1.GCEPersistentDiskVolumeSource", &["partition"]),
    (
        "api.core.v1.AWSElasticBlockStoreVolumeSource",
        &["partition"],
    ),
    ("api.apps.v1.DeploymentSpec", &["minReadySeconds", "paused"]),
    ("api.apps.v1.ReplicaSetSpec", &["minReadySeconds"]),
    ("api.apps.v1.DaemonSetSpec", &["minReadySeconds"]),
    ("api.apps.v1.StatefulSetSpec", &["minReadySeconds"]),
    ("api.networking.v1.ServiceBackendPort", &["number"]),
    ("api.events.v1.Event", &["deprecatedCount"]),
];

fn k8s_pb_src() -> PathBuf {
    if let Some(p) = std::env::args().nth(1) {
        return PathBuf::from(p);
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = std::process::Command::new(cargo)
        .args(["metadata", "--format-version", "1"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata");
    assert!(out.status.success(), "cargo metadata failed");
    let meta: Value = serde_json::from_slice(&out.stdout).expect("cargo metadata JSON");
    let manifest = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "k8s-pb")
        .and_then(|p| p["manifest_path"].as_str())
        .expect("k8s-pb in cargo metadata (a dev-dependency of apiserver)");
    Path::new(manifest).parent().unwrap().join("src")
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            walk(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// `super::super::core::v1::PodSpec` seen from `api.apps.v1` -> `api.core.v1.PodSpec`.
fn resolve(module: &[String], path: &str) -> String {
    let mut base: Vec<String> = module.to_vec();
    let mut rest = path;
    if let Some(r) = path.strip_prefix("crate::") {
        base.clear();
        rest = r;
    }
    while let Some(r) = rest.strip_prefix("super::") {
        base.pop();
        rest = r;
    }
    base.extend(rest.split("::").map(str::to_string));
    base.join(".")
}

/// The type arguments inside `Option<..>` / `Vec<..>` / `Box<..>` / `BTreeMap<..>`.
fn inner_types(ty: &str) -> Vec<String> {
    let ty: String = ty.chars().filter(|c| !c.is_whitespace()).collect();
    let mut t = ty.as_str();
    loop {
        let before = t;
        for wrapper in [
            "::core::option::Option<",
            "::prost::alloc::vec::Vec<",
            "::prost::alloc::boxed::Box<",
            "::prost::alloc::collections::BTreeMap<",
        ] {
            if let Some(r) = t.strip_prefix(wrapper) {
                t = r.strip_suffix('>').unwrap();
            }
        }
        if t == before {
            break;
        }
    }
    t.split(',').map(str::to_string).collect()
}

/// `message, optional, tag = "1"` -> (["message", "optional"], 1).
fn parse_attr(attr: &str) -> (Vec<String>, u32) {
    let mut parts = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in attr.chars() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => {
                parts.push(cur.trim().to_string());
                cur.clear();
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    parts.push(cur.trim().to_string());
    let mut tag = 0;
    parts.retain(|p| {
        if let Some(t) = p.strip_prefix("tag = ") {
            tag = t.trim_matches('"').parse().unwrap();
            false
        } else {
            !p.is_empty()
        }
    });
    (parts, tag)
}

fn parse_file(src: &Path, file: &Path, out: &mut BTreeMap<String, Vec<RawField>>) {
    let rel = file.strip_prefix(src).unwrap();
    let mut module: Vec<String> = rel
        .parent()
        .unwrap()
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    let file_name = rel.file_name().unwrap();
    if file_name != "mod.rs" && file_name != "lib.rs" {
        module.push(rel.file_stem().unwrap().to_string_lossy().into_owned());
    }
    let text = std::fs::read_to_string(file).unwrap();
    // Without comments, what is left is attributes and declarations.
    let code: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .map(|l| format!("{l}\n"))
        .collect();
    let mut rest = code.as_str();
    while let Some(i) = rest.find("pub struct ") {
        rest = &rest[i + "pub struct ".len()..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        let after = rest[name.len()..].trim_start();
        if !after.starts_with('{') {
            continue; // unit structs (scope markers)
        }
        let end = if after.starts_with("{}") {
            1 // an empty message
        } else {
            after.find("\n}").expect("end of struct")
        };
        let body = &after[1..end];
        let mut fields = Vec::new();
        for chunk in body.split("#[prost(").skip(1) {
            let close = chunk.find(")]").unwrap();
            let (labels, tag) = parse_attr(&chunk[..close]);
            let decl = chunk[close + 2..].trim();
            let decl = decl.strip_prefix("pub ").unwrap();
            let (fname, fty) = decl.split_once(':').unwrap();
            let fty = fty.trim().trim_end_matches(',');
            let kind = labels[0].as_str();
            let ty = if let Some(m) = kind.strip_prefix("btree_map = ") {
                let (k, v) = m.trim_matches('"').split_once(',').unwrap();
                let value = match v.trim() {
                    "message" => Ty::Message(resolve(&module, &inner_types(fty)[1])),
                    other => Ty::Scalar(other.to_string()),
                };
                Ty::Map(k.trim().to_string(), Box::new(value))
            } else if kind == "message" {
                Ty::Message(resolve(&module, &inner_types(fty)[0]))
            } else {
                Ty::Scalar(kind.split(' ').next().unwrap().to_string())
            };
            fields.push(RawField {
                rust_name: fname.trim().trim_start_matches("r#").to_string(),
                tag,
                ty,
                repeated: labels.iter().any(|l| l == "repeated"),
            });
        }
        out.insert(format!("{}.{name}", module.join(".")), fields);
        rest = &after[end..];
    }
}

fn norm(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

fn lower_camel(snake: &str) -> String {
    let mut out = String::new();
    for (i, part) in snake.split('_').enumerate() {
        let mut c = part.chars();
        match c.next() {
            Some(f) if i > 0 => {
                out.extend(f.to_uppercase());
                out.push_str(c.as_str());
            }
            _ => out.push_str(part),
        }
    }
    out
}

/// `api.apps.v1.Deployment` -> `io.k8s.api.apps.v1.deployment` (lower case).
fn definition_key(path: &str) -> String {
    let (first, rest) = path.split_once('.').unwrap();
    format!("io.k8s.{}.{rest}", first.replace('_', "-")).to_lowercase()
}

fn scalar_ty(s: &str) -> &'static str {
    match s {
        "string" => "S",
        "bytes" => "B",
        "bool" => "Bool",
        "int32" => "I32",
        "int64" => "I64",
        "double" => "F64",
        other => panic!("unsupported scalar type {other}: teach protobuf/decode.rs"),
    }
}

fn reached(ty: &Ty) -> Option<&String> {
    match ty {
        Ty::Message(m) => Some(m),
        Ty::Map(_, v) => reached(v),
        Ty::Scalar(_) => None,
    }
}

fn main() {
    let src = k8s_pb_src();
    let mut files = Vec::new();
    walk(&src, &mut files);
    files.sort();
    let mut messages = BTreeMap::new();
    for f in &files {
        parse_file(&src, f, &mut messages);
    }

    let resources = api::builtin::resources();
    let refs: Vec<&api::ResourceInfo> = resources.iter().collect();
    let doc = build(&refs, Dialect::V2, "v0");
    let mut defs: BTreeMap<String, Value> = doc["definitions"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for (k, v) in extra_definitions() {
        defs.entry(k).or_insert(v);
    }
    // By lower-cased name, keeping upstream's spelling.
    let defs: HashMap<String, (String, Value)> = defs
        .into_iter()
        .map(|(k, v)| (k.to_lowercase(), (k, v)))
        .collect();
    let def_of = |p: &str| defs.get(&definition_key(p));

    // Messages with a definition, and everything they reach.
    let mut keep: BTreeSet<String> = BTreeSet::new();
    let mut todo: Vec<String> = messages
        .keys()
        .filter(|p| def_of(p).is_some())
        .cloned()
        .collect();
    while let Some(p) = todo.pop() {
        if !keep.insert(p.clone()) {
            continue;
        }
        let fields = messages
            .get(&p)
            .unwrap_or_else(|| panic!("unknown message {p}"));
        for f in fields {
            if let Some(m) = reached(&f.ty)
                && !keep.contains(m)
            {
                todo.push(m.clone());
            }
        }
    }
    let name_of = |p: &str| match def_of(p) {
        Some((def, _)) => {
            let (module, _) = p.rsplit_once('.').unwrap();
            format!("{module}.{}", def.rsplit('.').next().unwrap())
        }
        None => p.to_string(),
    };
    let mut keep: Vec<String> = keep.into_iter().collect();
    keep.sort_by_key(|p| name_of(p).to_lowercase());
    let index: HashMap<&str, usize> = keep
        .iter()
        .enumerate()
        .map(|(i, p)| (p.as_str(), i))
        .collect();
    assert!(keep.len() <= usize::from(u16::MAX), "indexes are u16");

    let mut out = String::from(
        "// @generated by `cargo run -p apiserver --example gen_proto_table`; do not edit.\n\
         // The protobuf messages of the served kinds: tag, type and JSON name of each field.\n\
         use super::table_types::{Message, Ty::*, f, inl, keep, rep, z};\n\n\
         pub static MESSAGES: &[Message] = &[\n",
    );
    // A definition's property names and required fields.
    let schema_of = |p: &str| -> (Vec<String>, Vec<String>) {
        let def = def_of(p).map(|(_, d)| d);
        let names = |key: &str| -> Vec<String> {
            match def.and_then(|d| d.get(key)) {
                Some(Value::Object(o)) => o.keys().cloned().collect(),
                Some(Value::Array(a)) => a
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect(),
                _ => Vec::new(),
            }
        };
        (names("properties"), names("required"))
    };
    // Go's embedded structs (`ProbeHandler` in `Probe`, `VolumeSource` in `Volume`) are
    // nested messages in protobuf and inlined in JSON: a message field whose name is
    // no property of the parent while most of the child's fields are. An inlined
    // message without a definition of its own is named by its parents' properties.
    let mut inlined: BTreeSet<(String, u32)> = BTreeSet::new();
    let mut extra_props: HashMap<String, Vec<String>> = HashMap::new();
    for p in &keep {
        let (props, _) = schema_of(p);
        if props.is_empty() {
            continue;
        }
        let normed: BTreeSet<String> = props.iter().map(|j| norm(j)).collect();
        for f in &messages[p] {
            let Ty::Message(child) = &f.ty else { continue };
            if f.repeated || normed.contains(&norm(&f.rust_name)) {
                continue;
            }
            let child_fields = &messages[child];
            let hits = child_fields
                .iter()
                .filter(|c| normed.contains(&norm(&c.rust_name)))
                .count();
            if hits > 0 && hits * 2 >= child_fields.len() {
                inlined.insert((p.clone(), f.tag));
                extra_props
                    .entry(child.clone())
                    .or_default()
                    .extend(props.iter().cloned());
            }
        }
    }

    let mut fallbacks = 0;
    let mut zero_listed_seen = 0;
    for p in &keep {
        let (mut props, required) = schema_of(p);
        if let Some(more) = extra_props.get(p) {
            props.extend(more.iter().cloned());
        }
        if props.is_empty() {
            eprintln!("no definition for {p}");
        }
        let mut fields = messages[p].clone();
        fields.sort_by_key(|f| f.tag);
        out.push_str(&format!(
            "    Message {{ name: \"{}\", fields: &[\n",
            name_of(p)
        ));
        for f in &fields {
            let inline = inlined.contains(&(p.clone(), f.tag));
            let n = norm(&f.rust_name);
            let json = match props.iter().find(|j| norm(j) == n) {
                Some(j) => j.to_string(),
                None => {
                    if !props.is_empty() && !inline {
                        eprintln!("no schema property for {p}.{}", f.rust_name);
                    }
                    fallbacks += usize::from(!inline);
                    lower_camel(&f.rust_name)
                }
            };
            let ty = match &f.ty {
                Ty::Scalar(s) => scalar_ty(s).to_string(),
                Ty::Message(m) => format!("M({})", index[m.as_str()]),
                Ty::Map(k, v) => {
                    assert_eq!(k, "string", "map keys other than strings");
                    match v.as_ref() {
                        Ty::Scalar(s) if s == "string" => "MapS".to_string(),
                        Ty::Scalar(s) if s == "bytes" => "MapB".to_string(),
                        Ty::Message(m) => format!("MapM({})", index[m.as_str()]),
                        other => panic!("unsupported map value {other:?}"),
                    }
                }
            };
            let listed = ZERO_IS_UNSET
                .iter()
                .any(|(m, names)| *m == name_of(p) && names.contains(&json.as_str()));
            if listed {
                zero_listed_seen += 1;
            }
            let zero_is_unset = matches!(ty.as_str(), "I32" | "I64" | "Bool" | "F64")
                && (listed || (p.starts_with("api.core.v1.") && json == "readOnly"));
            let ctor = if f.repeated {
                "rep"
            } else if inline {
                "inl"
            } else if zero_is_unset {
                "z"
            } else if ty == "S" && required.contains(&json) {
                "keep"
            } else {
                "f"
            };
            out.push_str(&format!(
                "        {ctor}({}, \"{}\", {ty}),\n",
                f.tag,
                json.escape_default()
            ));
        }
        out.push_str("    ]},\n");
    }
    out.push_str("];\n");
    let zero_listed: usize = ZERO_IS_UNSET.iter().map(|(_, n)| n.len()).sum();
    assert_eq!(
        zero_listed_seen, zero_listed,
        "an entry of ZERO_IS_UNSET names no number or boolean field in the table"
    );
    eprintln!(
        "{} messages ({} parsed), {fallbacks} fields named by fallback",
        keep.len(),
        messages.len()
    );
    print!("{out}");
}
