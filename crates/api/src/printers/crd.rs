//! Tables of custom resources, from the CRD version's `additionalPrinterColumns`
//! (upstream's apiextensions `tableconvertor`): a Name column, then one column per
//! printer column, each cell found by its JSON path and shaped by its type. A version
//! without printer columns gets an Age column.

use jiff::Timestamp;
use serde::Deserialize;
use serde_json::{Number, Value};

use super::NAME_DESCRIPTION;
use super::duration::{human_duration, parse_time};
use super::jsonpath::{JsonPath, JsonPathError};
use crate::table::{Printer, TableColumnDefinition};

/// One `additionalPrinterColumns` entry, as in the CRD.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PrinterColumn {
    pub name: String,
    /// `string`, `integer`, `number`, `boolean` or `date`.
    #[serde(rename = "type")]
    pub type_: String,
    #[serde(default)]
    pub format: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub priority: i32,
    pub json_path: String,
}

#[derive(Debug, thiserror::Error)]
pub enum CrdPrinterError {
    #[error("invalid additionalPrinterColumns: {0}")]
    Decode(#[from] serde_json::Error),
    #[error(transparent)]
    JsonPath(#[from] JsonPathError),
}

/// The Table printer of one served version of a custom resource.
pub struct CrdPrinter {
    columns: Vec<(PrinterColumn, JsonPath)>,
}

impl CrdPrinter {
    pub fn new(mut columns: Vec<PrinterColumn>) -> Result<Self, CrdPrinterError> {
        if columns.is_empty() {
            columns.push(PrinterColumn {
                name: "Age".to_string(),
                type_: "date".to_string(),
                format: String::new(),
                description: super::AGE_DESCRIPTION.to_string(),
                priority: 0,
                json_path: ".metadata.creationTimestamp".to_string(),
            });
        }
        let columns = columns
            .into_iter()
            .map(|c| JsonPath::parse(&c.json_path).map(|p| (c, p)))
            .collect::<Result<_, _>>()?;
        Ok(Self { columns })
    }

    /// From the `additionalPrinterColumns` JSON of a CRD version (null or absent: none).
    pub fn from_json(columns: &Value) -> Result<Self, CrdPrinterError> {
        let columns = if columns.is_null() {
            Vec::new()
        } else {
            serde_json::from_value(columns.clone())?
        };
        Self::new(columns)
    }
}

/// Go's `fmt.Print` of a decoded JSON value, which kubectl's JSONPath printing uses
/// for string columns: maps as `map[k:v]` with sorted keys, lists as `[a b]`.
fn go_print(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        Value::Array(a) => format!("[{}]", a.iter().map(go_print).collect::<Vec<_>>().join(" ")),
        Value::Object(o) => {
            let mut keys: Vec<&String> = o.keys().collect();
            keys.sort();
            let items: Vec<String> = keys
                .into_iter()
                .map(|k| format!("{k}:{}", go_print(&o[k])))
                .collect();
            format!("map[{}]", items.join(" "))
        }
    }
}

/// Upstream's `cellForJSONValue` plus its string case: a value of the wrong type for
/// the column is a null cell.
fn cell(type_: &str, v: &Value, now: Timestamp) -> Value {
    match (type_, v) {
        (_, Value::Null) => Value::Null,
        ("string", v) => Value::String(go_print(v)),
        ("integer", Value::Number(n)) => n
            .as_i64()
            .or_else(|| n.as_f64().map(|f| f as i64))
            .map_or(Value::Null, Value::from),
        ("number", Value::Number(n)) => n
            .as_f64()
            .and_then(Number::from_f64)
            .map_or(Value::Null, Value::Number),
        ("boolean", Value::Bool(b)) => Value::Bool(*b),
        ("date", Value::String(s)) => {
            if s.is_empty() || s == "null" {
                return Value::String("<unknown>".to_string());
            }
            match s.parse::<Timestamp>() {
                Err(_) => Value::String("<invalid>".to_string()),
                Ok(_) => Value::String(match parse_time(s) {
                    Some(t) => human_duration(now.duration_since(t)),
                    None => "<unknown>".to_string(),
                }),
            }
        }
        _ => Value::Null,
    }
}

impl Printer for CrdPrinter {
    fn columns(&self) -> Vec<TableColumnDefinition> {
        let mut out = vec![TableColumnDefinition::new(
            "Name",
            "string",
            "name",
            NAME_DESCRIPTION,
            0,
        )];
        out.extend(self.columns.iter().map(|(c, _)| {
            TableColumnDefinition::new(&c.name, &c.type_, &c.format, &c.description, c.priority)
        }));
        out
    }

    fn row(&self, obj: &Value, now: Timestamp) -> Vec<Value> {
        let mut cells = vec![Value::from(obj["metadata"]["name"].as_str().unwrap_or(""))];
        for (c, path) in &self.columns {
            cells.push(match path.first(obj) {
                Some(v) => cell(&c.type_, v, now),
                None => Value::Null,
            });
        }
        cells
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> Timestamp {
        "2024-05-01T12:00:00Z".parse().unwrap()
    }

    #[test]
    fn default_columns_are_name_and_age() {
        let p = CrdPrinter::from_json(&Value::Null).unwrap();
        let names: Vec<String> = p.columns().into_iter().map(|c| c.name).collect();
        assert_eq!(names, ["Name", "Age"]);
        let obj = json!({"metadata": {"name": "x", "creationTimestamp": "2024-05-01T11:00:00Z"}});
        assert_eq!(p.row(&obj, now()), [json!("x"), json!("60m")]);
    }

    #[test]
    fn typed_cells() {
        let p = CrdPrinter::from_json(&json!([
            {"name": "Ready", "type": "string", "jsonPath": ".status.conditions[?(@.type==\"Ready\")].status"},
            {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas", "priority": 1},
            {"name": "Ratio", "type": "number", "jsonPath": ".spec.ratio"},
            {"name": "Paused", "type": "boolean", "jsonPath": ".spec.paused"},
            {"name": "Started", "type": "date", "jsonPath": ".status.startedAt"},
            {"name": "Tags", "type": "string", "jsonPath": ".spec.tags"},
            {"name": "Missing", "type": "string", "jsonPath": ".spec.nothing"},
            {"name": "Wrong", "type": "integer", "jsonPath": ".spec.paused"}
        ]))
        .unwrap();
        let cols = p.columns();
        assert_eq!((cols[0].format.as_str(), cols[2].priority), ("name", 1));
        let obj = json!({"metadata": {"name": "r"},
            "spec": {"replicas": 3, "ratio": 0.5, "paused": true, "tags": ["a", "b"]},
            "status": {"startedAt": "2024-05-01T11:59:00Z",
                       "conditions": [{"type": "Synced", "status": "True"}, {"type": "Ready", "status": "False"}]}});
        assert_eq!(
            p.row(&obj, now()),
            [
                json!("r"),
                json!("False"),
                json!(3),
                json!(0.5),
                json!(true),
                json!("60s"),
                json!("[a b]"),
                Value::Null,
                Value::Null
            ]
        );
        let bad_date =
            CrdPrinter::from_json(&json!([{"name": "D", "type": "date", "jsonPath": ".d"}]))
                .unwrap();
        assert_eq!(
            bad_date.row(&json!({"d": "yesterday"}), now())[1],
            json!("<invalid>")
        );
    }

    #[test]
    fn rejects_bad_definitions() {
        assert!(
            CrdPrinter::from_json(&json!([{"name": "X", "type": "string", "jsonPath": ".a["}]))
                .is_err()
        );
        assert!(CrdPrinter::from_json(&json!([{"name": "X"}])).is_err());
    }
}
