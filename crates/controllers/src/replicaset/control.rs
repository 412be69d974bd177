//! Creating and deleting pods on behalf of a set, with the events upstream's
//! RealPodControl records. A trait, so tests can record the calls instead.

use std::future::Future;

use k8s_openapi::api::core::v1::{ObjectReference, Pod};
use kube::api::{Api, DeleteParams, PostParams};

use crate::events::{EventType, Recorder};

pub trait PodControl: Send + Sync + 'static {
    /// Creates `pod` in `owner`'s namespace; the created pod (with its generated name).
    fn create(
        &self,
        pod: Pod,
        owner: &ObjectReference,
    ) -> impl Future<Output = kube::Result<Pod>> + Send;
    fn delete(
        &self,
        name: &str,
        owner: &ObjectReference,
    ) -> impl Future<Output = kube::Result<()>> + Send;
}

/// Pod control through the API server.
pub struct ApiPodControl {
    pub client: kube::Client,
    pub recorder: Recorder,
}

fn namespace(owner: &ObjectReference) -> String {
    owner.namespace.clone().unwrap_or_default()
}

impl PodControl for ApiPodControl {
    async fn create(&self, pod: Pod, owner: &ObjectReference) -> kube::Result<Pod> {
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &namespace(owner));
        let result = api.create(&PostParams::default(), &pod).await;
        let (kind, reason, message) = match &result {
            Ok(p) => (
                EventType::Normal,
                "SuccessfulCreate",
                format!(
                    "Created pod: {}",
                    p.metadata.name.as_deref().unwrap_or_default()
                ),
            ),
            Err(e) => (
                EventType::Warning,
                "FailedCreate",
                format!("Error creating: {}", api_message(e)),
            ),
        };
        let (recorder, owner) = (self.recorder.clone(), owner.clone());
        tokio::spawn(async move { recorder.record(&owner, kind, reason, &message).await });
        result
    }

    async fn delete(&self, name: &str, owner: &ObjectReference) -> kube::Result<()> {
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &namespace(owner));
        let result = api.delete(name, &DeleteParams::default()).await.map(|_| ());
        let event = match &result {
            Ok(()) => Some((
                EventType::Normal,
                "SuccessfulDelete",
                format!("Deleted pod: {name}"),
            )),
            Err(kube::Error::Api(s)) if s.code == 404 => None,
            Err(e) => Some((
                EventType::Warning,
                "FailedDelete",
                format!("Error deleting: {}", api_message(e)),
            )),
        };
        if let Some((kind, reason, message)) = event {
            let (recorder, owner) = (self.recorder.clone(), owner.clone());
            tokio::spawn(async move { recorder.record(&owner, kind, reason, &message).await });
        }
        result
    }
}

/// The server's message for API errors (as upstream prints them), else the error.
pub fn api_message(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => s.message.clone(),
        other => other.to_string(),
    }
}
