# Each argument names one misbehaviour; see tests/e2e.rs for what e must do about it.
set -e
state="${E_STATE_FILE:-/shared/state.yml}"
shared="$(dirname "$state")"

# Prints the state without the top-level section named $1.
without_section() {
  awk -v s="$1:" '/^[^ #]/ { skip = (index($0, s) == 1) } !skip' "$state" 2>/dev/null || true
}

# Replaces this module's section with the lines given, through a rename.
set_own_section() {
  { without_section "$E_MODULE"; printf '%s:\n' "$E_MODULE"; printf '  %s\n' "$@"; } > "$state.new"
  mv "$state.new" "$state"
}

case "$1" in
  metadata)     # prints metadata with the kind label given as argument
    printf 'labels:\n  kind: %s\n' "$2" ;;
  noop)         # does nothing, successfully
    ;;
  plan-own)     # a well-behaved plan: changes (exit 2) until its own section is there
    if grep -q "^$E_MODULE:" "$state" 2>/dev/null; then echo "no changes"; exit 0; fi
    echo "+ $E_MODULE: status applied"; exit 2 ;;
  drop-own)     # a well-behaved destroy: removes its own section (after $2 seconds)
    sleep "${2:-0}"
    if [ -f "$state" ]; then
      awk -v m="$E_MODULE:" '$0 == m { skip = 1; next } skip && /^[^ ]/ { skip = 0 } !skip' \
        "$state" > "$state.new" && mv "$state.new" "$state"
    fi ;;
  show-requirements) # prints the requirements file e gave it
    cat "$E_REQUIREMENTS_FILE" ;;
  own)          # a well-behaved apply: writes its own section once
    grep -q "^$E_MODULE:" "$state" 2>/dev/null || printf '%s:\n  status: applied\n' "$E_MODULE" >> "$state" ;;
  audit-state)  # reports drift when someone wrote `hand-edit` into the state
    if grep -q hand-edit "$state" 2>/dev/null; then echo "drift: a hand-edit I do not know"; exit 2; fi
    echo "no drift" ;;
  write)        # a good apply: adds its own section after a pause (for lock tests)
    sleep "${2:-0}"
    # busybox's date has no %N: seconds and two random numbers keep the keys apart.
    echo "misbehave-$(date +%s)-$RANDOM$RANDOM:" >> "$state"
    echo "  status: applied" >> "$state"
    echo "  run: $$" >> "$state"
    ;;
  fail-midway)  # half-writes the state, then fails
    echo "azi: {nodes: [" > "$state"
    echo "failing in the middle of apply" >&2
    exit 1 ;;
  bad-yaml)     # exits 0 but leaves invalid YAML
    printf 'azi: [unclosed\n' > "$state" ;;
  not-mapping)  # exits 0 but leaves a list
    printf -- '- a\n- b\n' > "$state" ;;
  symlink)      # replaces the state with a link out of the shared directory
    rm -f "$state"; ln -s /etc/passwd "$state" ;;
  fifo)         # replaces the state with a FIFO (a reader would block forever)
    rm -f "$state"; mkfifo "$state" ;;
  huge)         # a 100 MB state
    dd if=/dev/zero of="$state" bs=1048576 count=100 2>/dev/null ;;
  directory)    # replaces the state with a directory
    rm -f "$state"; mkdir -p "$state/x" ;;
  write-then-hang) # adds its section, then never ends (a timeout stops it)
    echo "misbehave-$(date +%s)-$RANDOM$RANDOM:" >> "$state"
    echo "  status: applied" >> "$state"
    echo "  run: $$" >> "$state"
    sleep 600 ;;
  fill-disk)    # fills the filesystem of the shared directory, then fails
    dd if=/dev/zero of="${E_SHARED:-/shared}/filler" bs=65536 2>/dev/null || true
    echo "the disk is full" >&2
    exit 1 ;;
  config)       # an init: writes the module's config file
    printf 'version: %s\n' "$E_MODULE_VERSION" > "$E_CONFIG_FILE" ;;
  own-then-fail) # an apply that records its section, then fails
    printf '%s-next:\n  status: half-applied\n' "$E_MODULE" >> "$state"
    echo "failing after recording my section" >&2
    exit 1 ;;
  remember)     # appends its version to its private mount and prints what it holds
    echo "$E_MODULE_VERSION" >> "$2/seen" || exit 1
    cat "$2/seen" ;;
  hang)         # never ends
    sleep 600 ;;
  leak)         # prints the secret it was given, and writes it to its config
    echo "token is $TOKEN"
    echo "token on stderr: $TOKEN" >&2 ;;
  secret-file)  # says how it sees the secret file named by the argument, never its value
    f="/run/secrets/$2"
    [ -r "$f" ] && echo "secret file readable: $(wc -c < "$f") bytes" || echo "secret file unreadable"
    awk '$2 == "/run/secrets" { split($4, o, ","); print "mounted: " $3 " " o[1] }' /proc/mounts
    awk '$5 == "/run/secrets" { print "from: " $4 }' /proc/self/mountinfo
    ( echo x > "$f" ) 2>/dev/null && echo "secret file writable" || echo "secret file read-only"
    env | grep -qF -- "$(cat "$f")" && echo "secret in env" || echo "secret not in env"
    ;;
  write-secret) # writes the secret it was given (file db-password, else $SECRET) into its state
    value="$(cat /run/secrets/db-password 2>/dev/null || printf '%s' "$SECRET")"
    set_own_section "status: applied" "url: postgres://app:$value@db/app" ;;
  write-secret-then-fail) # the same, then fails
    value="$(cat /run/secrets/db-password 2>/dev/null || printf '%s' "$SECRET")"
    set_own_section "status: half-applied" "password: $value"
    exit 1 ;;
  timeout-seen) # says how long e lets it run
    echo "E_TIMEOUT=$E_TIMEOUT" ;;
  whoami)       # says who and where it runs
    echo "uid=$(id -u) gid=$(id -g)"
    echo "args=$*"
    echo "module=$E_MODULE version=$E_MODULE_VERSION method=$E_METHOD"
    echo "requirements=$E_REQUIREMENTS_FILE"
    grep -q '"module": "misbehave"' "$E_REQUIREMENTS_FILE" && echo "requirements file readable"
    ls /var/run/docker.sock 2>/dev/null && echo "docker socket present" || echo "no docker socket"
    ;;
  confinement)  # says who it runs as and where it may write
    echo "uid=$(id -u) gid=$(id -g)"
    touch /planted 2>/dev/null && echo "root filesystem writable" || echo "root filesystem read-only"
    echo x > /tmp/probe && echo "tmp writable"
    echo x > "${E_SHARED:-/shared}/probe" && echo "shared writable"
    echo x > /var/lib/misbehave/probe && echo "mount writable"
    ;;
  oom)          # uses memory until the engine kills it
    exec awk 'BEGIN { s = "x"; while (1) s = s s }' ;;
  deep-nesting) # adds a section of about 1 MB of nested `[` (slow to parse, quadratic in old parsers)
    { printf '%s: ' "$E_MODULE"; head -c 1048576 /dev/zero | tr '\0' '['; echo; } >> "$state" ;;
  alias-bomb)   # adds a section of 2.4 KB whose aliases expand to 10^10 nodes
    {
      printf '%s:\n  a0: &a0 [' "$E_MODULE"
      i=0; while [ $i -lt 999 ]; do printf 'x,'; i=$((i + 1)); done
      echo 'x]'
      for i in 1 2 3 4 5 6 7; do
        p="*a$((i - 1))"
        echo "  a$i: &a$i [$p, $p, $p, $p, $p, $p, $p, $p, $p, $p]"
      done
    } >> "$state" ;;
  big-file)     # a 100 MB file next to the state, which it leaves alone
    dd if=/dev/zero of="$shared/big-file.bin" bs=1048576 count=100 2>/dev/null ;;
  empty-state)  # truncates the state: every other module's section is gone
    : > "$state" ;;
  delete-other) # removes another module's section, named by the argument
    [ -n "$2" ] || { echo "delete-other: name the section to delete" >&2; exit 64; }
    without_section "$2" > "$state.new"
    mv "$state.new" "$state" ;;
  planted-link) # a link out of the shared directory, next to an untouched state
    ln -s /etc/passwd "$shared/planted-link" ;;
  write-e-area) # writes into e's own area
    mkdir -p "$shared/.e" && echo planted > "$shared/.e/planted" \
      || { echo "write-e-area: cannot write under $shared/.e" >&2; exit 1; } ;;
  interfaces)   # prints the network interfaces it has, one per line
    awk -F: 'NR > 2 { gsub(/ /, "", $1); print $1 }' /proc/net/dev ;;
  mark)         # sleeps $3 seconds, writes its own section once and adds its name under
                # `marked_by:` of the section $2 (a section every module of a stack touches)
    sleep "${3:-0}"
    grep -q "^$E_MODULE:" "$state" 2>/dev/null || printf '%s:\n  status: applied\n' "$E_MODULE" >> "$state"
    if ! grep -qx "  - $E_MODULE" "$state"; then
      awk -v s="$2:" -v me="  - $E_MODULE" '
        /^[^ #]/ { in_section = ($0 == s) }
        { print }
        in_section && $0 == "  marked_by:" { print me }' "$state" > "$state.new" && mv "$state.new" "$state"
    fi ;;
  pad)          # writes its own section once, with a `padding` of $2 KiB of random hex
                # digits, which do not compress (for a full disk)
    grep -q "^$E_MODULE:" "$state" 2>/dev/null || {
      printf '%s:\n  status: applied\n  padding: "' "$E_MODULE"
      head -c $((${2:-1} * 512)) /dev/urandom | od -An -tx1 -v | tr -d ' \n'
      echo '"'
    } >> "$state" ;;
  base-marked)  # an apply for the base of the `mark` modules: its section with an empty list
    grep -q "^$E_MODULE:" "$state" 2>/dev/null || printf '%s:\n  status: applied\n  marked_by:\n' "$E_MODULE" >> "$state" ;;
  slow-apply)   # writes its section (status: applying), sleeps $2 seconds (5), then writes it
                # again (status: applied); `count` is one more than the last run's, so a
                # lost update shows
    count=$(awk -v s="$E_MODULE:" '/^[^ #]/ { own = (index($0, s) == 1) } own && /^  count:/ { print $2 }' "$state" 2>/dev/null || true)
    count=$((${count:-0} + 1))
    run=$(date +%s%N)
    set_own_section "status: applying" "count: $count" "run: $run"
    sleep "${2:-5}"
    set_own_section "status: applied" "count: $count" "run: $run" ;;
  *) echo "unknown misbehaviour: $1" >&2; exit 64 ;;
esac
