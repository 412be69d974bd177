//! The shape of the generated field table (`table.rs`).

/// One protobuf message: its path in k8s-pb (`api.apps.v1.Deployment`) and its fields,
/// sorted by tag.
pub struct Message {
    pub name: &'static str,
    pub fields: &'static [Field],
}

/// The type of a field. `M(i)` is `MESSAGES[i]`; maps are `map<string, ..>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ty {
    S,
    B,
    Bool,
    I32,
    I64,
    F64,
    M(u16),
    MapS,
    MapB,
    MapM(u16),
}

pub struct Field {
    pub tag: u32,
    /// The JSON name.
    pub json: &'static str,
    pub ty: Ty,
    pub repeated: bool,
    /// Emitted even when empty (the field is required in the schema); other empty
    /// strings are what Go's encoder writes for unset non-pointer fields.
    pub keep_empty: bool,
    /// A Go embedded struct: its fields go into the parent's JSON object.
    pub inline: bool,
}

pub const fn f(tag: u32, json: &'static str, ty: Ty) -> Field {
    Field {
        tag,
        json,
        ty,
        repeated: false,
        keep_empty: false,
        inline: false,
    }
}

pub const fn rep(tag: u32, json: &'static str, ty: Ty) -> Field {
    Field {
        tag,
        json,
        ty,
        repeated: true,
        keep_empty: false,
        inline: false,
    }
}

pub const fn keep(tag: u32, json: &'static str, ty: Ty) -> Field {
    Field {
        tag,
        json,
        ty,
        repeated: false,
        keep_empty: true,
        inline: false,
    }
}

pub const fn inl(tag: u32, json: &'static str, ty: Ty) -> Field {
    Field {
        tag,
        json,
        ty,
        repeated: false,
        keep_empty: false,
        inline: true,
    }
}
