#!/bin/sh
# Builds __NAME__ as a static program and puts it next to the Dockerfile, so that the folder
# builds as an image on its own: ./build.sh && e build . --tag IMAGE
# Cargo's target folder stays out of the folder, which is the image's build context.
set -eu
cd "$(dirname "$0")"
target=x86_64-unknown-linux-gnu
target_dir=${CARGO_TARGET_DIR:-${TMPDIR:-/tmp}/e-module-__NAME__}
RUSTFLAGS='-C target-feature=+crt-static' cargo build --release --locked --target "$target" --target-dir "$target_dir"
install -m 0755 "$target_dir/$target/release/__NAME__" __NAME__
