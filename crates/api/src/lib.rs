//! The Kubernetes API as data: which resources exist (group, version, kind, plural,
//! scope, short names, subresources), and the per-resource rules the generic registry
//! in the API server applies — defaulting, validation, spec/status split, field
//! selectors, server-side Table printing. Nothing here does I/O.
//!
//! Objects travel as `serde_json::Value` so that one registry serves built-in and
//! custom resources alike; strategies of built-in types decode into the typed structs
//! of k8s-openapi where they need to.

pub use k8s_openapi as k8s;

pub mod builtin;
pub mod crd;
pub mod fields;
pub mod meta;
pub mod patch_meta;
pub mod printers;
pub mod resource;
pub mod selectors;
pub mod strategies;
pub mod strategy;
pub mod table;
pub mod validation;

pub use resource::{ResourceInfo, Subresource};
pub use strategy::Strategy;
pub use validation::{FieldError, FieldErrorType};

/// The Kubernetes version this server reports and whose API it serves.
pub const KUBERNETES_VERSION: &str = "v1.33.5";
