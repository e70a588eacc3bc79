# Keeps the module contract (docs/modules.md) as `noncompliant.sh METHOD`, and breaks exactly
# one promise of it as `noncompliant.sh METHOD FLAG`: the repository entries of the `e check`
# tests (tests/fixtures/e2e-repository.yaml) give one command a flag, and `e check` must fail
# that promise's row and no other.
#
# What it manages is a mock: its section of the state, `MODULE: {status: applied, size: 1}`,
# is the whole of what it "made".
set -e
state="${E_STATE_FILE:-/shared/state.yml}"
module="${E_MODULE:?E_MODULE is not set}"
method="$1"
flag="${2:-}"
# With --record-beside-state (on apply and plan), the module keeps its record in a file of
# its own instead of a section of the state.
record="${E_SHARED:-/shared}/$module-record.yml"

# The state without this module's top-level section.
without_own() {
  awk -v s="$module:" '/^[^ #]/ { skip = (index($0, s) == 1) } !skip' "$state" 2>/dev/null || true
}

# Replaces the state with standard input, through a rename.
replace_state() {
  cat > "$state.tmp-$module"
  mv "$state.tmp-$module" "$state"
}

# Writes the module's section with the lines given (after `status: STATUS`).
write_section() {
  status="$1"
  shift
  { without_own; printf '%s:\n  status: %s\n' "$module" "$status"; printf '  %s\n' "$@"; } | replace_state
}

# Whether apply already ran: its section is in the state (or its record beside it).
applied() {
  if [ "$flag" = --record-beside-state ]; then
    [ -f "$record" ]
  else
    grep -q "^$module:" "$state" 2>/dev/null
  fi
}

# The number of applies so far, kept in the section by --counts-applies.
applies() {
  awk -v s="$module:" '/^[^ #]/ { own = (index($0, s) == 1) } own && /^  applies:/ { print $2 }' "$state" 2>/dev/null || true
}

case "$method $flag" in
  "metadata "|"metadata requires="*)
    # `requires=KIND`: the version strongly requires `kind=KIND` (not a broken promise).
    printf 'labels:\n  kind: check-subject\n'
    case "$flag" in
      requires=*)
        printf 'requires:\n  strong:\n    - - key: kind\n        operator: eq\n        values: [%s]\n' "${flag#requires=}" ;;
    esac ;;
  "metadata --wrong-kind")
    printf 'labels:\n  kind: something-else\n' ;;

  "init ")
    printf '%s:\n  size: 1\n' "$module" > "$E_CONFIG_FILE.tmp"
    mv "$E_CONFIG_FILE.tmp" "$E_CONFIG_FILE" ;;
  "init --no-config")
    echo "nothing to configure" ;;

  "plan "|"plan --record-beside-state")
    if applied; then echo "no changes"; else echo "+ $module (size 1)"; exit 2; fi ;;
  "plan --no-changes")
    echo "no changes" ;;
  "plan --never-converges")
    echo "+ $module (size 1)"
    exit 2 ;;
  "plan --writes-state")
    # Notes in the state what it planned: a change e refuses from a plan.
    echo "# planned by $module" >> "$state"
    if applied; then echo "no changes"; else echo "+ $module (size 1)"; exit 2; fi ;;

  "apply ")
    applied || write_section applied "size: 1" ;;
  "apply --record-beside-state")
    applied || printf '%s:\n  status: applied\n  size: 1\n' "$module" > "$record" ;;
  "apply --not-applied")
    applied || write_section pending "size: 1" ;;
  "apply --fails")
    echo "error: the provider did not answer" >&2
    exit 1 ;;
  "apply --hangs")
    # Never ends: for the tests that stop `e check` midway.
    sleep 600 ;;
  "apply --counts-applies")
    count=$(applies)
    write_section applied "size: 1" "applies: $((${count:-0} + 1))" ;;

  "audit ")
    if grep -q hand-edit "$state" 2>/dev/null; then echo "drift: a hand-edit"; exit 2; fi
    echo "no drift" ;;
  "audit --always-drifts")
    echo "drift: $module.size: 1 -> 2 (changed by hand)"
    exit 2 ;;

  "destroy ")
    without_own | replace_state ;;
  "destroy --keeps-section")
    echo "destroyed $module" ;;

  *)
    echo "error: unknown method or flag: $method $flag" >&2
    exit 64 ;;
esac
