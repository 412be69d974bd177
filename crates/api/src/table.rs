//! meta.k8s.io/v1 Table, the server-side printing kubectl asks for with
//! `Accept: application/json;as=Table;g=meta.k8s.io;v=v1`. k8s-openapi has no type for it.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TableColumnDefinition {
    pub name: String,
    /// OpenAPI type: `string`, `integer`, `number`, `boolean`, `date`.
    #[serde(rename = "type")]
    pub type_: String,
    /// OpenAPI format: `name` for the name column, otherwise usually empty.
    pub format: String,
    pub description: String,
    /// 0 for standard columns, 1 and up for `-o wide`.
    pub priority: i32,
}

impl TableColumnDefinition {
    pub fn new(name: &str, type_: &str, format: &str, description: &str, priority: i32) -> Self {
        Self {
            name: name.to_string(),
            type_: type_.to_string(),
            format: format.to_string(),
            description: description.to_string(),
            priority,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TableRow {
    pub cells: Vec<Value>,
    /// The object, or its PartialObjectMetadata, as `includeObject` asks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object: Option<Value>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Table {
    pub kind: String,
    pub api_version: String,
    pub metadata: Value,
    pub column_definitions: Vec<TableColumnDefinition>,
    pub rows: Vec<TableRow>,
}

/// Server-side printing of one resource: its columns, and one row per object.
pub trait Printer: Send + Sync {
    fn columns(&self) -> Vec<TableColumnDefinition>;
    /// The cells of one object, one per column, as kube-apiserver fills them.
    fn row(&self, obj: &Value, now: Timestamp) -> Vec<Value>;
}

/// Upstream's default table convertor for types without a printer: Name and Created At.
pub struct DefaultPrinter;

impl Printer for DefaultPrinter {
    fn columns(&self) -> Vec<TableColumnDefinition> {
        vec![
            TableColumnDefinition::new(
                "Name",
                "string",
                "name",
                "Name of the object, unique within its namespace.",
                0,
            ),
            TableColumnDefinition::new(
                "Created At",
                "date",
                "",
                "When the object was created (RFC 3339, UTC).",
                0,
            ),
        ]
    }

    fn row(&self, obj: &Value, _now: Timestamp) -> Vec<Value> {
        let meta = &obj["metadata"];
        vec![meta["name"].clone(), meta["creationTimestamp"].clone()]
    }
}
