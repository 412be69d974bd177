//! `k8rs image import FILE...` and `k8rs image ls`: the node's images, in the containerd
//! the agent runs (as `k3s ctr images import` does for k3s). There is no registry, so
//! importing a tarball is how an image not built in gets onto the node.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use cri::{CriClient, ImageService};

#[derive(Args, Debug)]
pub struct ImageArgs {
    /// The data dir of the `k8rs server` (or agent) whose containerd to use.
    #[arg(long, default_value = "/var/lib/k8rs", global = true)]
    pub data_dir: PathBuf,
    #[command(subcommand)]
    pub command: ImageCommand,
}

#[derive(Subcommand, Debug)]
pub enum ImageCommand {
    /// Import images from OCI image-layout or docker-archive (`docker save`) tarballs.
    Import {
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
    /// List the node's images: name, image id, size.
    #[command(alias = "list")]
    Ls,
}

pub async fn run(args: ImageArgs) -> Result<()> {
    let socket = containerd_socket(&args.data_dir);
    match args.command {
        ImageCommand::Import { files } => import(&socket, &files).await,
        ImageCommand::Ls => {
            print!("{}", list(&socket).await?);
            Ok(())
        }
    }
}

/// The agent's containerd socket under `data_dir` (the agent's layout: `agent/containerd`).
fn containerd_socket(data_dir: &Path) -> PathBuf {
    cri::containerd::Config::new(data_dir.join("agent/containerd"), data_dir).socket()
}

fn check_socket(socket: &Path) -> Result<()> {
    if !socket.exists() {
        bail!(
            "containerd socket {} not found: is `k8rs server` running (or pass its --data-dir)?",
            socket.display()
        );
    }
    Ok(())
}

async fn import(socket: &Path, files: &[PathBuf]) -> Result<()> {
    for file in files {
        match std::fs::metadata(file) {
            Ok(m) if m.is_file() => {}
            Ok(_) => bail!("cannot import {}: not a file", file.display()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                bail!("cannot import {}: no such file", file.display())
            }
            Err(e) => bail!("cannot import {}: {e}", file.display()),
        }
    }
    check_socket(socket)?;
    for file in files {
        let out = cri::images::import(socket, file)
            .await
            .with_context(|| format!("cannot import {}", file.display()))?;
        print!("{out}");
    }
    Ok(())
}

async fn list(socket: &Path) -> Result<String> {
    check_socket(socket)?;
    let client = CriClient::connect(socket)
        .await
        .with_context(|| format!("cannot connect to containerd at {}", socket.display()))?;
    let images = client
        .list_images(None)
        .await
        .with_context(|| format!("listing images at {}", socket.display()))?;
    let mut rows = Vec::new();
    for img in images {
        let id = img.id.trim_start_matches("sha256:");
        let id = id[..id.len().min(13)].to_string();
        let size = human_size(img.size);
        // One row per name; an image without a tag shows its digest.
        let names = if img.repo_tags.is_empty() {
            img.repo_digests.clone()
        } else {
            img.repo_tags.clone()
        };
        if names.is_empty() {
            rows.push(["<none>".to_string(), id, size]);
        } else {
            rows.extend(names.into_iter().map(|n| [n, id.clone(), size.clone()]));
        }
    }
    rows.sort();
    Ok(table(["IMAGE", "IMAGE ID", "SIZE"], &rows))
}

fn table(header: [&str; 3], rows: &[[String; 3]]) -> String {
    let mut width = header.map(str::len);
    for row in rows {
        for (w, cell) in width.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let line = |cells: [&str; 3]| {
        format!(
            "{:<w0$}   {:<w1$}   {}\n",
            cells[0],
            cells[1],
            cells[2],
            w0 = width[0],
            w1 = width[1]
        )
    };
    let mut out = line(header);
    for row in rows {
        out.push_str(&line([&row[0], &row[1], &row[2]]));
    }
    out
}

/// Sizes as crictl shows them: powers of 1000, three significant digits.
fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes}B")
    } else if value < 10.0 {
        format!("{value:.2}{}", UNITS[unit])
    } else if value < 100.0 {
        format!("{value:.1}{}", UNITS[unit])
    } else {
        format!("{value:.0}{}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_is_the_agents() {
        assert_eq!(
            containerd_socket(Path::new("/var/lib/k8rs")),
            Path::new("/var/lib/k8rs/agent/containerd/containerd.sock")
        );
    }

    #[test]
    fn sizes() {
        assert_eq!(human_size(999), "999B");
        assert_eq!(human_size(1_234), "1.23kB");
        assert_eq!(human_size(4_250_000), "4.25MB");
        assert_eq!(human_size(42_100_000), "42.1MB");
        assert_eq!(human_size(321_000_000), "321MB");
    }

    #[test]
    fn table_aligns_columns() {
        let rows = [[
            "docker.io/library/nginx:latest".into(),
            "abc".into(),
            "1B".into(),
        ]];
        assert_eq!(
            table(["IMAGE", "IMAGE ID", "SIZE"], &rows),
            "IMAGE                            IMAGE ID   SIZE\n\
             docker.io/library/nginx:latest   abc        1B\n"
        );
    }

    #[tokio::test]
    async fn missing_file_and_socket_are_named() {
        let err = import(Path::new("/s.sock"), &[PathBuf::from("/nonexistent.tar")])
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot import /nonexistent.tar: no such file"
        );
        let err = list(Path::new("/nonexistent/containerd.sock"))
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "containerd socket /nonexistent/containerd.sock not found: is `k8rs server` running (or pass its --data-dir)?"
        );
    }
}
