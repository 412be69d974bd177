#!/usr/bin/env bash
# Installs what building, running and testing k8rs needs on Debian 12 (root).
set -euo pipefail

packages=(
  build-essential pkg-config protobuf-compiler sqlite3 curl jq iproute2
  containerd runc containernetworking-plugins
  etcd-server etcd-client
  nftables iptables conntrack
  busybox-static umoci skopeo
  libcrypt1 libpcre2-8-0 libssl3 zlib1g
  python3 python3-pip
)
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# The builtin nginx image is made from Debian's nginx packages, unpacked here and not
# installed: an installed nginx would start a system service holding port 80. The
# libraries it needs come from the host (the lib* packages above).
nginx_root=/usr/local/lib/k8rs/nginx
if [ ! -x "$nginx_root/usr/sbin/nginx" ] || [ ! -f "$nginx_root/usr/share/nginx/html/index.html" ]; then
  debs=$(mktemp -d)
  fetch() { (cd "$debs" && apt-get download -qq -o APT::Sandbox::User=root nginx nginx-common >/dev/null); }
  fetch || { apt-get update -qq && fetch; }
  rm -rf "$nginx_root.new" && mkdir -p "$nginx_root.new"
  for deb in "$debs"/*.deb; do dpkg -x "$deb" "$nginx_root.new"; done
  (cd "$debs" && ls *.deb) >"$nginx_root.new/PACKAGES"
  rm -rf "$nginx_root" && mv "$nginx_root.new" "$nginx_root" && rm -rf "$debs"
fi

# Debian's etcd-server starts a system etcd on 2379; k8rs tests start their own.
if command -v service >/dev/null 2>&1; then service etcd stop >/dev/null 2>&1 || true; fi

# The official Python client, used by the compatibility tests.
python3 -c 'import kubernetes' 2>/dev/null || python3 -m pip install -q 'kubernetes>=31'

command -v cargo >/dev/null || { echo "cargo not found: install a Rust toolchain (rustup) first" >&2; exit 1; }
