#!/usr/bin/env bash
# Formats and lints the given crates (default: the whole workspace); fails on any warning.
set -euo pipefail
cd "$(dirname "$0")/.."
if (($#)); then
  pkgs=()
  for p in "$@"; do pkgs+=(-p "$p"); done
  cargo fmt "${pkgs[@]}"
  cargo clippy "${pkgs[@]}" --all-targets -- -D warnings
else
  cargo fmt --all
  cargo clippy --workspace --all-targets -- -D warnings
fi
