//! Strategic-merge metadata of the built-in types: which lists merge item by item and
//! by which key (upstream's `patchStrategy`/`patchMergeKey` struct tags), looked up by
//! field path. Lists not named here are replaced as a whole, as upstream does for
//! lists without a patch strategy.

use crate::ResourceInfo;

/// Merge keys of one resource's fields.
pub struct MergeKeys {
    service: bool,
}

impl MergeKeys {
    pub fn for_resource(info: &ResourceInfo) -> Self {
        Self {
            service: info.group.is_empty() && info.plural == "services",
        }
    }

    /// For custom resources and unknown types: every list is atomic.
    pub fn none() -> Self {
        Self { service: false }
    }

    /// The merge key of the list at `path` (`/spec/template/spec/containers`), if it
    /// merges by key.
    pub fn merge_key(&self, path: &str) -> Option<&'static str> {
        let mut segs = path.rsplit('/');
        let last = segs.next()?;
        let parent = segs.next().unwrap_or_default();
        Some(match last {
            "containers"
            | "initContainers"
            | "ephemeralContainers"
            | "volumes"
            | "env"
            | "imagePullSecrets"
            | "resourceClaims" => "name",
            "ports" if self.service && path == "/spec/ports" => "port",
            "ports"
                if matches!(
                    parent,
                    "containers" | "initContainers" | "ephemeralContainers"
                ) =>
            {
                "containerPort"
            }
            "volumeMounts" => "mountPath",
            "volumeDevices" => "devicePath",
            "hostAliases" => "ip",
            "conditions" => "type",
            "addresses" if parent == "status" => "type",
            "ownerReferences" => "uid",
            "topologySpreadConstraints" => "topologyKey",
            _ => return None,
        })
    }

    /// Lists of scalars that merge as sets (`metadata.finalizers`).
    pub fn is_merge_primitive_list(&self, path: &str) -> bool {
        path == "/metadata/finalizers"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn knows_the_common_merge_keys() {
        let all = crate::builtin::resources();
        let svc = all.iter().find(|r| r.plural == "services").unwrap();
        let deploy = all.iter().find(|r| r.plural == "deployments").unwrap();
        assert_eq!(
            MergeKeys::for_resource(svc).merge_key("/spec/ports"),
            Some("port")
        );
        let d = MergeKeys::for_resource(deploy);
        assert_eq!(d.merge_key("/spec/template/spec/containers"), Some("name"));
        assert_eq!(
            d.merge_key("/spec/template/spec/containers/ports"),
            Some("containerPort")
        );
        assert_eq!(d.merge_key("/spec/template/spec/tolerations"), None);
    }
}
