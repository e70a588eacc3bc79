#!/usr/bin/env bash
# Runs every test of e: unit, CLI snapshot and end-to-end tests on a real Docker engine.
# Installs and starts the engine first if this machine lacks one (see tests/engine.sh).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

source tests/engine.sh
modules/build-contexts.sh
cargo build --locked
cargo test --locked --no-fail-fast "$@"
cargo test --locked --manifest-path modules/Cargo.toml
