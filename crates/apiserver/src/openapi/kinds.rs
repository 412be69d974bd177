//! The Rust type behind each built-in kind, for schema generation: k8s-openapi's types
//! carry upstream's definition names (`io.k8s.api.core.v1.Pod`) and descriptions.

use k8s_openapi::api;
use schemars::{Schema, SchemaGenerator};

macro_rules! kinds {
    ($($group:literal $version:literal $kind:literal => $ty:ty),* $(,)?) => {
        /// The schema (a `$ref` into the generator's definitions) of a built-in kind.
        pub fn schema_for(generator: &mut SchemaGenerator, group: &str, version: &str, kind: &str) -> Option<Schema> {
            match (group, version, kind) {
                $(($group, $version, $kind) => Some(generator.subschema_for::<$ty>()),)*
                _ => None,
            }
        }
    };
}

kinds! {
    "" "v1" "Binding" => api::core::v1::Binding,
    "" "v1" "ComponentStatus" => api::core::v1::ComponentStatus,
    "" "v1" "ConfigMap" => api::core::v1::ConfigMap,
    "" "v1" "Endpoints" => api::core::v1::Endpoints,
    "" "v1" "Event" => api::core::v1::Event,
    "" "v1" "LimitRange" => api::core::v1::LimitRange,
    "" "v1" "Namespace" => api::core::v1::Namespace,
    "" "v1" "Node" => api::core::v1::Node,
    "" "v1" "PersistentVolumeClaim" => api::core::v1::PersistentVolumeClaim,
    "" "v1" "PersistentVolume" => api::core::v1::PersistentVolume,
    "" "v1" "Pod" => api::core::v1::Pod,
    "" "v1" "PodTemplate" => api::core::v1::PodTemplate,
    "" "v1" "ReplicationController" => api::core::v1::ReplicationController,
    "" "v1" "ResourceQuota" => api::core::v1::ResourceQuota,
    "" "v1" "Secret" => api::core::v1::Secret,
    "" "v1" "ServiceAccount" => api::core::v1::ServiceAccount,
    "" "v1" "Service" => api::core::v1::Service,
    "apps" "v1" "ControllerRevision" => api::apps::v1::ControllerRevision,
    "apps" "v1" "DaemonSet" => api::apps::v1::DaemonSet,
    "apps" "v1" "Deployment" => api::apps::v1::Deployment,
    "apps" "v1" "ReplicaSet" => api::apps::v1::ReplicaSet,
    "apps" "v1" "StatefulSet" => api::apps::v1::StatefulSet,
    "batch" "v1" "CronJob" => api::batch::v1::CronJob,
    "batch" "v1" "Job" => api::batch::v1::Job,
    "autoscaling" "v1" "Scale" => api::autoscaling::v1::Scale,
    "autoscaling" "v2" "HorizontalPodAutoscaler" => api::autoscaling::v2::HorizontalPodAutoscaler,
    "networking.k8s.io" "v1" "IngressClass" => api::networking::v1::IngressClass,
    "networking.k8s.io" "v1" "Ingress" => api::networking::v1::Ingress,
    "networking.k8s.io" "v1" "NetworkPolicy" => api::networking::v1::NetworkPolicy,
    "policy" "v1" "PodDisruptionBudget" => api::policy::v1::PodDisruptionBudget,
    "policy" "v1" "Eviction" => api::policy::v1::Eviction,
    "rbac.authorization.k8s.io" "v1" "ClusterRoleBinding" => api::rbac::v1::ClusterRoleBinding,
    "rbac.authorization.k8s.io" "v1" "ClusterRole" => api::rbac::v1::ClusterRole,
    "rbac.authorization.k8s.io" "v1" "RoleBinding" => api::rbac::v1::RoleBinding,
    "rbac.authorization.k8s.io" "v1" "Role" => api::rbac::v1::Role,
    "authentication.k8s.io" "v1" "SelfSubjectReview" => api::authentication::v1::SelfSubjectReview,
    "authentication.k8s.io" "v1" "TokenReview" => api::authentication::v1::TokenReview,
    "authentication.k8s.io" "v1" "TokenRequest" => api::authentication::v1::TokenRequest,
    "authorization.k8s.io" "v1" "LocalSubjectAccessReview" => api::authorization::v1::LocalSubjectAccessReview,
    "authorization.k8s.io" "v1" "SelfSubjectAccessReview" => api::authorization::v1::SelfSubjectAccessReview,
    "authorization.k8s.io" "v1" "SelfSubjectRulesReview" => api::authorization::v1::SelfSubjectRulesReview,
    "authorization.k8s.io" "v1" "SubjectAccessReview" => api::authorization::v1::SubjectAccessReview,
    "coordination.k8s.io" "v1" "Lease" => api::coordination::v1::Lease,
    "discovery.k8s.io" "v1" "EndpointSlice" => api::discovery::v1::EndpointSlice,
    "events.k8s.io" "v1" "Event" => api::events::v1::Event,
    "scheduling.k8s.io" "v1" "PriorityClass" => api::scheduling::v1::PriorityClass,
    "storage.k8s.io" "v1" "StorageClass" => api::storage::v1::StorageClass,
    "apiextensions.k8s.io" "v1" "CustomResourceDefinition" => k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
}

/// Meta types every document refers to.
pub fn meta_schemas(generator: &mut SchemaGenerator) {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1 as meta;
    generator.subschema_for::<meta::DeleteOptions>();
    generator.subschema_for::<meta::Status>();
    generator.subschema_for::<meta::WatchEvent<serde_json::Value>>();
}
