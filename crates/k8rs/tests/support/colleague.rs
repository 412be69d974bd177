//! Other users of a test server: kubeconfigs minted by `k8rs kubeconfig` for a user
//! and groups (a colleague, a kubelet, a component), and kubectl run with them.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use super::{Server, kubectl_path, wait_for};

/// How long a new binding or graph edge may take to reach the authorizer.
pub const WITHIN: Duration = Duration::from_secs(20);

/// kubectl with a given kubeconfig.
pub fn kubectl_as(s: &Server, kubeconfig: &Path, args: &[&str]) -> Output {
    Command::new(kubectl_path())
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .env("HOME", s.home())
        .output()
        .expect("run kubectl")
}

pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A kubeconfig for `user` minted by `k8rs kubeconfig`.
pub fn colleague(s: &Server, user: &str, groups: &[&str]) -> PathBuf {
    // KUBECONFIG separates paths with ':', which user names such as
    // `system:node:n1` contain.
    let file = user.replace(':', "_");
    let out_path = s.dir.path().join(format!("{file}.kubeconfig"));
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_k8rs"));
    cmd.arg("kubeconfig")
        .args(["--user", user])
        .args(["--data-dir", s.data_dir().to_str().unwrap()])
        .args(["--admin-kubeconfig", s.kubeconfig.to_str().unwrap()])
        .args(["--out", out_path.to_str().unwrap()]);
    for g in groups {
        cmd.args(["--group", g]);
    }
    let out = cmd.output().expect("run k8rs kubeconfig");
    assert!(out.status.success(), "k8rs kubeconfig: {}", text(&out));
    out_path
}

/// Waits until `args` succeed with `kubeconfig` (a new binding reaches the
/// authorizer through its watch).
pub fn eventually_ok(s: &Server, kubeconfig: &Path, args: &[&str]) -> String {
    wait_for(&format!("kubectl {args:?} to be allowed"), WITHIN, || {
        let out = kubectl_as(s, kubeconfig, args);
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    })
}

pub fn forbidden(s: &Server, kubeconfig: &Path, args: &[&str]) -> String {
    let out = kubectl_as(s, kubeconfig, args);
    assert!(
        !out.status.success(),
        "kubectl {args:?} was allowed: {}",
        text(&out)
    );
    let err = String::from_utf8_lossy(&out.stderr).trim().to_string();
    assert!(err.contains("is forbidden: User "), "{err}");
    err
}
