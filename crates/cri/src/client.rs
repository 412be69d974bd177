//! `CriClient`: the CRI v1 services over a unix socket (containerd's, or any CRI runtime's).

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use hyper_util::rt::TokioIo;
use k8s_cri::v1::image_service_client::ImageServiceClient;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use k8s_cri::v1::*;
use tokio::net::UnixStream;
use tonic::transport::{Channel, Endpoint, Uri};

use crate::service::{Error, ImageService, Result, RuntimeService};

/// The kubelet's default: list responses of a full node exceed tonic's 4 MiB default.
const MAX_MESSAGE: usize = 16 << 20;

/// A CRI v1 client over a unix socket. Cheap to clone; calls may run concurrently.
#[derive(Clone, Debug)]
pub struct CriClient {
    runtime: RuntimeServiceClient<Channel>,
    images: ImageServiceClient<Channel>,
    socket: PathBuf,
}

impl CriClient {
    /// Dials `socket` (one HTTP/2 connection, redialled by tonic if it breaks).
    pub async fn connect(socket: impl AsRef<Path>) -> Result<Self> {
        let socket = socket.as_ref().to_path_buf();
        let dial = socket.clone();
        // tonic wants a URI; the connector ignores it and always dials the socket.
        let channel =
            Endpoint::from_static("http://localhost")
                .connect_timeout(Duration::from_secs(5))
                .connect_with_connector(tower::service_fn(move |_: Uri| {
                    let dial = dial.clone();
                    async move {
                        Ok::<_, std::io::Error>(TokioIo::new(UnixStream::connect(dial).await?))
                    }
                }))
                .await
                .map_err(|source| Error::Connect {
                    path: socket.clone(),
                    source,
                })?;
        Ok(CriClient {
            runtime: RuntimeServiceClient::new(channel.clone())
                .max_decoding_message_size(MAX_MESSAGE),
            images: ImageServiceClient::new(channel).max_decoding_message_size(MAX_MESSAGE),
            socket,
        })
    }

    /// The socket this client dials.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    fn rt(&self) -> RuntimeServiceClient<Channel> {
        self.runtime.clone()
    }

    fn img(&self) -> ImageServiceClient<Channel> {
        self.images.clone()
    }
}

/// Maps a gRPC status to our error, naming the CRI method.
fn failed(method: &'static str) -> impl FnOnce(tonic::Status) -> Error {
    move |status| Error::Status { method, status }
}

/// CRI timeouts are whole seconds; round up so a sub-second timeout is not "none".
fn seconds(d: Duration) -> i64 {
    d.as_secs() as i64 + i64::from(d.subsec_nanos() > 0)
}

#[async_trait]
impl RuntimeService for CriClient {
    async fn version(&self) -> Result<VersionResponse> {
        let req = VersionRequest {
            version: "v1".into(),
        };
        Ok(self
            .rt()
            .version(req)
            .await
            .map_err(failed("Version"))?
            .into_inner())
    }

    async fn status(&self) -> Result<StatusResponse> {
        let req = StatusRequest { verbose: false };
        Ok(self
            .rt()
            .status(req)
            .await
            .map_err(failed("Status"))?
            .into_inner())
    }

    async fn run_pod_sandbox(
        &self,
        config: PodSandboxConfig,
        runtime_handler: &str,
    ) -> Result<String> {
        let req = RunPodSandboxRequest {
            config: Some(config),
            runtime_handler: runtime_handler.into(),
        };
        let resp = self.rt().run_pod_sandbox(req).await;
        Ok(resp
            .map_err(failed("RunPodSandbox"))?
            .into_inner()
            .pod_sandbox_id)
    }

    async fn stop_pod_sandbox(&self, pod_sandbox_id: &str) -> Result<()> {
        let req = StopPodSandboxRequest {
            pod_sandbox_id: pod_sandbox_id.into(),
        };
        self.rt()
            .stop_pod_sandbox(req)
            .await
            .map_err(failed("StopPodSandbox"))?;
        Ok(())
    }

    async fn remove_pod_sandbox(&self, pod_sandbox_id: &str) -> Result<()> {
        let req = RemovePodSandboxRequest {
            pod_sandbox_id: pod_sandbox_id.into(),
        };
        let resp = self.rt().remove_pod_sandbox(req).await;
        resp.map_err(failed("RemovePodSandbox"))?;
        Ok(())
    }

    async fn pod_sandbox_status(&self, pod_sandbox_id: &str) -> Result<PodSandboxStatusResponse> {
        let req = PodSandboxStatusRequest {
            pod_sandbox_id: pod_sandbox_id.into(),
            verbose: false,
        };
        let resp = self.rt().pod_sandbox_status(req).await;
        Ok(resp.map_err(failed("PodSandboxStatus"))?.into_inner())
    }

    async fn list_pod_sandbox(&self, filter: Option<PodSandboxFilter>) -> Result<Vec<PodSandbox>> {
        let req = ListPodSandboxRequest { filter };
        let resp = self.rt().list_pod_sandbox(req).await;
        Ok(resp.map_err(failed("ListPodSandbox"))?.into_inner().items)
    }

    async fn create_container(
        &self,
        pod_sandbox_id: &str,
        config: ContainerConfig,
        sandbox_config: PodSandboxConfig,
    ) -> Result<String> {
        let req = CreateContainerRequest {
            pod_sandbox_id: pod_sandbox_id.into(),
            config: Some(config),
            sandbox_config: Some(sandbox_config),
        };
        let resp = self.rt().create_container(req).await;
        Ok(resp
            .map_err(failed("CreateContainer"))?
            .into_inner()
            .container_id)
    }

    async fn start_container(&self, container_id: &str) -> Result<()> {
        let req = StartContainerRequest {
            container_id: container_id.into(),
        };
        self.rt()
            .start_container(req)
            .await
            .map_err(failed("StartContainer"))?;
        Ok(())
    }

    async fn stop_container(&self, container_id: &str, timeout: Duration) -> Result<()> {
        let req = StopContainerRequest {
            container_id: container_id.into(),
            timeout: seconds(timeout),
        };
        self.rt()
            .stop_container(req)
            .await
            .map_err(failed("StopContainer"))?;
        Ok(())
    }

    async fn remove_container(&self, container_id: &str) -> Result<()> {
        let req = RemoveContainerRequest {
            container_id: container_id.into(),
        };
        self.rt()
            .remove_container(req)
            .await
            .map_err(failed("RemoveContainer"))?;
        Ok(())
    }

    async fn container_status(&self, container_id: &str) -> Result<ContainerStatus> {
        let req = ContainerStatusRequest {
            container_id: container_id.into(),
            verbose: false,
        };
        let resp = self.rt().container_status(req).await;
        let status = resp.map_err(failed("ContainerStatus"))?.into_inner().status;
        status.ok_or(Error::Missing {
            method: "ContainerStatus",
            field: "status",
        })
    }

    async fn list_containers(&self, filter: Option<ContainerFilter>) -> Result<Vec<Container>> {
        let req = ListContainersRequest { filter };
        let resp = self.rt().list_containers(req).await;
        Ok(resp
            .map_err(failed("ListContainers"))?
            .into_inner()
            .containers)
    }

    async fn list_container_stats(
        &self,
        filter: Option<ContainerStatsFilter>,
    ) -> Result<Vec<ContainerStats>> {
        let req = ListContainerStatsRequest { filter };
        let resp = self.rt().list_container_stats(req).await;
        Ok(resp
            .map_err(failed("ListContainerStats"))?
            .into_inner()
            .stats)
    }

    async fn exec_sync(
        &self,
        container_id: &str,
        cmd: Vec<String>,
        timeout: Duration,
    ) -> Result<ExecSyncResponse> {
        let mut req = tonic::Request::new(ExecSyncRequest {
            container_id: container_id.into(),
            cmd,
            timeout: seconds(timeout),
        });
        if !timeout.is_zero() {
            // The runtime enforces `timeout`; the deadline only guards against a hung runtime.
            req.set_timeout(timeout + Duration::from_secs(10));
        }
        let resp = self.rt().exec_sync(req).await;
        Ok(resp.map_err(failed("ExecSync"))?.into_inner())
    }

    async fn exec(&self, req: ExecRequest) -> Result<String> {
        let resp = self.rt().exec(req).await.map_err(failed("Exec"))?;
        Ok(resp.into_inner().url)
    }

    async fn attach(&self, req: AttachRequest) -> Result<String> {
        let resp = self.rt().attach(req).await.map_err(failed("Attach"))?;
        Ok(resp.into_inner().url)
    }

    async fn port_forward(&self, pod_sandbox_id: &str, port: Vec<i32>) -> Result<String> {
        let req = PortForwardRequest {
            pod_sandbox_id: pod_sandbox_id.into(),
            port,
        };
        let resp = self
            .rt()
            .port_forward(req)
            .await
            .map_err(failed("PortForward"))?;
        Ok(resp.into_inner().url)
    }
}

#[async_trait]
impl ImageService for CriClient {
    async fn image_status(&self, image: ImageSpec) -> Result<Option<Image>> {
        let req = ImageStatusRequest {
            image: Some(image),
            verbose: false,
        };
        let resp = self.img().image_status(req).await;
        Ok(resp.map_err(failed("ImageStatus"))?.into_inner().image)
    }

    async fn list_images(&self, filter: Option<ImageFilter>) -> Result<Vec<Image>> {
        let req = ListImagesRequest { filter };
        let resp = self.img().list_images(req).await;
        Ok(resp.map_err(failed("ListImages"))?.into_inner().images)
    }

    async fn pull_image(
        &self,
        image: ImageSpec,
        auth: Option<AuthConfig>,
        sandbox_config: Option<PodSandboxConfig>,
    ) -> Result<String> {
        let req = PullImageRequest {
            image: Some(image),
            auth,
            sandbox_config,
        };
        let resp = self.img().pull_image(req).await;
        Ok(resp.map_err(failed("PullImage"))?.into_inner().image_ref)
    }

    async fn remove_image(&self, image: ImageSpec) -> Result<()> {
        let req = RemoveImageRequest { image: Some(image) };
        self.img()
            .remove_image(req)
            .await
            .map_err(failed("RemoveImage"))?;
        Ok(())
    }
}
