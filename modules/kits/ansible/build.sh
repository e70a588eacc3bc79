#!/usr/bin/env bash
# Builds the Ansible kit and the images built on it, offline from the distribution's packages:
#
#   e-kits/ansible:0.1.0          the kit: a minimal Debian (modules/kits/debian/base.sh) with
#                                 ansible-core, ansible-runner, openssh-client, and the kit's
#                                 entrypoint (kit/); every Ansible module's image starts FROM it
#   e-modules/onprem:0.1.0        the modules of this repository on the kit (modules/onprem,
#   e-modules/postgresql:0.1.0    modules/postgresql), each with the roles its module.yml lists,
#                                 vendored from roles/NAME/VERSION
#   e-tests/ansible-host:0.1.0    a Debian host running sshd, for the tests (host/): the kit's
#                                 Debian base with openssh-server and sudo from apt
#
# Every image carries the sha256 of its inputs (its files, the packages, the image it starts
# from) as the label `e.kit.inputs`; an image whose label matches is not built again, so a
# second run on one machine takes a second or two. The Debian roots are cached as tarballs by
# base.sh (E_KITS_CACHE), the ansible-runner package in $E_KITS_CACHE/debs. Runs at once wait
# for each other (a lock in the cache), so tests/all.sh can start one in the background while
# the tests that need it start theirs.
#
# Usage: modules/kits/ansible/build.sh [MODULE_FOLDER...]   (default: modules/onprem modules/postgresql)
# Needs root, debootstrap, apt-get (to download ansible-runner), python3 with PyYAML, docker.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
modules=$(cd "$here/../.." && pwd)
cache=${E_KITS_CACHE:-/var/cache/e-tests/kits}
kit=e-kits/ansible:0.1.0
host=e-tests/ansible-host:0.1.0
# ansible-runner is Debian's python3-ansible-runner, unpacked beside the others: its package
# depends on `ansible` (260 MB of collections the kit does not use), so it is not installed
# with apt, and its other dependencies are listed here instead.
kit_packages=ansible-core,openssh-client,libnss-wrapper,python3-daemon,python3-pexpect,python3-six,python3-cffi-backend

log() { echo "ansible kit: $*" >&2; }

# The sha256 of files and folders (names and contents) and of further words.
inputs_of() {
    local words=() paths=()
    for item in "$@"; do
        if [ -e "$item" ]; then paths+=("$item"); else words+=("$item"); fi
    done
    {
        printf '%s\n' "${words[@]}"
        for path in "${paths[@]}"; do
            find "$path" -type f -print0 | LC_ALL=C sort -z | while IFS= read -r -d '' file; do
                printf '%s %s\n' "${file#"$path"}" "$(sha256sum <"$file" | cut -d' ' -f1)"
            done
        done
    } | sha256sum | cut -d' ' -f1
}

label_of() {
    docker image inspect -f '{{ index .Config.Labels "e.kit.inputs" }}' "$1" 2>/dev/null || true
}

image_id() {
    docker image inspect -f '{{ .Id }}' "$1"
}

# Builds context $2 as image $1 unless the image's inputs are $3 already; further arguments go
# to docker build.
build_image() {
    local image=$1 context=$2 inputs=$3
    shift 3
    if [ "$(label_of "$image")" = "$inputs" ]; then
        log "$image is up to date"
        return
    fi
    log "building $image"
    # The legacy builder warns that it is deprecated on every build: show its words on failure only.
    if ! docker build -q "$@" --label "e.kit.inputs=$inputs" -t "$image" "$context" >"$work/build.log" 2>&1; then
        cat "$work/build.log" >&2
        echo "error: building \`$image\` failed" >&2
        exit 1
    fi
}

# A Debian base image for a set of packages, tagged by that set (base.sh caches its root).
base_image() {
    local repository=$1 packages=$2
    local tag
    tag="$repository:bookworm-$(printf '%s' "$packages" | sha256sum | cut -c1-12)"
    if ! docker image inspect "$tag" >/dev/null 2>&1; then
        EXTRA_PACKAGES=$packages "$modules/kits/debian/base.sh" "$tag"
    fi
    echo "$tag"
}

runner_deb() {
    local debs=$cache/debs
    mkdir -p "$debs"
    local found
    found=$(find "$debs" -name 'python3-ansible-runner_*_all.deb' | sort | tail -1)
    if [ -z "$found" ]; then
        log "downloading python3-ansible-runner from the distribution's mirror"
        (cd "$debs" && { apt-get download -q python3-ansible-runner 2>/dev/null || { apt-get update -qq && apt-get download -q python3-ansible-runner; }; }) >/dev/null
        found=$(find "$debs" -name 'python3-ansible-runner_*_all.deb' | sort | tail -1)
    fi
    echo "$found"
}

mkdir -p "$cache"
exec 9>"$cache/ansible-build.lock"
if ! flock -n 9; then
    log "waiting for another build.sh"
    flock 9
fi
started=$(date +%s)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

kit_base=$(base_image e-kits/ansible-base "$kit_packages")
deb=$(runner_deb)
mkdir -p "$work/kit/runner"
cp "$here/Dockerfile" "$work/kit/"
cp -r "$here/kit" "$work/kit/kit"
# Its unit tests and Python's caches stay out of the image.
rm -rf "$work/kit/kit/__pycache__" "$work/kit/kit/"test_*.py
dpkg-deb -x "$deb" "$work/kit/runner"
rm -rf "$work/kit/runner/usr/share"
sed -i "s|^FROM .*|FROM $kit_base|" "$work/kit/Dockerfile"
build_image "$kit" "$work/kit" "$(inputs_of "$here/Dockerfile" "$work/kit/kit" "$(basename "$deb")" "$(image_id "$kit_base")")"

mkdir -p "$work/host"
cp "$here/host/Dockerfile" "$here/host/start.sh" "$here/host/dpkg-unsafe-io" "$work/host/"
sed -i "s|^FROM .*|FROM $kit_base|" "$work/host/Dockerfile"
# Its RUN installs packages from the mirror: the engine may have no bridge network.
build_image "$host" "$work/host" "$(inputs_of "$here/host" "$(image_id "$kit_base")")" --network host

folders=("$@")
[ "${#folders[@]}" -gt 0 ] || folders=("$modules/onprem" "$modules/postgresql")
kit_id=$(image_id "$kit")
for folder in "${folders[@]}"; do
    folder=$(cd "$folder" && pwd)
    # The image's name and the roles come from the module file.
    read -r image roles < <(python3 - "$folder/module.yml" "$(basename "$folder")" <<'PY'
import sys, yaml
data = yaml.safe_load(open(sys.argv[1]))
version = data["metadata"]["labels"]["version"]
roles = " ".join(f"{name}/{version}" for name, version in (data.get("roles") or {}).items())
print(f"e-modules/{sys.argv[2]}:{version}", roles)
PY
)
    context=$work/module-$(basename "$folder")
    mkdir -p "$context/roles"
    cp -r "$folder/." "$context/"
    role_paths=()
    for role in $roles; do
        source=$here/roles/$role
        if [ ! -d "$source" ]; then
            echo "error: \`$folder/module.yml\` uses the role \`$role\`, which is not in \`$here/roles\`" >&2
            echo "hint: add the role's folder as roles/NAME/VERSION, or use a version that is there" >&2
            exit 1
        fi
        cp -r "$source" "$context/roles/${role%/*}"
        role_paths+=("$source" "$role")
    done
    build_image "$image" "$context" "$(inputs_of "$folder" "${role_paths[@]}" "$kit_id")"
done

log "ready in $(($(date +%s) - started)) s: $kit $host $(printf '%s ' "${folders[@]##*/}")"
