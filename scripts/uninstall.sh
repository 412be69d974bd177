#!/usr/bin/env bash
# Removes k8rs from this machine, as k3s-uninstall.sh does: stops the server or agent
# started from /usr/local/bin/k8rs, removes what it left running (`k8rs killall`:
# pods, containerd, mounts, the pod bridge, service proxy rules), then its data,
# config, log, the k8rs entries of ~/.kube/config and the binaries.
# install.sh installs it as /usr/local/bin/k8rs-uninstall.sh.
#   K8RS_DATA_DIR   data dir given to the server/agent (default /var/lib/k8rs)
#   K8RS_CNI_BRIDGE pod bridge given to the server/agent (default cni0)
set -euo pipefail

bin=/usr/local/bin/k8rs
data_dir=${K8RS_DATA_DIR:-/var/lib/k8rs}
bridge=${K8RS_CNI_BRIDGE:-cni0}

if [ "$(id -u)" -ne 0 ]; then
  echo "k8rs-uninstall.sh must run as root" >&2
  exit 1
fi

# Processes running the installed binary (not other copies, such as a test build's).
installed_pids() {
  for exe in /proc/[0-9]*/exe; do
    if [ "$(readlink "$exe" 2>/dev/null)" = "$bin" ]; then
      pid=${exe#/proc/}
      echo "${pid%/exe}"
    fi
  done
}

pids=$(installed_pids)
if [ -n "$pids" ]; then
  echo "stopping k8rs (pid $(echo $pids))"
  # SIGTERM lets the agent stop containerd cleanly; pods keep running until killall.
  kill -TERM $pids 2>/dev/null || true
  for _ in $(seq 1 30); do
    [ -z "$(installed_pids)" ] && break
    sleep 1
  done
  pids=$(installed_pids)
  if [ -n "$pids" ]; then
    kill -KILL $pids 2>/dev/null || true
  fi
fi

if [ -x "$bin" ]; then
  "$bin" killall --data-dir "$data_dir" --cni-bridge "$bridge"
else
  echo "$bin is missing; cannot remove running pods, mounts or rules" >&2
fi

rm -rf "$data_dir" /etc/k8rs /var/log/k8rs.log

if command -v kubectl >/dev/null && [ -f "$HOME/.kube/config" ]; then
  if [ "$(kubectl config current-context 2>/dev/null || true)" = k8rs ]; then
    kubectl config unset current-context >/dev/null
  fi
  kubectl config delete-context k8rs >/dev/null 2>&1 || true
  kubectl config delete-cluster k8rs >/dev/null 2>&1 || true
  kubectl config delete-user k8rs >/dev/null 2>&1 || true
fi

rm -f "$bin" /usr/local/bin/k8rs-demo /usr/local/bin/k8rs-uninstall.sh
echo "k8rs uninstalled"
