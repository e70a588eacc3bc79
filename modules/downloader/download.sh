# download.sh fetch|probe LIST: the downloader of `e download` and `e export`.
#
# LIST (under /cache, the cache e mounts) holds one line per file: `SHA256 URL`.
#   fetch  downloads each URL into /cache/partial/SHA256, resuming what a broken download left
#          (`wget -c`), up to three tries; a server that refuses to resume (416) gets a fresh
#          download. It prints `done SHA256` or `fail SHA256 REASON` per file. e hashes the
#          result and only then moves it into the cache: a partial file is never taken whole.
#   probe  asks each URL for its size, without downloading: `size SHA256 BYTES` (`-` when the
#          server does not say) or `fail SHA256 REASON`.
# The network is the host's; busybox's TLS does not check certificates, which is why every file
# is pinned by its sha256.
# busybox sh runs its own applets (wget, sed, grep, ...): the image has nothing else.
set -u

mode=${1:-}
list=${2:-}
[ -f "$list" ] || { echo "error: no list \`$list\`" >&2; exit 1; }
mkdir -p /cache/partial

reason() {
    tail -n 1 "$1" | sed 's/^wget: //'
}

fetch() {
    sha=$1 url=$2
    part=/cache/partial/$sha
    log=/tmp/$sha.log
    try=1
    while :; do
        if wget -q -c -O "$part" "$url" 2>"$log"; then
            echo "done $sha"
            return
        fi
        if grep -q ' 416' "$log"; then
            # The partial file is as long as the whole, or longer: start again.
            rm -f "$part"
        elif grep -q 'server returned error' "$log"; then
            echo "fail $sha $(reason "$log")"
            return
        fi
        if [ "$try" -ge 3 ]; then
            echo "fail $sha $(reason "$log") (after $try tries)"
            return
        fi
        echo "retry $sha $(reason "$log")" >&2
        try=$((try + 1))
        sleep 1
    done
}

probe() {
    sha=$1 url=$2
    log=/tmp/$sha.log
    if wget -q -S --spider "$url" 2>"$log"; then
        size=$(grep -i '^ *content-length:' "$log" | tail -n 1 | sed 's/.*: *//; s/[^0-9]//g')
        echo "size $sha ${size:--}"
    else
        echo "fail $sha $(reason "$log")"
    fi
}

while read -r sha url; do
    [ -n "$sha" ] || continue
    case $mode in
        fetch) fetch "$sha" "$url" ;;
        probe) probe "$sha" "$url" ;;
        *) echo "error: unknown mode \`$mode\`" >&2; exit 1 ;;
    esac
done <"$list"
