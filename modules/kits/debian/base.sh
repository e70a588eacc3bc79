#!/usr/bin/env bash
# Makes the Debian base image the kits build on: a minimal bookworm root made by
# `debootstrap --variant=minbase` from the distribution's mirror (no image registry is needed)
# and imported into the engine as `e-kits/debian:bookworm` (or $1).
#
# The root is cached as a tarball (E_KITS_CACHE, default /var/cache/e-tests/kits), so a second
# run on one machine only imports it (~2 s instead of ~30 s). EXTRA_PACKAGES (comma-separated)
# adds packages to the root; the tarball's name then holds them, so each set is cached apart.
# Needs root and debootstrap (Debian's `debootstrap` package).
set -euo pipefail

image=${1:-e-kits/debian:bookworm}
cache=${E_KITS_CACHE:-/var/cache/e-tests/kits}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
extra=${EXTRA_PACKAGES:-}
name=debian-bookworm${extra:+-$(printf '%s' "$extra" | tr ',' '-')}
tarball=$cache/$name.tar

if ! command -v debootstrap >/dev/null 2>&1; then
  echo "error: \`debootstrap\` is not installed" >&2
  echo "hint: apt-get install debootstrap" >&2
  exit 1
fi

if [ ! -s "$tarball" ]; then
  mkdir -p "$cache"
  root=$(mktemp -d "$cache/root.XXXXXX")
  trap 'rm -rf "$root"' EXIT
  echo "kits: debootstrap bookworm into $root${extra:+ (with $extra)}" >&2
  debootstrap --variant=minbase ${extra:+--include="$extra"} bookworm "$root" "$mirror" \
    >"$cache/$name.log" 2>&1 || {
    echo "error: debootstrap failed; its log is $cache/$name.log" >&2
    exit 1
  }
  # Keep the image small: package lists and caches are not needed at run time.
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/usr/share/doc/* \
    "$root"/usr/share/man/* "$root"/usr/share/locale/*
  tar -C "$root" -cf "$tarball.part" .
  mv "$tarball.part" "$tarball"
fi

docker import "$tarball" "$image" >/dev/null
echo "kits: $image ready (from $tarball)" >&2
