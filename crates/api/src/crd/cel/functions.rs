//! The CEL environment rules are compiled and run in: the standard library, the
//! strings and lists extensions the cel crate ships, and the Kubernetes libraries
//! it lacks (`library/`): lists (`isSorted`, `sum`, `min`, `max`, `indexOf`,
//! `lastIndexOf`), regex (`find`, `findAll`), quantity (`quantity()`,
//! `isQuantity()` and the Quantity methods), URLs (`url()`, `isURL()`, `getScheme`,
//! `getHost`, `getHostname`, `getPort`, `getEscapedPath`, `getQuery`), IP and CIDR
//! (`ip()`, `isIP()`, `ip.isCanonical()`, `cidr()`, `isCIDR()` and their methods,
//! `string()` of both), sets (`sets.contains`, `sets.equivalent`,
//! `sets.intersects`), formats (`format.named()`, `format.dns1123Label()` and
//! the other named formats, `validate()`), semver (`semver()`, `isSemver()` and
//! the Semver methods), bindings (`cel.bind`, a macro) and the two-variable
//! comprehensions (`all`, `exists`, `existsOne` with an index or key and a
//! value, `transformList`, `transformMap`, `transformMapEntry`; macros).
//!
//! `duration()`, `timestamp()` and their accessors come from the standard library
//! (the crate's chrono feature); strings of format `date-time`, `date` and
//! `duration` reach rules as timestamps and durations (`values.rs`).
//!
//! Not provided: the quantity `mul` / `div` / `divInt`. (The authorizer library
//! is for admission policies, not CRD rules.)

use std::sync::{Arc, LazyLock};

use cel::Env;

use super::library;

/// Built once: every rule of every CRD shares it.
pub(super) static ENV: LazyLock<Arc<Env>> = LazyLock::new(|| Arc::new(build()));

fn build() -> Env {
    let mut env = Env::stdlib();
    let added = env
        .add_extension(cel::extensions::strings)
        .and_then(|_| env.add_extension(cel::extensions::lists))
        .and_then(|_| library::register(&mut env));
    added.expect("the CEL library declares each overload once");
    env
}

/// The names a rule may call (besides operators), checked when a CRD is written so
/// that a typo is refused then, as upstream's type checker refuses it.
pub(super) const FUNCTIONS: &[&str] = &[
    // standard library
    "size",
    "contains",
    "startsWith",
    "endsWith",
    "matches",
    "int",
    "uint",
    "double",
    "string",
    "bytes",
    "bool",
    "type",
    "dyn",
    "has",
    "timestamp",
    "duration",
    "getFullYear",
    "getMonth",
    "getDayOfYear",
    "getDayOfMonth",
    "getDate",
    "getDayOfWeek",
    "getHours",
    "getMinutes",
    "getSeconds",
    "getMilliseconds",
    "all",
    "exists",
    "exists_one",
    "map",
    "filter",
    // strings extension
    "charAt",
    "indexOf",
    "lastIndexOf",
    "join",
    "lowerAscii",
    "upperAscii",
    "trim",
    "replace",
    "split",
    "substring",
    "format",
    "reverse",
    "strings.quote",
    // lists extension
    "slice",
    "flatten",
    "distinct",
    "sort",
    "sortBy",
    "lists.range",
    // Kubernetes lists and regex libraries
    "isSorted",
    "sum",
    "min",
    "max",
    "find",
    "findAll",
    // quantity
    "quantity",
    "isQuantity",
    "isInteger",
    "asInteger",
    "asApproximateFloat",
    "sign",
    "add",
    "sub",
    "isGreaterThan",
    "isLessThan",
    "compareTo",
    // URLs
    "url",
    "isURL",
    "getScheme",
    "getHost",
    "getHostname",
    "getPort",
    "getEscapedPath",
    "getQuery",
    // IP and CIDR
    "ip",
    "isIP",
    "ip.isCanonical",
    "family",
    "isUnspecified",
    "isLoopback",
    "isLinkLocalMulticast",
    "isLinkLocalUnicast",
    "isGlobalUnicast",
    "cidr",
    "isCIDR",
    "containsIP",
    "containsCIDR",
    "prefixLength",
    "masked",
    // semver
    "semver",
    "isSemver",
    "major",
    "minor",
    "patch",
    // sets
    "sets.contains",
    "sets.equivalent",
    "sets.intersects",
    // format
    "format.named",
    "validate",
    "format.dns1123Label",
    "format.dns1123Subdomain",
    "format.dns1035Label",
    "format.qualifiedName",
    "format.dns1123LabelPrefix",
    "format.dns1123SubdomainPrefix",
    "format.dns1035LabelPrefix",
    "format.labelValue",
    "format.uri",
    "format.uuid",
    "format.byte",
    "format.date",
    "format.datetime",
    // optionals
    "optional.of",
    "optional.none",
    "optional.ofNonZeroValue",
    "hasValue",
    "value",
    "orValue",
    "or",
];

/// The identifiers that name types (`type(self) == string`).
pub(super) const TYPE_NAMES: &[&str] = &[
    "int",
    "uint",
    "double",
    "string",
    "bytes",
    "bool",
    "list",
    "map",
    "null_type",
    "type",
    "dyn",
    "null",
];
