//! `metadata.managedFields`: decoding, encoding (in upstream's order) and the
//! identity of a manager entry.

use serde_json::{Map, Value, json};

use super::set::FieldSet;

pub const APPLY: &str = "Apply";
pub const UPDATE: &str = "Update";

/// One `ManagedFieldsEntry`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub manager: String,
    pub operation: String,
    pub api_version: String,
    pub time: Option<String>,
    pub subresource: String,
    pub set: FieldSet,
}

impl Entry {
    /// Whether `self` and `other` are the same manager (upstream's manager
    /// identifier: appliers are one manager across API versions).
    pub fn same_manager(
        &self,
        manager: &str,
        operation: &str,
        api_version: &str,
        sub: &str,
    ) -> bool {
        self.manager == manager
            && self.operation == operation
            && self.subresource == sub
            && (operation == APPLY || self.api_version == api_version)
    }

    /// How conflicts name the manager: `"m" with subresource "s" using apps/v1`.
    pub fn describe(&self) -> String {
        let mut s = format!("{:?}", self.manager);
        if !self.subresource.is_empty() {
            s.push_str(&format!(" with subresource {:?}", self.subresource));
        }
        if self.operation == UPDATE {
            s.push_str(&format!(" using {}", self.api_version));
        }
        s
    }

    fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("manager".into(), json!(self.manager));
        m.insert("operation".into(), json!(self.operation));
        m.insert("apiVersion".into(), json!(self.api_version));
        if let Some(t) = &self.time {
            m.insert("time".into(), json!(t));
        }
        m.insert("fieldsType".into(), json!("FieldsV1"));
        m.insert("fieldsV1".into(), self.set.to_json());
        if !self.subresource.is_empty() {
            m.insert("subresource".into(), json!(self.subresource));
        }
        Value::Object(m)
    }

    fn from_json(v: &Value) -> Result<Entry, String> {
        let o = v
            .as_object()
            .ok_or("a managedFields entry must be an object")?;
        let s = |k: &str| {
            o.get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let fields_type = s("fieldsType");
        if !fields_type.is_empty() && fields_type != "FieldsV1" {
            return Err(format!("invalid fieldsType {fields_type:?}"));
        }
        let operation = s("operation");
        if !matches!(operation.as_str(), "" | APPLY | UPDATE) {
            return Err(format!("invalid operation {operation:?}"));
        }
        let set = match o.get("fieldsV1") {
            None | Some(Value::Null) => FieldSet::new(),
            Some(f) => FieldSet::from_json(f)?,
        };
        Ok(Entry {
            manager: s("manager"),
            operation,
            api_version: s("apiVersion"),
            time: o.get("time").and_then(Value::as_str).map(str::to_string),
            subresource: s("subresource"),
            set,
        })
    }
}

/// All entries of an object.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Managers(pub Vec<Entry>);

impl Managers {
    /// The object's managedFields; `Err` when they cannot be decoded.
    pub fn decode(obj: &Value) -> Result<Managers, String> {
        match obj.pointer("/metadata/managedFields") {
            None | Some(Value::Null) => Ok(Managers::default()),
            Some(Value::Array(items)) => items
                .iter()
                .map(Entry::from_json)
                .collect::<Result<Vec<_>, _>>()
                .map(Managers),
            Some(_) => Err("managedFields must be a list".into()),
        }
    }

    /// The object's managedFields, or none when they are not valid.
    pub fn decode_or_empty(obj: &Value) -> Managers {
        Self::decode(obj).unwrap_or_default()
    }

    /// Writes the entries (without empty ones) into the object, sorted as upstream
    /// sorts them: appliers first, then by time, manager, apiVersion, subresource.
    pub fn encode(mut self, obj: &mut Value) {
        self.0.retain(|e| !e.set.is_empty());
        self.0.sort_by(|p, q| {
            (
                &p.operation,
                &p.time,
                &p.manager,
                &p.api_version,
                &p.subresource,
            )
                .cmp(&(
                    &q.operation,
                    &q.time,
                    &q.manager,
                    &q.api_version,
                    &q.subresource,
                ))
        });
        let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) else {
            return;
        };
        if self.0.is_empty() {
            m.shift_remove("managedFields");
        } else {
            let list: Vec<Value> = self.0.iter().map(Entry::to_json).collect();
            m.insert("managedFields".into(), Value::Array(list));
        }
    }

    pub fn position(
        &self,
        manager: &str,
        operation: &str,
        api_version: &str,
        sub: &str,
    ) -> Option<usize> {
        self.0
            .iter()
            .position(|e| e.same_manager(manager, operation, api_version, sub))
    }

    /// Whether the field sets (not the times) are the same.
    pub fn same_sets(&self, other: &Managers) -> bool {
        let key = |m: &Managers| {
            let mut v: Vec<(String, String, String, String, FieldSet)> =
                m.0.iter()
                    .filter(|e| !e.set.is_empty())
                    .map(|e| {
                        (
                            e.manager.clone(),
                            e.operation.clone(),
                            e.api_version.clone(),
                            e.subresource.clone(),
                            e.set.clone(),
                        )
                    })
                    .collect();
            v.sort_by(|a, b| (&a.0, &a.1, &a.2, &a.3).cmp(&(&b.0, &b.1, &b.2, &b.3)));
            v
        };
        key(self) == key(other)
    }
}
