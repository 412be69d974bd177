//! Walking objects by schema: the field set of an applied configuration, the
//! comparison of two objects (added, modified, removed paths) and the merge of an
//! applied configuration into the live object.

use std::collections::HashSet;

use serde_json::{Map, Value};

use api::ResourceInfo;
use api::patch_meta::MergeKeys;

use super::set::{Elem, FieldSet, Path};

/// How a list merges, as upstream's `x-kubernetes-list-type`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListKind {
    Atomic,
    Set,
    Map(Vec<&'static str>),
}

/// Fields whose values are Go maps (`map[string]…`) in the built-in types: created
/// by a manager, they are owned as a whole too (`.`).
const MAP_FIELDS: &[&str] = &[
    "labels",
    "annotations",
    "matchLabels",
    "nodeSelector",
    "data",
    "binaryData",
    "stringData",
    "limits",
    "requests",
    "capacity",
    "allocatable",
    "hard",
    "used",
    "parameters",
    "rollingUpdate",
];

/// Objects that are owned and replaced as a whole in the built-in types (label
/// selectors are `+structType=atomic`, service and node selectors `+mapType=atomic`).
const ATOMIC_OBJECTS: &[&str] = &[
    "selector",
    "nodeSelector",
    "labelSelector",
    "namespaceSelector",
];

/// The list semantics of one resource's fields.
pub struct Schema {
    /// `None` for custom resources: every list is atomic.
    keys: Option<MergeKeys>,
}

impl Schema {
    pub fn for_resource(info: &ResourceInfo) -> Self {
        Self {
            keys: (!info.custom).then(|| MergeKeys::for_resource(info)),
        }
    }

    /// Every list atomic (custom resources and unknown types).
    pub fn untyped() -> Self {
        Self { keys: None }
    }

    /// The kind of the list at `ptr` (field names only: `/spec/template/spec/containers`).
    pub fn list_kind(&self, ptr: &str) -> ListKind {
        let Some(keys) = &self.keys else {
            return ListKind::Atomic;
        };
        if keys.is_merge_primitive_list(ptr) {
            return ListKind::Set;
        }
        match keys.merge_key(ptr) {
            Some("containerPort") => ListKind::Map(vec!["containerPort", "protocol"]),
            Some("port") => ListKind::Map(vec!["port", "protocol"]),
            Some("topologyKey") => ListKind::Map(vec!["topologyKey", "whenUnsatisfiable"]),
            Some(k) => ListKind::Map(vec![k]),
            None => ListKind::Atomic,
        }
    }

    /// Whether the object at `ptr` is atomic.
    pub fn atomic_object(&self, ptr: &str) -> bool {
        self.keys.is_some()
            && ptr
                .rsplit('/')
                .next()
                .is_some_and(|last| ATOMIC_OBJECTS.contains(&last))
    }

    /// Whether a node created by an update is owned itself (`.`), as upstream owns
    /// what an empty object of the Go type lacks.
    fn owns_created(&self, path: &[Elem]) -> bool {
        match path.last() {
            None => false,
            Some(Elem::Key(_) | Elem::Value(_) | Elem::Index(_)) => true,
            Some(Elem::Field(f)) => {
                self.keys.is_none() || (f != "metadata" && MAP_FIELDS.contains(&f.as_str()))
            }
        }
    }

    fn owns_created_list(&self, path: &[Elem]) -> bool {
        self.keys.is_none() || !matches!(path.last(), Some(Elem::Field(f)) if f == "containers")
    }
}

/// The path element of each item of a keyed list or set, or `None` when the list
/// must be treated as atomic (items without keys, duplicates).
pub fn item_elems(kind: &ListKind, items: &[Value]) -> Option<Vec<Elem>> {
    let elems: Vec<Elem> = match kind {
        ListKind::Atomic => return None,
        ListKind::Set => {
            if items.iter().any(|v| v.is_object() || v.is_array()) {
                return None;
            }
            items.iter().map(Elem::value).collect()
        }
        ListKind::Map(keys) => {
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                let obj = item.as_object()?;
                let mut fields: Vec<(&str, Value)> = Vec::new();
                for k in keys {
                    match obj.get(*k) {
                        Some(v) if !v.is_null() => fields.push((k, v.clone())),
                        _ if *k == "protocol" => fields.push((k, Value::String("TCP".into()))),
                        _ => {}
                    }
                }
                if fields.len() != keys.len() && !fields.iter().any(|(k, _)| *k == keys[0]) {
                    return None;
                }
                out.push(Elem::key(&fields));
            }
            out
        }
    };
    let unique: HashSet<&Elem> = elems.iter().collect();
    (unique.len() == elems.len()).then_some(elems)
}

/// The fields an applied configuration sets: its leaves, and the items of its keyed
/// lists and sets (upstream's `ToFieldSet`).
pub fn field_set(schema: &Schema, v: &Value) -> FieldSet {
    fn walk(schema: &Schema, v: &Value, ptr: &str, prefix: &mut Path, out: &mut FieldSet) {
        match v {
            Value::Object(m) if !m.is_empty() && !schema.atomic_object(ptr) => {
                for (k, c) in m {
                    prefix.push(Elem::Field(k.clone()));
                    walk(schema, c, &format!("{ptr}/{k}"), prefix, out);
                    prefix.pop();
                }
            }
            Value::Array(items) if !items.is_empty() => {
                let kind = schema.list_kind(ptr);
                let Some(elems) = item_elems(&kind, items) else {
                    out.insert(prefix.clone());
                    return;
                };
                for (e, item) in elems.into_iter().zip(items) {
                    prefix.push(e);
                    out.insert(prefix.clone());
                    if kind != ListKind::Set {
                        walk(schema, item, ptr, prefix, out);
                    }
                    prefix.pop();
                }
            }
            _ => {
                if !prefix.is_empty() {
                    out.insert(prefix.clone());
                }
            }
        }
    }
    let mut out = FieldSet::new();
    walk(schema, v, "", &mut Vec::new(), &mut out);
    out
}

/// What changed between two objects.
#[derive(Debug, Default)]
pub struct Comparison {
    pub added: FieldSet,
    pub modified: FieldSet,
    pub removed: FieldSet,
}

impl Comparison {
    /// Paths whose value the change set or altered.
    pub fn changed(&self) -> FieldSet {
        self.added.union(&self.modified)
    }
}

/// Compares `old` with `new` (upstream's typed `Compare`).
pub fn compare(schema: &Schema, old: &Value, new: &Value) -> Comparison {
    let mut out = Comparison::default();
    cmp(schema, Some(old), Some(new), "", &mut Vec::new(), &mut out);
    out
}

fn entries(v: Option<&Value>) -> Option<&Map<String, Value>> {
    v.and_then(Value::as_object)
}

fn cmp(
    schema: &Schema,
    l: Option<&Value>,
    r: Option<&Value>,
    ptr: &str,
    prefix: &mut Path,
    out: &mut Comparison,
) {
    let is_obj = |v: Option<&Value>| v.is_none_or(Value::is_object);
    let nonempty_obj = |v: Option<&Value>| entries(v).is_some_and(|m| !m.is_empty());
    if is_obj(l) && is_obj(r) && (nonempty_obj(l) || nonempty_obj(r)) && !schema.atomic_object(ptr)
    {
        let empty = Map::new();
        let lm = entries(l).unwrap_or(&empty);
        let rm = entries(r).unwrap_or(&empty);
        let keys = lm.keys().chain(rm.keys().filter(|k| !lm.contains_key(*k)));
        for k in keys {
            prefix.push(Elem::Field(k.clone()));
            cmp(
                schema,
                lm.get(k),
                rm.get(k),
                &format!("{ptr}/{k}"),
                prefix,
                out,
            );
            prefix.pop();
        }
        node_added_removed(l, r, schema.owns_created(prefix), prefix, out);
        return;
    }
    fn as_list(v: Option<&Value>) -> Option<&[Value]> {
        match v {
            None => Some(&[]),
            Some(Value::Array(a)) => Some(a.as_slice()),
            _ => None,
        }
    }
    if let (Some(la), Some(ra)) = (as_list(l), as_list(r))
        && (!la.is_empty() || !ra.is_empty())
    {
        let kind = schema.list_kind(ptr);
        if let (Some(le), Some(re)) = (item_elems(&kind, la), item_elems(&kind, ra)) {
            for (i, e) in le.iter().enumerate() {
                let ri = re.iter().position(|x| x == e).map(|j| &ra[j]);
                prefix.push(e.clone());
                item(schema, &kind, Some(&la[i]), ri, ptr, prefix, out);
                prefix.pop();
            }
            for (j, e) in re.iter().enumerate() {
                if !le.contains(e) {
                    prefix.push(e.clone());
                    item(schema, &kind, None, Some(&ra[j]), ptr, prefix, out);
                    prefix.pop();
                }
            }
            node_added_removed(l, r, schema.owns_created_list(prefix), prefix, out);
            return;
        }
    }
    leaf(l, r, prefix, out);
}

fn item(
    schema: &Schema,
    kind: &ListKind,
    l: Option<&Value>,
    r: Option<&Value>,
    ptr: &str,
    prefix: &mut Path,
    out: &mut Comparison,
) {
    if *kind == ListKind::Set {
        leaf(l, r, prefix, out);
        return;
    }
    cmp(schema, l, r, ptr, prefix, out);
    // An item is a member of its own path, created or not.
    if l.is_none() {
        out.added.insert(prefix.clone());
    }
}

fn node_added_removed(
    l: Option<&Value>,
    r: Option<&Value>,
    owns: bool,
    prefix: &Path,
    out: &mut Comparison,
) {
    if prefix.is_empty() {
        return;
    }
    if l.is_none() && owns {
        out.added.insert(prefix.clone());
    }
    if r.is_none() {
        out.removed.insert(prefix.clone());
    }
}

fn leaf(l: Option<&Value>, r: Option<&Value>, prefix: &Path, out: &mut Comparison) {
    if prefix.is_empty() {
        return;
    }
    match (l, r) {
        (None, Some(_)) => out.added.insert(prefix.clone()),
        (Some(_), None) => out.removed.insert(prefix.clone()),
        (Some(a), Some(b)) if a != b => out.modified.insert(prefix.clone()),
        _ => {}
    }
}
