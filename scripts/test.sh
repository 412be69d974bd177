#!/usr/bin/env bash
# Runs every check and test: formatting, lints, unit, integration and real-container tests.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo build --workspace --bins
# Integration tests start real servers; two at a time is what two cores bear.
cargo test --workspace -- --test-threads=2
