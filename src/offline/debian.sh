# The package resolver of `e download`: runs in a container of the target Debian release, with
# the host's network, as root, the cache mounted at /cache. `fetch OUT UID:GID NAME...`
# downloads NAME... with every dependency into OUT (as if nothing were installed, so that any
# host of the release can install them) and indexes OUT as a flat apt repository (Packages,
# Packages.gz, Release); `probe NAME...` prints `URI FILE SIZE ...` lines without downloading.
set -eu
mode=$1
shift
apt_options="-o Dir::State::status=/dev/null -o APT::Sandbox::User=root -o Debug::NoLocking=1"
apt-get -qq update >&2
case $mode in
probe)
    # shellcheck disable=SC2086
    apt-get -qq $apt_options --no-install-recommends install --print-uris "$@"
    ;;
fetch)
    out=$1 owner=$2
    shift 2
    # apt-ftparchive, for the index, is installed in this container only.
    apt-get -q -y --no-install-recommends install apt-utils >/dev/null
    mkdir -p "$out/partial"
    # shellcheck disable=SC2086
    apt-get -qq -y $apt_options -o Dir::Cache::archives="$out" --no-install-recommends \
        install --download-only "$@" >&2
    rm -rf "$out/partial" "$out/lock"
    cd "$out"
    apt-ftparchive packages . >Packages
    gzip -9n <Packages >Packages.gz
    apt-ftparchive release . >Release
    chown -R "$owner" "$out"
    ls -1 "$out" | wc -l | sed 's/^/files /'
    ;;
*)
    echo "error: unknown mode \`$mode\`" >&2
    exit 1
    ;;
esac
