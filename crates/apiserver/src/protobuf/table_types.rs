//! The shape of the generated field table (`table.rs`).

/// One protobuf message: its path in k8s-pb with upstream's spelling of the name
/// (`api.apps.v1.Deployment`) and its fields, sorted by tag.
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

/// How a field's value lands in the JSON object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Emitted when present, except the empty string: Go's encoder writes every
    /// non-pointer string, so "" is an unset field.
    Plain,
    /// Emitted when present, even "" (required in the schema: no `omitempty` in Go).
    Keep,
    /// A number or boolean whose zero means unset (a non-pointer `omitempty` field Go
    /// always writes, or one defaulted when zero): 0 and false are dropped.
    ZeroUnset,
    /// `repeated`: an array of every occurrence.
    Repeated,
    /// A Go embedded struct: its fields go into the parent's JSON object.
    Inline,
}

pub struct Field {
    pub tag: u32,
    /// The JSON name.
    pub json: &'static str,
    pub ty: Ty,
    pub mode: Mode,
}

pub const fn f(tag: u32, json: &'static str, ty: Ty) -> Field {
    Field {
        tag,
        json,
        ty,
        mode: Mode::Plain,
    }
}

pub const fn keep(tag: u32, json: &'static str, ty: Ty) -> Field {
    Field {
        tag,
        json,
        ty,
        mode: Mode::Keep,
    }
}

pub const fn z(tag: u32, json: &'static str, ty: Ty) -> Field {
    Field {
        tag,
        json,
        ty,
        mode: Mode::ZeroUnset,
    }
}

pub const fn rep(tag: u32, json: &'static str, ty: Ty) -> Field {
    Field {
        tag,
        json,
        ty,
        mode: Mode::Repeated,
    }
}

pub const fn inl(tag: u32, json: &'static str, ty: Ty) -> Field {
    Field {
        tag,
        json,
        ty,
        mode: Mode::Inline,
    }
}
