# bmm: a mock of Prometheus monitoring bare metal machines, written for busybox sh and awk to
# show that e's module contract needs nothing but a shell: argv is the method, E_* variables say
# where the files are, the exit code says what happened (0 done or no changes, 2 changes or
# drift, 1 error). Besides the contract's methods it answers `destroy`, which removes its section.
#
# bmm monitors the privateIP of every node in a `clusterNodes` list of any other section of the
# state (the machines of applications such as bmk's Kafka) plus the extra `targets` of its config,
# `bmm: {targets: [...]}`. Its state section is `bmm: {status: applied, targets: [...]}`, and a
# copy of it in the mount /var/lib/bmm lets `audit` find hand changes.
#
# The YAML it reads is the block style that e's modules write (and flow lists such as
# `targets: [a, b]`); it edits state.yml by replacing the lines of its own top-level block and
# leaves every other line as it was.

# -f: the addresses are split on blanks, and must never be taken as file patterns.
set -euf
# Note: busybox sh, like bash, does not apply `set -e` inside `$(...)`, so each command
# substitution that can fail is followed by `|| exit 1`.

default_module=bmm
case $0 in
    */*) here=${0%/*} ;;
    *) here=. ;;
esac
# module.sh (the E_* variables, BMM_RECORD_DIR for the record, fail, no_arguments, the AWK_LIB
# awk functions, first_invalid_address, write_atomically, commit, replace_block) is copied next
# to this script by modules/build-contexts.sh; in the source tree it is in ../lib.
if [ -f "$here/module.sh" ]; then . "$here/module.sh"; else . "$here/../lib/module.sh"; fi

# bmm's own awk function on top of module.sh's: prints `KIND ITEM` for each item of the one-line
# flow list $1.
AWK_LIB=$AWK_LIB'
function emit_flow(list, kind,    item, n, i, items) {
    sub(/^\[/, "", list); sub(/\][ \t]*$/, "", list)
    n = split(list, items, ",")
    for (i = 1; i <= n; i++) { item = unquote(items[i]); if (item != "") print kind, item }
}
'

# Prints the `targets` (`target ADDR` lines) and `status` (`status VALUE`) of the top-level section
# named $2 in file $1, `present` if the section exists, and `error MESSAGE` for what bmm cannot
# read.
read_section() {
    awk -v section="$2" "$AWK_LIB"'
    { sub(/\r$/, "") }
    blank($0) { next }
    top_level($0) {
        inside = (key_of($0) == section); list = 0; key_indent = -1
        if (!inside) next
        print "present"
        rest = after_colon($0)
        if (rest ~ /^\{/) {
            if (match(rest, /targets:[ \t]*\[[^]]*\]/)) { value = substr(rest, RSTART, RLENGTH); sub(/^targets:[ \t]*/, "", value); emit_flow(value, "target") }
            if (match(rest, /status:[ \t]*[^,}]+/)) { value = substr(rest, RSTART, RLENGTH); sub(/^status:[ \t]*/, "", value); print "status", unquote(value) }
        } else if (rest != "") print "error", "the `" section "` section is not a mapping"
        next
    }
    !inside { next }
    {
        depth = indent($0)
        if (key_indent < 0) key_indent = depth
        if (depth == key_indent && $0 !~ /^ *-/) {
            list = 0; key = key_of(substr($0, depth + 1)); rest = after_colon($0)
            if (key == "targets") {
                if (rest ~ /^\[/) emit_flow(rest, "target")
                else if (rest == "") list = 1
                else print "error", "`targets` must be a list of addresses"
            } else if (key == "status") print "status", unquote(rest)
            else print "key", key
            next
        }
        if (list && $0 ~ /^ *- /) { item = $0; sub(/^ *- /, "", item); print "target", unquote(item); next }
        if (list) print "error", "`targets` must be a list of addresses"
    }' "$1"
}

# Prints the privateIP of every node in a `clusterNodes` list of the sections other than bmm's.
cluster_addresses() {
    awk -v self="$module" "$AWK_LIB"'
    function emit_private(text,    value) {
        while (match(text, /privateIP:[ \t]*[^ \t,}#]+/)) {
            value = substr(text, RSTART, RLENGTH); sub(/^privateIP:[ \t]*/, "", value)
            print unquote(value)
            text = substr(text, RSTART + RLENGTH)
        }
    }
    { sub(/\r$/, "") }
    blank($0) { next }
    top_level($0) { skip = (key_of($0) == self); list = 0; if (!skip && $0 ~ /clusterNodes:/) emit_private($0); next }
    skip { next }
    {
        depth = indent($0)
        if (list && (depth < list_indent || (depth == list_indent && $0 !~ /^ *-/))) list = 0
        if (!list && match($0, /^[ \t]*(- +)?clusterNodes:/)) {
            list_indent = RLENGTH - length("clusterNodes:")
            rest = after_colon($0)
            if (rest == "") list = 1
            else emit_private(rest)
            next
        }
        if (list) emit_private($0)
    }' "$1"
}

# The lines of $1 that start with "$2 ", without that word.
field() {
    printf '%s\n' "$1" | awk -v kind="$2" '$1 == kind { sub(/^[^ ]+ /, ""); print }'
}

# Fails on the `error` lines of read_section's output $1 for file $2, and on targets that are not
# addresses.
check_section() {
    problem=$(field "$1" error | head -n 1)
    if [ -n "$problem" ]; then fail "cannot read \`$2\`: $problem" "write the \`$module\` section as \`$module: {targets: [ADDRESS, ...]}\`"; fi
    bad=$(field "$1" target | first_invalid_address)
    if [ -n "$bad" ]; then fail "invalid target \`$bad\` in \`$2\`" "a target is an IP address or a host name"; fi
}

# The extra targets of the config, one a line.
config_targets() {
    if [ ! -f "$config_file" ]; then fail "failed to read \`$config_file\`: no such file" "run \`init\` first to write it"; fi
    config=$(read_section "$config_file" "$module") || exit 1
    if [ -z "$(field "$config" present)" ]; then fail "invalid config \`$config_file\`: no \`$module\` section" "run \`init\` to write it again"; fi
    unknown=$(field "$config" key | head -n 1)
    if [ -n "$unknown" ]; then fail "invalid config \`$config_file\`: unknown key \`$unknown\`" "the only key is \`targets\`"; fi
    if [ -n "$(field "$config" status)" ]; then fail "invalid config \`$config_file\`: unknown key \`status\`" "the only key is \`targets\`"; fi
    check_section "$config" "$config_file"
    field "$config" target
}

# What bmm should monitor: the cluster addresses and the config's targets, sorted, once each.
desired_targets() {
    extra=$(config_targets) || exit 1
    if [ -f "$state_file" ]; then cluster=$(cluster_addresses "$state_file") || exit 1; else cluster=; fi
    bad=$(printf '%s\n' "$cluster" | awk 'NF' | first_invalid_address)
    if [ -n "$bad" ]; then fail "invalid privateIP \`$bad\` in a \`clusterNodes\` list of \`$state_file\`"; fi
    printf '%s\n%s\n' "$cluster" "$extra" | awk 'NF' | sort -u
}

# The section as read from file $1 (state or record): sets `status` and `targets` (sorted).
read_applied() {
    if [ -f "$1" ]; then section=$(read_section "$1" "$module") || exit 1; else section=; fi
    check_section "$section" "$1"
    present=$(field "$section" present)
    status=$(field "$section" status)
    targets=$(field "$section" target | sort -u)
}

# The lines only in $1 (prefixed `-`) and only in $2 (prefixed `+`), sorted by address.
compare() {
    OLD=$1 NEW=$2 awk 'BEGIN {
        n = split(ENVIRON["OLD"], lines, "\n"); for (i = 1; i <= n; i++) if (lines[i] != "") old[lines[i]] = 1
        n = split(ENVIRON["NEW"], lines, "\n"); for (i = 1; i <= n; i++) if (lines[i] != "") new[lines[i]] = 1
        for (line in new) if (!(line in old)) print "+ " line
        for (line in old) if (!(line in new)) print "- " line
    }' | sort -k2
}

# The section as bmm writes it, to stdout.
section_text() {
    echo "$module:"
    echo "  status: applied"
    if [ -z "$1" ]; then
        echo "  targets: []"
    else
        echo "  targets:"
        printf '%s\n' "$1" | awk 'NF { print "  - " $0 }'
    fi
}

# Unlike module.sh's metadata, bmm's has always ignored arguments.
metadata() {
    cat "$here/metadata.yaml"
}

init() {
    no_arguments "$@"
    if [ -f "$state_file" ]; then cluster=$(cluster_addresses "$state_file" | sort -u | tr '\n' ' '); else cluster=; fi
    cluster=${cluster% }
    {
        echo "# Extra addresses for $module to monitor. It always monitors the privateIP of every node"
        echo "# in a clusterNodes list of the state (at init: ${cluster:-none})."
        echo "$module:"
        echo "  targets: []"
    } | write_atomically "$config_file"
    echo "Wrote \`$config_file\` with no extra targets."
    if [ -n "$cluster" ]; then echo "The state has these cluster addresses to monitor: $cluster"; fi
}

# Sets `desired` (the targets bmm should monitor) and `changes` (what apply would change in the
# state, one line each).
make_plan() {
    desired=$(desired_targets) || exit 1
    read_applied "$state_file"
    changes=$(compare "$targets" "$desired")
    if [ "$status" != applied ]; then
        changes=$(printf '%s\n~ status: %s -> applied' "$changes" "${status:-(none)}" | awk 'NF')
    fi
}

plan() {
    no_arguments "$@"
    make_plan
    if [ -z "$changes" ]; then
        echo "No changes: $module monitors $(printf '%s\n' "$desired" | awk 'NF' | wc -l) targets."
        return 0
    fi
    printf '%s\n' "$changes"
    added=$(printf '%s\n' "$changes" | grep -c '^+' || true)
    removed=$(printf '%s\n' "$changes" | grep -c '^-' || true)
    echo "Plan: $added to add, $removed to remove."
    exit 2
}

apply() {
    no_arguments "$@"
    make_plan
    section=$(section_text "$desired")
    # The record is written first and renamed last, so that a missing mount fails before the
    # state changes.
    printf '%s\n' "$section" 2>/dev/null > "$record_file.tmp" ||
        fail "failed to write \`$record_file.tmp\`" "\`$module\` keeps its records in \`$record_dir\`: declare it in the module's \`mounts\` in repository.yaml"
    if [ -f "$state_file" ]; then
        if ! replace_block "$module" "$section" "$state_file" > "$state_file.tmp-$module"; then
            rm -f "$state_file.tmp-$module" "$record_file.tmp"
            fail "cannot edit \`$state_file\`: its top level is not in block style" "write it as \`module:\` lines, each followed by its indented section"
        fi
    else
        printf '%s\n' "$section" > "$state_file.tmp-$module"
    fi
    commit "$state_file.tmp-$module" "$state_file"
    commit "$record_file.tmp" "$record_file"
    if [ -n "$changes" ]; then printf '%s\n' "$changes"; fi
    echo "Applied: $module monitors $(printf '%s\n' "$desired" | awk 'NF' | wc -l) targets."
}

audit() {
    no_arguments "$@"
    if [ ! -f "$record_file" ]; then
        echo "Nothing to audit: \`$module\` has not applied anything yet."
        return 0
    fi
    read_applied "$record_file"
    applied_targets=$targets
    applied_status=$status
    read_applied "$state_file"
    if [ -z "$present" ]; then
        echo "The \`$module\` section was removed from the state by hand."
        exit 2
    fi
    drift=$(compare "$applied_targets" "$targets" | sed -e 's/^+ \(.*\)$/targets: + \1 (added by hand)/' -e 's/^- \(.*\)$/targets: - \1 (removed by hand)/')
    if [ "$status" != "$applied_status" ]; then
        drift=$(printf '%s\nstatus: %s -> %s (changed by hand)' "$drift" "$applied_status" "${status:-(none)}" | awk 'NF')
    fi
    if [ -z "$drift" ]; then
        echo "No drift: the \`$module\` section matches what it applied."
        return 0
    fi
    printf '%s\n' "$drift"
    echo "Audit: $(printf '%s\n' "$drift" | wc -l) hand changes to the \`$module\` section."
    exit 2
}

# Removes bmm's section from the state and its record: bmm stops monitoring.
destroy() {
    no_arguments "$@"
    if [ -f "$state_file" ]; then section=$(read_section "$state_file" "$module") || exit 1; else section=; fi
    if [ -z "$(field "$section" present)" ]; then
        rm -f "$record_file"
        echo "Nothing to destroy: the state has no \`$module\` section."
        return 0
    fi
    if ! replace_block "$module" "" "$state_file" > "$state_file.tmp-$module"; then
        rm -f "$state_file.tmp-$module"
        fail "cannot edit \`$state_file\`: its top level is not in block style" "write it as \`module:\` lines, each followed by its indented section"
    fi
    commit "$state_file.tmp-$module" "$state_file"
    rm -f "$record_file"
    echo "Destroyed: removed the \`$module\` section of the state."
}

if [ $# -eq 0 ]; then fail "no method given" "pass one of: metadata, init, plan, apply, audit, destroy"; fi
method=$1
shift
case $method in
    metadata|init|plan|apply|audit|destroy) ;;
    *) fail "unknown method \`$method\`" "methods are: metadata, init, plan, apply, audit, destroy" ;;
esac

# Called plainly, not in an `if` or `||`, so that `set -e` stays in force inside the method.
"$method" "$@"
