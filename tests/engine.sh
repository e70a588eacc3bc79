#!/usr/bin/env bash
# Makes sure a Docker engine answers on this machine and that the tests have what they need,
# all from the distribution's packages in one apt-get: docker.io, busybox-static (the example
# images need it), docker-registry (the pull test serves it on loopback), and for the
# remote-engine tests (tests/remote_engine.rs) openssh-server (a test sshd), podman with
# catatonit (its init for containers) and openssl (test certificates), apache2-utils (htpasswd,
# for the registry tests' password file), graphviz (`dot` checks `e graph --format dot`),
# python3-yaml (PyYAML, a YAML 1.1 reader, reads e's YAML output back in tests/cli.rs), and
# postgresql (the state backend tests, tests/postgres_store.rs, start their own server on
# loopback), and debootstrap (modules/kits/debian/base.sh makes the kits' Debian base image;
# modules/kits/ansible/build.sh builds the Ansible kit on it, and tests/ansible.rs also uses
# openssh-server's ssh-keygen and postgresql's psql). It also gives Podman the ulimits this
# machine allows, gives /dev/shm room for the runs' copies in memory, and starts the engine in
# the background if it is not running.
# Sourced by tests/demo.sh and tests/all.sh.
set -euo pipefail

missing=()
{ command -v dockerd && command -v docker; } >/dev/null 2>&1 || missing+=(docker.io)
[ -x /bin/busybox ] || missing+=(busybox-static)
command -v docker-registry >/dev/null 2>&1 || missing+=(docker-registry)
[ -x /usr/sbin/sshd ] || missing+=(openssh-server)
command -v podman >/dev/null 2>&1 || missing+=(podman)
[ -x /usr/libexec/podman/catatonit ] || missing+=(catatonit)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
python3 -c 'import yaml' >/dev/null 2>&1 || missing+=(python3-yaml)
[ -x /usr/lib/postgresql/15/bin/initdb ] || missing+=(postgresql)
command -v htpasswd >/dev/null 2>&1 || missing+=(apache2-utils)
command -v dot >/dev/null 2>&1 || missing+=(graphviz)
command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)

if [ "${#missing[@]}" -gt 0 ]; then
  echo "e: installing ${missing[*]} from the distribution's packages" >&2
  # No package may start its service (an sshd on port 22): the tests start their own, on
  # loopback. policy-rc.d says so to the packages' scripts for the time of the install.
  guard=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    guard=yes
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  [ -z "$guard" ] || rm -f /usr/sbin/policy-rc.d
fi

# Podman asks for more open files and processes than this machine's hard limits allow unless
# told otherwise; containers then fail with "unable to upgrade to tcp, received 409".
conf=/etc/containers/containers.conf
if ! grep -qs '^default_ulimits' "$conf"; then
  mkdir -p /etc/containers
  limits='default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]'
  if grep -qs '^\[containers\]' "$conf"; then
    sed -i "/^\[containers\]/a $limits" "$conf"
  else
    printf '[containers]\n%s\n' "$limits" >>"$conf"
  fi
fi

# Runs keep their copy of the shared directory in memory when a tmpfs has 256 MiB free
# (src/run/memory_copy.rs), and the tests of it expect that room in /dev/shm. A container or a
# small VM may give /dev/shm 64 MiB: as root, make it 1 GiB (a tmpfs takes memory only as it
# fills).
shm_kib=$(df -k --output=size /dev/shm 2>/dev/null | tail -1 | tr -d ' ' || echo 0)
if [ "$(id -u)" -eq 0 ] && [ "${shm_kib:-0}" -lt 524288 ]; then
  echo "e: /dev/shm has ${shm_kib:-0} KiB; mounting it with 1 GiB for the tests" >&2
  mkdir -p /dev/shm
  if mountpoint -q /dev/shm; then
    mount -o remount,size=1g /dev/shm
  else
    mount -t tmpfs -o size=1g,mode=1777,nosuid,nodev tmpfs /dev/shm
  fi
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

# Mermaid's own parser (npm's `mermaid`, with `jsdom` for the DOM it wants), for the test that
# checks `e graph --format mermaid` (tests/toolbox.rs), in a folder of its own: node and npm
# come with this machine; the versions are pinned so that the check does not move under us.
mermaid_dir="${E_TEST_MERMAID:-/var/cache/e-tests/mermaid}"
if [ ! -f "$mermaid_dir/node_modules/mermaid/dist/mermaid.core.mjs" ] || [ ! -d "$mermaid_dir/node_modules/jsdom" ]; then
  if command -v npm >/dev/null 2>&1; then
    echo "e: installing Mermaid's parser from npm into $mermaid_dir" >&2
    mkdir -p "$mermaid_dir"
    [ -f "$mermaid_dir/package.json" ] || echo '{"name": "e-test-mermaid", "private": true}' >"$mermaid_dir/package.json"
    npm install --prefix "$mermaid_dir" --no-audit --no-fund --silent mermaid@11.17.2 jsdom@29.1.1 >/dev/null
  else
    echo "e: npm is missing: the Mermaid check of tests/toolbox.rs will fail" >&2
  fi
fi
