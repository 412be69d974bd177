#!/usr/bin/env bash
# Takes a fresh Debian 12 machine (root, Rust toolchain present) to a running
# single-node k8rs cluster with kubectl configured.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh
cargo build --release --bin k8rs --bin k8rs-demo
install -m 0755 target/release/k8rs /usr/local/bin/k8rs
# The k8rs/demo image is built from this binary, found beside k8rs.
install -m 0755 target/release/k8rs-demo /usr/local/bin/k8rs-demo
install -m 0755 scripts/uninstall.sh /usr/local/bin/k8rs-uninstall.sh

if pgrep -x k8rs >/dev/null; then
  echo "k8rs is already running (pid $(pgrep -x k8rs | head -1))"
else
  nohup /usr/local/bin/k8rs server >>/var/log/k8rs.log 2>&1 &
fi

# Wait until the API server answers and the kubeconfig is written.
for _ in $(seq 1 120); do
  if [ -f /etc/k8rs/k8rs.yaml ] && kubectl --kubeconfig /etc/k8rs/k8rs.yaml get --raw /readyz >/dev/null 2>&1; then
    # The server runs this machine's node too; give it a moment to report Ready.
    for _ in $(seq 1 60); do
      if kubectl --kubeconfig /etc/k8rs/k8rs.yaml get nodes --no-headers 2>/dev/null | grep -q ' Ready '; then
        break
      fi
      sleep 1
    done
    kubectl --kubeconfig /etc/k8rs/k8rs.yaml get nodes
    echo "k8rs is ready: kubectl get nodes"
    exit 0
  fi
  sleep 1
done
echo "k8rs did not become ready within 120 s; see /var/log/k8rs.log" >&2
exit 1
