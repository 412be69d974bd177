//! The kubelet's view of a container runtime: the CRI v1 calls it makes, as traits.
//!
//! Messages are k8s-cri's generated `runtime.v1` types, so a kubelet can build
//! configs exactly as upstream does; the traits only unwrap the request/response
//! envelopes that carry nothing but ids.

use std::time::Duration;

use async_trait::async_trait;
use k8s_cri::v1::{
    AttachRequest, AuthConfig, Container, ContainerConfig, ContainerFilter, ContainerStats,
    ContainerStatsFilter, ContainerStatus, ExecRequest, ExecSyncResponse, Image, ImageFilter,
    ImageSpec, PodSandbox, PodSandboxConfig, PodSandboxFilter, PodSandboxStatusResponse,
    StatusResponse, VersionResponse,
};

/// Errors of a CRI call.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The runtime's socket could not be dialled.
    #[error("cannot connect to the CRI socket {path}: {source}")]
    Connect {
        path: std::path::PathBuf,
        #[source]
        source: tonic::transport::Error,
    },
    /// The runtime answered with a gRPC error.
    #[error("CRI {method} failed ({code:?}): {message}", code = .status.code(), message = .status.message())]
    Status {
        method: &'static str,
        status: tonic::Status,
    },
    /// The runtime does not implement the call.
    #[error("CRI {0} is not supported by this runtime")]
    Unsupported(&'static str),
    /// The runtime answered without a field the protocol says it must fill.
    #[error("CRI {method} answered without {field}")]
    Missing {
        method: &'static str,
        field: &'static str,
    },
}

impl Error {
    /// The gRPC code, when the runtime answered at all.
    pub fn code(&self) -> Option<tonic::Code> {
        match self {
            Error::Status { status, .. } => Some(status.code()),
            _ => None,
        }
    }

    /// Whether the runtime said the object does not exist (the kubelet treats
    /// that as "already gone" when removing).
    pub fn is_not_found(&self) -> bool {
        self.code() == Some(tonic::Code::NotFound)
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Pod sandboxes and containers (CRI `RuntimeService`), the calls a kubelet makes.
#[async_trait]
pub trait RuntimeService: Send + Sync {
    /// Runtime name and versions.
    async fn version(&self) -> Result<VersionResponse>;
    /// Runtime conditions (RuntimeReady, NetworkReady): the node's readiness.
    async fn status(&self) -> Result<StatusResponse>;

    /// Creates and starts a sandbox (network namespace, IP, pause process); returns its id.
    async fn run_pod_sandbox(
        &self,
        config: PodSandboxConfig,
        runtime_handler: &str,
    ) -> Result<String>;
    /// Stops the sandbox's processes and tears its network down; idempotent.
    async fn stop_pod_sandbox(&self, pod_sandbox_id: &str) -> Result<()>;
    /// Removes a stopped sandbox and its containers; idempotent.
    async fn remove_pod_sandbox(&self, pod_sandbox_id: &str) -> Result<()>;
    /// The sandbox's state, IPs and (in `containers_statuses`, if the runtime fills it) containers.
    async fn pod_sandbox_status(&self, pod_sandbox_id: &str) -> Result<PodSandboxStatusResponse>;
    async fn list_pod_sandbox(&self, filter: Option<PodSandboxFilter>) -> Result<Vec<PodSandbox>>;

    /// Creates a container in a sandbox; returns its id. `sandbox_config` is the
    /// config the sandbox was run with.
    async fn create_container(
        &self,
        pod_sandbox_id: &str,
        config: ContainerConfig,
        sandbox_config: PodSandboxConfig,
    ) -> Result<String>;
    async fn start_container(&self, container_id: &str) -> Result<()>;
    /// Sends the stop signal, then SIGKILL after `timeout`.
    async fn stop_container(&self, container_id: &str, timeout: Duration) -> Result<()>;
    async fn remove_container(&self, container_id: &str) -> Result<()>;
    async fn container_status(&self, container_id: &str) -> Result<ContainerStatus>;
    async fn list_containers(&self, filter: Option<ContainerFilter>) -> Result<Vec<Container>>;
    /// Runs `cmd` in the container and collects its output (exec probes, `kubectl exec` without a TTY).
    /// A zero `timeout` means none.
    async fn exec_sync(
        &self,
        container_id: &str,
        cmd: Vec<String>,
        timeout: Duration,
    ) -> Result<ExecSyncResponse>;

    /// The runtime's streaming-server URL for an exec session (`kubectl exec`).
    /// Runtimes without a streaming server keep the default: not supported.
    async fn exec(&self, req: ExecRequest) -> Result<String> {
        let _ = req;
        Err(Error::Unsupported("Exec"))
    }

    /// The streaming-server URL for attaching to a container's stdio.
    async fn attach(&self, req: AttachRequest) -> Result<String> {
        let _ = req;
        Err(Error::Unsupported("Attach"))
    }

    /// Resource usage (CPU, memory, writable layer) of the containers `filter` picks;
    /// runtimes that keep no statistics keep the default: not supported.
    async fn list_container_stats(
        &self,
        filter: Option<ContainerStatsFilter>,
    ) -> Result<Vec<ContainerStats>> {
        let _ = filter;
        Err(Error::Unsupported("ListContainerStats"))
    }

    /// The streaming-server URL for forwarding ports into a sandbox's network.
    async fn port_forward(&self, pod_sandbox_id: &str, ports: Vec<i32>) -> Result<String> {
        let _ = (pod_sandbox_id, ports);
        Err(Error::Unsupported("PortForward"))
    }
}

/// Images (CRI `ImageService`).
#[async_trait]
pub trait ImageService: Send + Sync {
    /// The image if present, `None` if the runtime does not have it.
    async fn image_status(&self, image: ImageSpec) -> Result<Option<Image>>;
    async fn list_images(&self, filter: Option<ImageFilter>) -> Result<Vec<Image>>;
    /// Pulls an image; returns its image ref (digest).
    async fn pull_image(
        &self,
        image: ImageSpec,
        auth: Option<AuthConfig>,
        sandbox_config: Option<PodSandboxConfig>,
    ) -> Result<String>;
    /// Removes an image; idempotent.
    async fn remove_image(&self, image: ImageSpec) -> Result<()>;
}

/// An `ImageSpec` for a plain image reference.
pub fn image_spec(image: &str) -> ImageSpec {
    ImageSpec {
        image: image.to_string(),
        ..Default::default()
    }
}
