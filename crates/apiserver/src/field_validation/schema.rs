//! A built-in kind's OpenAPI schema compiled for the unknown-field walk, once per kind:
//! `$ref`s resolved and each object's fields in a map of their own, so that a request
//! body costs one lookup per field rather than several JSON-schema lookups per node.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;
use serde_json::{Map, Value};

/// Index of a node in [`Compiled::nodes`].
pub(super) type NodeId = usize;

pub(super) enum Node {
    /// Known fields, and the schema of any other field when the object is a map.
    Object {
        fields: HashMap<String, NodeId>,
        other: Option<NodeId>,
    },
    /// A list whose items have this schema.
    List(NodeId),
    /// Nothing below it to check: a scalar, `x-kubernetes-preserve-unknown-fields`, a
    /// free-form object (RawExtension, `type: object` without fields), a list without
    /// an item schema.
    Unchecked,
}

pub(super) struct Compiled {
    pub(super) nodes: Vec<Node>,
}

pub(super) const ROOT: NodeId = 0;

impl Compiled {
    fn new(defs: &Map<String, Value>, root: &Value) -> Self {
        let mut c = Compiler {
            defs,
            nodes: Vec::new(),
            seen: HashMap::new(),
        };
        c.node(root);
        Self { nodes: c.nodes }
    }
}

struct Compiler<'a> {
    defs: &'a Map<String, Value>,
    nodes: Vec<Node>,
    /// Resolved schemas already compiled, by address: recursive types (JSONSchemaProps)
    /// point back at their own node.
    seen: HashMap<*const Value, NodeId>,
}

impl<'a> Compiler<'a> {
    fn node(&mut self, schema: &'a Value) -> NodeId {
        let schema = resolve(self.defs, schema);
        if let Some(&id) = self.seen.get(&(schema as *const Value)) {
            return id;
        }
        let id = self.nodes.len();
        self.nodes.push(Node::Unchecked);
        self.seen.insert(schema, id);
        let preserve = schema
            .get("x-kubernetes-preserve-unknown-fields")
            .and_then(Value::as_bool)
            == Some(true);
        let props = schema.get("properties").and_then(Value::as_object);
        let additional = schema.get("additionalProperties").filter(|a| a.is_object());
        let node = if preserve {
            Node::Unchecked
        } else if props.is_some() || additional.is_some() {
            let fields = props
                .into_iter()
                .flatten()
                .map(|(k, s)| (k.clone(), self.node(s)))
                .collect();
            let other = additional.map(|a| self.node(a));
            Node::Object { fields, other }
        } else if let Some(items) = schema.get("items") {
            Node::List(self.node(items))
        } else {
            Node::Unchecked
        };
        self.nodes[id] = node;
        id
    }
}

/// The schema a JSON schema node refers to.
fn resolve<'a>(defs: &'a Map<String, Value>, mut schema: &'a Value) -> &'a Value {
    for _ in 0..32 {
        let Some(r) = schema.get("$ref").and_then(Value::as_str) else {
            break;
        };
        match r.rsplit('/').next().and_then(|name| defs.get(name)) {
            Some(next) => schema = next,
            None => break,
        }
    }
    // `allOf: [{$ref}]` wraps a reference with a description.
    if let Some([only]) = schema
        .get("allOf")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
    {
        return resolve(defs, only);
    }
    schema
}

/// The compiled schema of a built-in kind; `None` for kinds without one here.
pub(super) fn of(group: &str, version: &str, kind: &str) -> Option<Arc<Compiled>> {
    type Entry = (String, String, Option<Arc<Compiled>>);
    // By kind, then group and version: looked up by `&str` on every write without
    // building an owned key.
    static CACHE: OnceLock<Mutex<HashMap<String, Vec<Entry>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let cached = |kinds: &HashMap<String, Vec<Entry>>| {
        kinds
            .get(kind)?
            .iter()
            .find(|(g, v, _)| g == group && v == version)
            .map(|(_, _, c)| c.clone())
    };
    if let Some(hit) = cached(&cache.lock()) {
        return hit;
    }
    let compiled = crate::openapi::schema_of(group, version, kind)
        .map(|(defs, root)| Arc::new(Compiled::new(&defs, &root)));
    let mut kinds = cache.lock();
    if cached(&kinds).is_none() {
        let entry = (group.to_string(), version.to_string(), compiled.clone());
        kinds.entry(kind.to_string()).or_default().push(entry);
    }
    compiled
}
