//! Create: decode → defaults → mutating admission → prepare → name → validate →
//! validating admission → namespace check → store.

use rand::Rng;
use serde_json::{Value, json};

use api::{ResourceInfo, meta};

use super::{Context, Registry, codec, set_type_meta};
use crate::admission::{Operation, Request};
use crate::error::{ApiError, Result};

/// How many names `generateName` tries before giving up, as upstream retries.
const GENERATE_NAME_ATTEMPTS: usize = 8;

impl Registry {
    /// Creates `obj` in namespace `ns` (from the URL). Returns the stored object.
    pub async fn create(
        &self,
        info: &ResourceInfo,
        ns: Option<&str>,
        mut obj: Value,
        ctx: &Context,
    ) -> Result<Value> {
        check_type_meta(info, &obj)?;
        set_type_meta(info, &mut obj);
        let ns = reconcile_namespace(info, ns, &mut obj)?;
        fill_system_fields(info, &mut obj);

        info.strategy.default(&mut obj);
        let mut req = Request {
            operation: Operation::Create,
            info,
            subresource: None,
            namespace: ns.as_deref(),
            object: &mut obj,
            old: None,
            user: &ctx.user,
            dry_run: ctx.dry_run,
        };
        self.admission.admit(&mut req).await?;
        if info.strategy.resets_status_on_create() {
            meta::clear_status(&mut obj);
        }
        info.strategy.prepare_for_create(&mut obj);

        let generate = meta::name(&obj)
            .is_none()
            .then(|| meta::generate_name(&obj).map(str::to_string))
            .flatten();
        if let Some(prefix) = &generate {
            meta::set_str(&mut obj, "name", &generated_name(prefix));
        }
        if let Some(manager) = ctx.update_manager() {
            crate::managedfields::record_update(info, None, &mut obj, manager, ctx.subresource());
        }
        let errors = info.strategy.validate(&obj);
        if !errors.is_empty() {
            return Err(ApiError::invalid(
                info,
                meta::name(&obj).unwrap_or_default(),
                &errors,
            ));
        }
        let req = Request {
            operation: Operation::Create,
            info,
            subresource: None,
            namespace: ns.as_deref(),
            object: &mut obj,
            old: None,
            user: &ctx.user,
            dry_run: ctx.dry_run,
        };
        self.admission.validate(&req).await?;
        if let Some(ns) = &ns {
            self.check_namespace_open(info, ns, meta::name(&obj).unwrap_or_default())
                .await?;
        }
        let allocation =
            match self.allocator_for(info) {
                Some(a) => Some(a.allocate(&mut obj, ctx.dry_run).await.map_err(|e| {
                    super::alloc_error(info, meta::name(&obj).unwrap_or_default(), e)
                })?),
                None => None,
            };
        if ctx.dry_run {
            return Ok(obj);
        }
        let result = self
            .store_new(info, ns.as_deref(), obj, generate.as_deref())
            .await;
        if result.is_err()
            && let (Some(a), Some(alloc)) = (self.allocator_for(info), allocation)
        {
            a.release(alloc).await;
        }
        result
    }

    /// Writes a new object, retrying generated names that are taken.
    async fn store_new(
        &self,
        info: &ResourceInfo,
        ns: Option<&str>,
        mut obj: Value,
        generate: Option<&str>,
    ) -> Result<Value> {
        let attempts = if generate.is_some() {
            GENERATE_NAME_ATTEMPTS
        } else {
            1
        };
        for attempt in 1..=attempts {
            let name = meta::name(&obj).unwrap_or_default().to_string();
            let key = info.key(ns, &name);
            match self.store.create(&key, codec::encode(&obj)).await {
                Ok(kv) => {
                    codec::set_resource_version(&mut obj, kv.mod_revision);
                    return Ok(obj);
                }
                Err(store::Error::AlreadyExists { .. }) if attempt < attempts => {
                    let prefix = generate.unwrap_or_default();
                    meta::set_str(&mut obj, "name", &generated_name(prefix));
                }
                Err(e) => return Err(ApiError::from_store(e, info, &name)),
            }
        }
        unreachable!("the last attempt returns")
    }

    /// Upstream's NamespaceLifecycle admission: no new objects in a namespace that does
    /// not exist or is being deleted. Open namespaces are answered from memory.
    pub(crate) async fn check_namespace_open(
        &self,
        info: &ResourceInfo,
        ns: &str,
        name: &str,
    ) -> Result<()> {
        let Some(namespaces) = &self.namespaces_info else {
            return Ok(());
        };
        if self
            .namespaces
            .is_open(&self.store, || namespaces.list_prefix(None), ns)
        {
            return Ok(());
        }
        let kv = self
            .store
            .get(&namespaces.key(None, ns))
            .await
            .map_err(|e| ApiError::from_store(e, namespaces, ns))?;
        let Some(kv) = kv else {
            return Err(ApiError::not_found(namespaces, ns));
        };
        let namespace = codec::decode(&kv)?;
        if meta::deletion_timestamp(&namespace).is_some() {
            let mut err = ApiError::forbidden(
                info,
                name,
                &format!(
                    "unable to create new content in namespace {ns} because it is being terminated"
                ),
            );
            if let Some(d) = err.details.as_mut() {
                d["causes"] = json!([{
                    "reason": "NamespaceTerminating",
                    "message": format!("namespace {ns} is being terminated"),
                    "field": "metadata.namespace",
                }]);
            }
            return Err(err);
        }
        Ok(())
    }
}

/// Refuses a body whose apiVersion or kind names another type than the URL.
pub(crate) fn check_type_meta(info: &ResourceInfo, obj: &Value) -> Result<()> {
    if !obj.is_object() {
        return Err(ApiError::bad_request(
            "the body of the request must be a JSON object",
        ));
    }
    if let Some(v) = obj
        .get("apiVersion")
        .and_then(Value::as_str)
        .filter(|v| !v.is_empty())
        && v != info.api_version()
    {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({v}) does not match the expected API version ({})",
            info.api_version()
        )));
    }
    if let Some(k) = obj
        .get("kind")
        .and_then(Value::as_str)
        .filter(|k| !k.is_empty())
        && k != info.kind
    {
        return Err(ApiError::bad_request(format!(
            "the kind in the data ({k}) does not match the expected kind ({})",
            info.kind
        )));
    }
    Ok(())
}

/// The object's namespace: the URL's, which the body must agree with when it names one.
pub(crate) fn reconcile_namespace(
    info: &ResourceInfo,
    url_ns: Option<&str>,
    obj: &mut Value,
) -> Result<Option<String>> {
    if !info.namespaced {
        meta::remove(obj, "namespace");
        return Ok(None);
    }
    let body_ns = meta::namespace(obj).map(str::to_string);
    let ns = match (url_ns, body_ns) {
        (Some(u), Some(b)) if u != b => {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        (Some(u), _) => u.to_string(),
        (None, Some(b)) => b,
        (None, None) => {
            return Err(ApiError::bad_request(
                "the namespace of the object must be set",
            ));
        }
    };
    meta::set_str(obj, "namespace", &ns);
    Ok(Some(ns))
}

/// uid, creationTimestamp and generation belong to the server.
fn fill_system_fields(info: &ResourceInfo, obj: &mut Value) {
    let m = meta::metadata_mut(obj);
    for f in [
        "resourceVersion",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "selfLink",
    ] {
        m.remove(f);
    }
    // A v4 UUID from the thread's CSPRNG: `Uuid::new_v4` asks the kernel for every one.
    let uid = uuid::Builder::from_random_bytes(rand::random()).into_uuid();
    m.insert("uid".into(), Value::String(uid.to_string()));
    m.insert("creationTimestamp".into(), Value::String(meta::now()));
    if info.strategy.tracks_generation() {
        m.insert("generation".into(), json!(1));
    } else {
        m.remove("generation");
    }
}

/// `generateName` plus five random characters from upstream's alphabet (no vowels,
/// no look-alike digits).
fn generated_name(prefix: &str) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    const MAX_PREFIX: usize = 63 - 5;
    let prefix: String = prefix.chars().take(MAX_PREFIX).collect();
    let mut rng = rand::rng();
    let suffix: String = (0..5)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect();
    format!("{prefix}{suffix}")
}
