#!/usr/bin/env bash
# Fills the build contexts of the example modules: builds azi and bmk as static binaries and
# copies them next to their Dockerfiles, and copies a static busybox next to the Dockerfile of
# each shell module (bmm, k8s, rook, nfs, pg), with lib/module.sh, which they all source, and
# lib/persistence.sh for the persistence layers on Kubernetes (rook, nfs), and busybox next to
# the Dockerfiles of e's own images: the downloader (`e download`) and the repository machine's
# server (`e serve`).
# Afterwards each folder builds as an image on its own (`e build modules/azi`, or
# `docker build -t e-modules/azi:0.1.0 modules/azi`).
#
# BUSYBOX names the busybox to copy (default /bin/busybox); it must be statically linked, since
# the shell modules' images have nothing else in it.
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
    echo "error: \`$busybox\` is linked dynamically and cannot run in the shell modules' FROM-scratch images" >&2
    echo "hint: install Debian's busybox-static package, or set BUSYBOX to a static busybox" >&2
    exit 1
fi
# The shell modules share the functions of lib/module.sh and get a copy: a build context cannot
# reach outside its folder.
for module in bmm k8s rook nfs pg; do
    install -m 0755 "$busybox" "$here/$module/busybox"
    install -m 0644 "$here/lib/module.sh" "$here/$module/module.sh"
done
for module in rook nfs; do
    install -m 0644 "$here/lib/persistence.sh" "$here/$module/persistence.sh"
done
# e's own images: the downloader of bills of materials and the repository machine's server.
for image in downloader repo; do
    install -m 0755 "$busybox" "$here/$image/busybox"
done

echo "contexts ready: $here/azi $here/bmk $here/bmm $here/k8s $here/rook $here/nfs $here/pg $here/downloader $here/repo"
