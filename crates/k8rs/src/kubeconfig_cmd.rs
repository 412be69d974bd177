//! `k8rs kubeconfig --user NAME [--group G]...`: a kubeconfig for a colleague, with a
//! client certificate for that user and groups signed by the cluster CA (CN = user,
//! O = groups, as upstream's x509 authenticator reads them). What they may do is then
//! up to RBAC (`kubectl create rolebinding … --user NAME`).

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;

#[derive(Args, Debug)]
pub struct KubeconfigArgs {
    /// The user name the certificate names (its CN).
    #[arg(long)]
    pub user: String,
    /// A group the user is in (its O; repeatable).
    #[arg(long = "group")]
    pub groups: Vec<String>,
    /// Where to write the kubeconfig (default: standard output).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// The server's data directory (its CA signs the certificate).
    #[arg(long, default_value = "/var/lib/k8rs")]
    pub data_dir: PathBuf,
    /// The API server URL the kubeconfig points at (default: the server of the admin
    /// kubeconfig `--write-kubeconfig` wrote, else https://127.0.0.1:6443).
    #[arg(long)]
    pub server: Option<String>,
    /// The admin kubeconfig to read the server URL from.
    #[arg(long, default_value = pki::kubeconfig::DEFAULT_PATH)]
    pub admin_kubeconfig: PathBuf,
}

pub fn run(args: KubeconfigArgs) -> Result<()> {
    if args.user.is_empty() {
        bail!("--user must not be empty");
    }
    if args
        .groups
        .iter()
        .any(|g| g == apiserver::auth::PRIVILEGED_GROUP)
    {
        tracing::warn!("--group system:masters gives the user every permission, past RBAC");
    }
    let tls_dir = args.data_dir.join("server/tls");
    let ca = pki::load_server_ca(&tls_dir)
        .with_context(|| format!("cannot load the cluster CA from {}", tls_dir.display()))?;
    let groups: Vec<&str> = args.groups.iter().map(String::as_str).collect();
    let pair = ca
        .issue(&pki::LeafSpec::client(args.user.clone(), &groups))
        .context("cannot issue the client certificate")?;
    let server = match args.server {
        Some(s) => s,
        None => admin_server(&args.admin_kubeconfig)
            .unwrap_or_else(|| "https://127.0.0.1:6443".to_string()),
    };
    let config =
        pki::kubeconfig::render(pki::kubeconfig::DEFAULT_NAME, &server, &ca.cert_pem, &pair);
    match &args.out {
        Some(path) => pki::kubeconfig::write(path, &config)
            .with_context(|| format!("cannot write --out {}", path.display()))?,
        None => print!("{}", pki::kubeconfig::to_yaml(&config)?),
    }
    Ok(())
}

/// The server URL of an existing kubeconfig.
fn admin_server(path: &std::path::Path) -> Option<String> {
    let kc = kube::config::Kubeconfig::read_from(path).ok()?;
    kc.clusters.first()?.cluster.as_ref()?.server.clone()
}
