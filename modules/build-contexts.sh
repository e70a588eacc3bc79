#!/usr/bin/env bash
# Fills the build contexts of the example modules: builds azi and bmk as static binaries and
# copies them next to their Dockerfiles, and copies a static busybox next to bmm's. Afterwards
# each of modules/azi, modules/bmk and modules/bmm builds as an image on its own
# (`e build modules/azi`, or `docker build -t e-modules/azi:0.1.0 modules/azi`).
#
# BUSYBOX names the busybox to copy (default /bin/busybox); it must be statically linked, since
# bmm's image has nothing else in it.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
target=x86_64-unknown-linux-gnu
busybox=${BUSYBOX:-/bin/busybox}

RUSTFLAGS='-C target-feature=+crt-static' cargo build --release --locked \
    --target "$target" \
    --manifest-path "$here/Cargo.toml" \
    --target-dir "$here/target"

for module in azi bmk; do
    install -m 0755 "$here/target/$target/release/$module" "$here/$module/$module"
done

if [ ! -x "$busybox" ]; then
    echo "error: no busybox at \`$busybox\`" >&2
    echo "hint: install Debian's busybox-static (or busybox) package, or set BUSYBOX" >&2
    exit 1
fi
# ldd fails on a static executable ("not a dynamic executable").
if ldd "$busybox" >/dev/null 2>&1; then
    echo "error: \`$busybox\` is linked dynamically and cannot run in bmm's FROM-scratch image" >&2
    echo "hint: install Debian's busybox-static package, or set BUSYBOX to a static busybox" >&2
    exit 1
fi
install -m 0755 "$busybox" "$here/bmm/busybox"

echo "contexts ready: $here/azi $here/bmk $here/bmm"
