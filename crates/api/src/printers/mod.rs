//! Server-side Table printers of the built-in resources, with kube-apiserver's columns
//! and cell formats (`pkg/printers/internalversion/printers.go`). The server prints
//! every column, wide ones included; kubectl hides priority-1 columns unless asked
//! for `-o wide`. Types without a printer get the default Name / Created At table.

mod apps;
mod batch;
mod cells;
mod config;
pub mod crd;
mod duration;
mod event;
pub mod jsonpath;
mod misc;
mod network;
mod node;
mod pod;
mod rbac;
mod scaling;
mod storage;

use std::sync::Arc;

use jiff::Timestamp;
use serde_json::Value;

use crate::table::{DefaultPrinter, Printer, TableColumnDefinition};

pub use duration::{human_duration, translate_timestamp_since};

/// A column definition known at compile time.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Col {
    name: &'static str,
    type_: &'static str,
    format: &'static str,
    description: &'static str,
    priority: i32,
}

impl Col {
    fn definition(&self) -> TableColumnDefinition {
        TableColumnDefinition::new(
            self.name,
            self.type_,
            self.format,
            self.description,
            self.priority,
        )
    }
}

/// A standard column.
pub(crate) const fn col(name: &'static str, type_: &'static str, description: &'static str) -> Col {
    Col {
        name,
        type_,
        format: "",
        description,
        priority: 0,
    }
}

/// A column shown only with `-o wide`.
pub(crate) const fn wide(
    name: &'static str,
    type_: &'static str,
    description: &'static str,
) -> Col {
    Col {
        priority: 1,
        ..col(name, type_, description)
    }
}

pub(crate) const NAME_DESCRIPTION: &str =
    "Name must be unique within a namespace; it identifies the object in URLs and references.";
pub(crate) const AGE_DESCRIPTION: &str =
    "How long ago the object was created (from metadata.creationTimestamp).";

/// The object's name, with the `name` format kubectl uses for `-o name`.
pub(crate) const NAME: Col = Col {
    format: "name",
    ..col("Name", "string", NAME_DESCRIPTION)
};
pub(crate) const AGE: Col = col("Age", "string", AGE_DESCRIPTION);

/// Fills one row of cells.
type RowFn = fn(&Value, Timestamp) -> Vec<Value>;

/// A printer of fixed columns and a function filling one row.
struct Static {
    columns: &'static [Col],
    row: RowFn,
}

impl Printer for Static {
    fn columns(&self) -> Vec<TableColumnDefinition> {
        self.columns.iter().map(Col::definition).collect()
    }

    fn row(&self, obj: &Value, now: Timestamp) -> Vec<Value> {
        (self.row)(obj, now)
    }
}

/// The printer of a built-in resource.
pub fn for_resource(group: &str, plural: &str) -> Arc<dyn Printer> {
    let (columns, row): (&'static [Col], RowFn) = match (group, plural) {
        ("", "pods") => (pod::COLUMNS, pod::row),
        ("", "podtemplates") => (apps::POD_TEMPLATE, apps::pod_template),
        ("", "replicationcontrollers") => {
            (apps::REPLICATION_CONTROLLER, apps::replication_controller)
        }
        ("apps", "replicasets") => (apps::REPLICA_SET, apps::replica_set),
        ("apps", "deployments") => (apps::DEPLOYMENT, apps::deployment),
        ("apps", "statefulsets") => (apps::STATEFUL_SET, apps::stateful_set),
        ("apps", "daemonsets") => (apps::DAEMON_SET, apps::daemon_set),
        ("apps", "controllerrevisions") => (apps::CONTROLLER_REVISION, apps::controller_revision),
        ("batch", "jobs") => (batch::JOB, batch::job),
        ("batch", "cronjobs") => (batch::CRON_JOB, batch::cron_job),
        ("", "services") => (network::SERVICE, network::service),
        ("", "endpoints") => (network::ENDPOINTS, network::endpoints),
        ("discovery.k8s.io", "endpointslices") => {
            (network::ENDPOINT_SLICE, network::endpoint_slice)
        }
        ("networking.k8s.io", "ingresses") => (network::INGRESS, network::ingress),
        ("networking.k8s.io", "ingressclasses") => (network::INGRESS_CLASS, network::ingress_class),
        ("networking.k8s.io", "networkpolicies") => {
            (network::NETWORK_POLICY, network::network_policy)
        }
        ("", "nodes") => (node::NODE, node::node),
        ("", "namespaces") => (node::NAMESPACE, node::namespace),
        ("", "componentstatuses") => (node::COMPONENT_STATUS, node::component_status),
        ("", "events") | ("events.k8s.io", "events") => (event::EVENT, event::event),
        ("", "configmaps") => (config::CONFIG_MAP, config::config_map),
        ("", "secrets") => (config::SECRET, config::secret),
        ("", "serviceaccounts") => (config::SERVICE_ACCOUNT, config::service_account),
        ("", "resourcequotas") => (config::RESOURCE_QUOTA, config::resource_quota),
        ("coordination.k8s.io", "leases") => (config::LEASE, config::lease),
        ("scheduling.k8s.io", "priorityclasses") => {
            (config::PRIORITY_CLASS, config::priority_class)
        }
        ("", "persistentvolumes") => (storage::PERSISTENT_VOLUME, storage::persistent_volume),
        ("", "persistentvolumeclaims") => (
            storage::PERSISTENT_VOLUME_CLAIM,
            storage::persistent_volume_claim,
        ),
        ("storage.k8s.io", "storageclasses") => (storage::STORAGE_CLASS, storage::storage_class),
        ("rbac.authorization.k8s.io", "rolebindings" | "clusterrolebindings") => {
            (rbac::BINDING, rbac::binding)
        }
        ("policy", "poddisruptionbudgets") => (scaling::PDB, scaling::pdb),
        ("autoscaling", "horizontalpodautoscalers") => (scaling::HPA, scaling::hpa),
        (
            "admissionregistration.k8s.io",
            "mutatingwebhookconfigurations" | "validatingwebhookconfigurations",
        ) => (misc::WEBHOOK_CONFIGURATION, misc::webhook_configuration),
        ("certificates.k8s.io", "certificatesigningrequests") => (misc::CSR, misc::csr),
        ("node.k8s.io", "runtimeclasses") => (misc::RUNTIME_CLASS, misc::runtime_class),
        ("storage.k8s.io", "csidrivers") => (misc::CSI_DRIVER, misc::csi_driver),
        ("storage.k8s.io", "csinodes") => (misc::CSI_NODE, misc::csi_node),
        ("storage.k8s.io", "volumeattachments") => {
            (misc::VOLUME_ATTACHMENT, misc::volume_attachment)
        }
        // Roles, cluster roles, limit ranges, CRDs and the rest print as upstream
        // prints types without a printer: Name and Created At.
        _ => return Arc::new(DefaultPrinter),
    };
    Arc::new(Static { columns, row })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builtin;
    use serde_json::json;

    #[test]
    fn every_builtin_row_fits_its_columns() {
        let now: Timestamp = "2024-05-01T12:00:00Z".parse().unwrap();
        let objects = [
            json!({}),
            json!({"metadata": {"name": "x", "creationTimestamp": "2024-05-01T11:00:00Z"}}),
        ];
        for info in builtin::resources() {
            let p = for_resource(&info.group, &info.plural);
            let cols = p.columns();
            assert!(!cols.is_empty(), "{}", info.plural);
            assert_eq!(
                cols.iter().filter(|c| c.format == "name").count(),
                1,
                "{}",
                info.plural
            );
            for obj in &objects {
                assert_eq!(p.row(obj, now).len(), cols.len(), "{}", info.plural);
            }
        }
    }

    #[test]
    fn wide_columns_come_after_standard_ones_except_events() {
        for (g, r) in [
            ("", "pods"),
            ("", "nodes"),
            ("apps", "deployments"),
            ("", "services"),
        ] {
            let cols = for_resource(g, r).columns();
            let first_wide = cols.iter().position(|c| c.priority == 1).unwrap();
            assert!(cols[first_wide..].iter().all(|c| c.priority == 1), "{r}");
        }
    }
}
