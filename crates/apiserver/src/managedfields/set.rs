//! Field paths and sets of them, and their `FieldsV1` encoding (upstream's
//! structured-merge-diff `fieldpath`): `f:<name>` for a field, `k:{…}` for the item of
//! an associative list with its key fields, `v:<json>` for an item of a set, `i:<n>`
//! for a list index, and `.` for a node that is itself a member of the set.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde_json::{Map, Value};

/// One step of a path. The derived order (fields, keys, values, indices) is the
/// order the encoding uses.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Elem {
    Field(String),
    /// The key fields of a list item, as canonical JSON (sorted keys).
    Key(String),
    /// A set item, as JSON.
    Value(String),
    Index(usize),
}

impl Elem {
    /// The key of an associative list item from its key fields.
    pub fn key(fields: &[(&str, Value)]) -> Self {
        let mut sorted: Vec<&(&str, Value)> = fields.iter().collect();
        sorted.sort_by(|a, b| a.0.cmp(b.0));
        let map: Map<String, Value> = sorted
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        Elem::Key(Value::Object(map).to_string())
    }

    pub fn value(v: &Value) -> Self {
        Elem::Value(v.to_string())
    }

    /// The `FieldsV1` spelling.
    pub fn encode(&self) -> String {
        match self {
            Elem::Field(f) => format!("f:{f}"),
            Elem::Key(k) => format!("k:{k}"),
            Elem::Value(v) => format!("v:{v}"),
            Elem::Index(i) => format!("i:{i}"),
        }
    }

    /// Parses a `FieldsV1` key; `None` when it is not one.
    pub fn decode(s: &str) -> Option<Self> {
        let (kind, rest) = s.split_at_checked(2)?;
        match kind {
            "f:" => Some(Elem::Field(rest.to_string())),
            "k:" => {
                let Value::Object(m) = serde_json::from_str::<Value>(rest).ok()? else {
                    return None;
                };
                let fields: Vec<(&str, Value)> =
                    m.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
                Some(Elem::key(&fields))
            }
            "v:" => Some(Elem::value(&serde_json::from_str::<Value>(rest).ok()?)),
            "i:" => rest.parse().ok().map(Elem::Index),
            _ => None,
        }
    }
}

/// Upstream's `value.ToString`: strings quoted, everything else as JSON.
fn show_value(v: &Value) -> String {
    v.to_string()
}

impl fmt::Display for Elem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Elem::Field(name) => write!(f, ".{name}"),
            Elem::Key(k) => {
                let m: Map<String, Value> = serde_json::from_str(k).unwrap_or_default();
                let parts: Vec<String> = m
                    .iter()
                    .map(|(k, v)| format!("{k}={}", show_value(v)))
                    .collect();
                write!(f, "[{}]", parts.join(","))
            }
            Elem::Value(v) => {
                let v: Value = serde_json::from_str(v).unwrap_or(Value::Null);
                write!(f, "[={}]", show_value(&v))
            }
            Elem::Index(i) => write!(f, "[{i}]"),
        }
    }
}

pub type Path = Vec<Elem>;

/// A path as upstream prints it in conflicts: `.spec.containers[name="c"].image`.
pub fn show_path(p: &[Elem]) -> String {
    p.iter().map(Elem::to_string).collect()
}

/// A set of paths; intermediate nodes are implied by their members' paths.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldSet(pub BTreeSet<Path>);

impl FieldSet {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn insert(&mut self, p: Path) {
        self.0.insert(p);
    }

    pub fn contains(&self, p: &[Elem]) -> bool {
        self.0.contains(p)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Path> {
        self.0.iter()
    }

    pub fn union(&self, other: &FieldSet) -> FieldSet {
        FieldSet(self.0.union(&other.0).cloned().collect())
    }

    pub fn difference(&self, other: &FieldSet) -> FieldSet {
        FieldSet(self.0.difference(&other.0).cloned().collect())
    }

    pub fn intersection(&self, other: &FieldSet) -> FieldSet {
        FieldSet(self.0.intersection(&other.0).cloned().collect())
    }

    /// Whether `p` or anything below it is a member.
    pub fn has_prefix(&self, p: &[Elem]) -> bool {
        self.0
            .range(p.to_vec()..)
            .next()
            .is_some_and(|m| m.starts_with(p))
    }

    /// Whether `p` is a node of the set's tree: a member or an ancestor of one.
    pub fn touches(&self, p: &[Elem]) -> bool {
        self.has_prefix(p)
    }

    /// Keeps the paths `keep` accepts.
    pub fn retain(&mut self, keep: impl Fn(&Path) -> bool) {
        self.0.retain(keep);
    }

    /// The `FieldsV1` JSON of the set.
    pub fn to_json(&self) -> Value {
        #[derive(Default)]
        struct Node {
            member: bool,
            children: BTreeMap<Elem, Node>,
        }
        fn render(n: &Node) -> Value {
            let mut m = Map::new();
            if n.member && !n.children.is_empty() {
                m.insert(".".into(), Value::Object(Map::new()));
            }
            for (e, c) in &n.children {
                m.insert(e.encode(), render(c));
            }
            Value::Object(m)
        }
        let mut root = Node::default();
        for p in &self.0 {
            let mut node = &mut root;
            for e in p {
                node = node.children.entry(e.clone()).or_default();
            }
            node.member = true;
        }
        render(&root)
    }

    /// Parses `FieldsV1` JSON.
    pub fn from_json(v: &Value) -> Result<FieldSet, String> {
        fn walk(v: &Value, prefix: &mut Path, out: &mut FieldSet) -> Result<(), String> {
            let Value::Object(m) = v else {
                return Err(format!("expected an object, got {v}"));
            };
            if m.is_empty() && !prefix.is_empty() {
                out.insert(prefix.clone());
            }
            for (k, c) in m {
                if k == "." {
                    if !prefix.is_empty() {
                        out.insert(prefix.clone());
                    }
                    continue;
                }
                let e = Elem::decode(k).ok_or_else(|| format!("unknown path element {k:?}"))?;
                prefix.push(e);
                walk(c, prefix, out)?;
                prefix.pop();
            }
            Ok(())
        }
        let mut out = FieldSet::new();
        walk(v, &mut Vec::new(), &mut out)?;
        Ok(out)
    }
}

impl FromIterator<Path> for FieldSet {
    fn from_iter<I: IntoIterator<Item = Path>>(iter: I) -> Self {
        FieldSet(iter.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn f(s: &str) -> Elem {
        Elem::Field(s.into())
    }

    #[test]
    fn encodes_members_and_dots() {
        let key = Elem::key(&[("name", json!("c"))]);
        let set: FieldSet = [
            vec![f("spec"), f("containers"), key.clone()],
            vec![f("spec"), f("containers"), key.clone(), f("image")],
            vec![f("metadata"), f("finalizers"), Elem::value(&json!("x"))],
        ]
        .into_iter()
        .collect();
        let j = set.to_json();
        assert_eq!(
            j,
            json!({
                "f:metadata": {"f:finalizers": {"v:\"x\"": {}}},
                "f:spec": {"f:containers": {"k:{\"name\":\"c\"}": {".": {}, "f:image": {}}}}
            })
        );
        assert_eq!(FieldSet::from_json(&j).unwrap(), set);
        assert_eq!(
            show_path(&[f("spec"), f("containers"), key, f("image")]),
            ".spec.containers[name=\"c\"].image"
        );
    }

    #[test]
    fn keys_are_canonical() {
        let a = Elem::decode("k:{\"protocol\":\"TCP\",\"containerPort\":80}").unwrap();
        let b = Elem::key(&[("containerPort", json!(80)), ("protocol", json!("TCP"))]);
        assert_eq!(a, b);
        assert_eq!(b.encode(), "k:{\"containerPort\":80,\"protocol\":\"TCP\"}");
        assert_eq!(b.to_string(), "[containerPort=80,protocol=\"TCP\"]");
        assert!(FieldSet::from_json(&json!({"x:y": {}})).is_err());
    }

    #[test]
    fn set_operations() {
        let a: FieldSet = [vec![f("a"), f("b")], vec![f("c")]].into_iter().collect();
        let b: FieldSet = [vec![f("c")]].into_iter().collect();
        assert_eq!(a.difference(&b).len(), 1);
        assert_eq!(a.intersection(&b).len(), 1);
        assert!(a.has_prefix(&[f("a")]));
        assert!(!a.has_prefix(&[f("b")]));
    }
}
