# __NAME__: a module of e, written for busybox sh and awk (written by `e new __NAME__`).
#
# The module contract (docs/modules.md in e's sources) in a few lines: the first argument is
# the method; E_STATE_FILE and E_CONFIG_FILE say where the state and this module's config are;
# the exit code says what happened: 0 done (or no changes), 2 changes (plan) or drift (audit),
# 1 an error, said on stderr with a hint.
#
# What this module does is a placeholder to replace: it keeps a number, `replicas`, from its
# config in its section of the state, and a copy of what it applied in its mount
# /var/lib/__NAME__, so that audit finds hand changes:
#
#   __NAME__:
#     status: applied
#     replicas: 1

set -eu

module=${E_MODULE:-__NAME__}
state=${E_STATE_FILE:-/shared/state.yml}
config=${E_CONFIG_FILE:-/shared/$module-config.yml}
record_dir=/var/lib/__NAME__
record=$record_dir/applied.yml
case $0 in
    */*) here=${0%/*} ;;
    *) here=. ;;
esac

# Says what went wrong, and what to do, on stderr; exits 1.
fail() {
    echo "$module: $1" >&2
    if [ -n "${2:-}" ]; then echo "hint: $2" >&2; fi
    exit 1
}

# Prints the value of KEY ($1) in this module's top-level section of the YAML file $2 (nothing
# when the file, the section or the key is absent). Reads the block style modules write.
value() {
    if [ ! -f "$2" ]; then return 0; fi
    awk -v section="$module" -v key="$1" '
        { sub(/\r$/, "") }
        /^[^ \t#-]/ { inside = ($0 ~ "^" section ":"); next }
        inside && $1 == key ":" { sub(/^[ \t]*[^:]*:[ \t]*/, ""); print; exit }
    ' "$2"
}

# Whether the state has this module's section.
present() {
    [ -f "$state" ] && grep -q "^$module:" "$state"
}

# Prints the state without this module's top-level section, every other line as it was.
others() {
    if [ ! -f "$state" ]; then return 0; fi
    awk -v section="$module" '
        /^[^ \t#-]/ { skip = ($0 ~ "^" section ":") }
        !skip
    ' "$state"
}

# Writes the state whole under a temporary name, then renames it: a reader never sees half.
write_state() {
    cat > "$state.tmp-$module"
    mv "$state.tmp-$module" "$state"
}

# The replicas the config asks for.
desired() {
    if [ ! -f "$config" ]; then fail "there is no config at \`$config\`" "run \`init\` first"; fi
    wanted=$(value replicas "$config")
    case $wanted in
        '' | *[!0-9]*) fail "\`replicas\` in \`$config\` must be a whole number, not \`$wanted\`" "write \`replicas: 1\` under \`$module:\`" ;;
    esac
    echo "$wanted"
}

# metadata: exactly the labels, requires and influences of this version in the repository.
metadata() {
    cat "$here/metadata.yaml"
}

# init: the config, derived from the state (what is applied stays), else a default.
init() {
    replicas=$(value replicas "$state")
    {
        echo "# What \`apply\` makes real for $module."
        echo "$module:"
        echo "  replicas: ${replicas:-1}"
    } > "$config.tmp"
    mv "$config.tmp" "$config"
    echo "Wrote \`$config\`: replicas ${replicas:-1}."
}

# plan: what apply would change; changes nothing. Exit 2 when there are changes.
plan() {
    wanted=$(desired) || exit 1
    have=$(value replicas "$state")
    status=$(value status "$state")
    if [ "$have" = "$wanted" ] && [ "$status" = applied ]; then
        echo "No changes: $module has $wanted replicas."
        return 0
    fi
    echo "~ replicas: ${have:-(none)} -> $wanted"
    echo "Plan: 1 to change."
    exit 2
}

# apply: makes it so, and writes this module's section of the state.
apply() {
    wanted=$(desired) || exit 1
    # The record is written first and renamed last: a missing mount fails before the state
    # changes.
    printf 'replicas: %s\n' "$wanted" 2>/dev/null > "$record.tmp" ||
        fail "cannot write \`$record.tmp\`" "declare \`$record_dir\` in the module's \`mounts\` in repository.yaml"
    { others; printf '%s:\n  status: applied\n  replicas: %s\n' "$module" "$wanted"; } | write_state
    mv "$record.tmp" "$record"
    echo "Applied: $module has $wanted replicas."
}

# audit: changes made by hand to this module's section; changes nothing. Exit 2 on drift.
audit() {
    if [ ! -f "$record" ]; then
        echo "Nothing to audit: $module has not applied anything yet."
        return 0
    fi
    applied=$(awk '$1 == "replicas:" { print $2 }' "$record")
    if ! present; then
        echo "The \`$module\` section was removed from the state by hand."
        exit 2
    fi
    have=$(value replicas "$state")
    if [ "$have" = "$applied" ]; then
        echo "No drift: $module has the $applied replicas it applied."
        return 0
    fi
    echo "replicas: $applied -> ${have:-(none)} (changed by hand)"
    exit 2
}

# destroy: removes what the module made and its section of the state.
destroy() {
    if present; then others | write_state; fi
    rm -f "$record"
    echo "Destroyed: $module has no section in the state."
}

methods="metadata, init, plan, apply, audit, destroy"
if [ $# -eq 0 ]; then fail "no method given" "pass one of: $methods"; fi
method=$1
shift
if [ $# -gt 0 ]; then fail "\`$method\` takes no arguments, got: $*"; fi
case $method in
    metadata | init | plan | apply | audit | destroy) "$method" ;;
    *) fail "unknown method \`$method\`" "methods are: $methods" ;;
esac
