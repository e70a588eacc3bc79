#!/usr/bin/env bash
# Makes sure a Docker engine answers on this machine: installs it from the distribution's
# packages if missing (with busybox-static, which the example images need, and docker-registry,
# which the pull test serves on loopback), and starts the engine in the background if it is not
# running. Sourced by tests/demo.sh and tests/all.sh.
set -euo pipefail

if ! command -v dockerd >/dev/null 2>&1 || ! command -v docker >/dev/null 2>&1 || ! command -v docker-registry >/dev/null 2>&1 || [ ! -x /bin/busybox ]; then
  echo "e: installing docker.io, busybox-static and docker-registry from the distribution's packages" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io busybox-static docker-registry >/dev/null
fi

if ! docker version >/dev/null 2>&1; then
  echo "e: starting dockerd (log: /tmp/e-dockerd.log)" >&2
  nohup dockerd --iptables=false --ip6tables=false --bridge=none >/tmp/e-dockerd.log 2>&1 &
  for _ in $(seq 1 60); do
    docker version >/dev/null 2>&1 && break
    sleep 1
  done
  docker version >/dev/null 2>&1 || { echo "e: dockerd did not start; see /tmp/e-dockerd.log" >&2; tail -20 /tmp/e-dockerd.log >&2; exit 1; }
fi
