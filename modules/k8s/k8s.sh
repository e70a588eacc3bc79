# k8s: a mock of a Kubernetes cluster installed on the virtual machines of an infrastructure
# module (such as azi), written for busybox sh and awk. It "installs" Kubernetes 1.28.0 on three
# nodes of the infrastructure: one control plane and two workers, marks them `usedBy: k8s` in the
# infrastructure's section, and records `k8s: {status: applied, version, controlPlane, workers,
# apiServer}`, which persistence modules such as rook and nfs build on.
#
# The infrastructure is the module that e names in the requirements file as the best installed
# one for k8s's strong requirement; without that file (an older e), the first section of the
# state with a `nodes` list. The machinery (YAML and JSON readers, state edits, the record) is
# in module.sh, shared with the other shell modules.

set -euf

default_module=k8s
case $0 in
    */*) here=${0%/*} ;;
    *) here=. ;;
esac
# module.sh is copied next to this script by modules/build-contexts.sh; in the source tree it
# is in ../lib.
if [ -f "$here/module.sh" ]; then . "$here/module.sh"; else . "$here/../lib/module.sh"; fi

# The Kubernetes version the cluster runs (the `provides-kubernetes` label).
kubernetes_version=1.28.0
# How many nodes init takes: one control plane, the others workers.
cluster_size=3
requirement_text="an infrastructure with virtual machines"
requirement_guess="kind=infrastructure,provides-vms=true"

guess_provider() {
    first_section_with nodes
}

# Sets `state` (flattened), `provider` (the infrastructure) and `nodes`, one `INDEX ADDRESS USER`
# line per node of the infrastructure that has a privateIP (USER `unused` when it has no usedBy).
# With `lenient` set, returns 1 instead of failing when there is no infrastructure.
load_infrastructure() {
    load_flat "$state_file" state
    if [ -n "${lenient:-}" ]; then
        locate_provider 0 "$requirement_text" "$requirement_guess" || return 1
    else
        find_provider 0 "$requirement_text" "$requirement_guess"
    fi
    nodes=$(flat_section "$state" "$provider" | awk -F'\t' '
        match($1, /^nodes\[[0-9]+\]\./) {
            i = substr($1, 7, RLENGTH - 8) + 0; key = substr($1, RLENGTH + 1)
            if (i > last) last = i
            if (key == "privateIP") address[i] = $2
            if (key == "usedBy") user[i] = $2
        }
        END { for (i = 0; i <= last; i++) if (address[i] != "") print i, address[i], (user[i] == "" ? "unused" : user[i]) }')
}

init() {
    no_arguments "$@"
    load_infrastructure
    usable=$(printf '%s\n' "$nodes" | awk -v self="$module" 'NF && ($3 == "unused" || $3 == self) { print $2 }')
    count=$(printf '%s\n' "$usable" | awk 'NF' | wc -l)
    if [ "$count" -lt "$cluster_size" ]; then
        fail "\`$provider\` has $count nodes that \`$module\` can use, not $cluster_size" \
            "give \`$provider\` more nodes, or free some that other modules use"
    fi
    control=$(printf '%s\n' "$usable" | sed -n 1p)
    workers=$(printf '%s\n' "$usable" | sed -n "2,${cluster_size}p")
    {
        echo "# The Kubernetes cluster of \`$module\` on nodes of \`$provider\`, by privateIP: one control"
        echo "# plane and its workers. Written by init from the state; plan checks that the nodes are"
        echo "# still there and free."
        echo "$module:"
        echo "  controlPlane: $control"
        echo "  workers:"
        printf '%s\n' "$workers" | awk 'NF { print "  - " $0 }'
    } | write_atomically "$config_file"
    echo "Wrote \`$config_file\`: Kubernetes $kubernetes_version on $cluster_size nodes of \`$provider\`:"
    echo "  control plane $control"
    printf '%s\n' "$workers" | awk 'NF { print "  worker " $0 }'
}

# Reads the config: sets `control` (an address) and `workers` (addresses, one a line).
read_config() {
    load_config_section
    problem=$(printf '%s\n' "$section" | awk -F'\t' '
        !NF { next }
        $1 == "" { print "`'"$module"'` must be a mapping"; exit }
        $1 == "controlPlane" || $1 ~ /^workers\[[0-9]+\]$/ || ($1 == "workers" && $2 == "[]") { next }
        $1 ~ /^controlPlane[.[]/ { print "`controlPlane` must be an address"; exit }
        $1 ~ /^workers([.[]|$)/ { print "`workers` must be a list of addresses"; exit }
        { key = $1; sub(/[.[].*$/, "", key); print "unknown key `" key "`"; exit }')
    if [ -n "$problem" ]; then fail "invalid config \`$config_file\`: $problem" "the keys are \`controlPlane\` (an address) and \`workers\` (a list of addresses)"; fi
    control=$(flat_get "$section" controlPlane)
    if [ -z "$control" ]; then fail "invalid config \`$config_file\`: no \`controlPlane\`" "run \`init\` to write it again"; fi
    workers=$(printf '%s\n' "$section" | awk -F'\t' '$1 ~ /^workers\[/ { print $2 }')
    bad=$(printf '%s\n%s\n' "$control" "$workers" | awk 'NF' | first_invalid_address)
    if [ -n "$bad" ]; then fail "invalid config \`$config_file\`: \`$bad\` is not an address" "a node is named by its privateIP"; fi
    twice=$(printf '%s\n%s\n' "$control" "$workers" | awk 'NF && seen[$0]++ { print; exit }')
    if [ -n "$twice" ]; then fail "invalid config \`$config_file\`: $twice is listed twice" "each node is either the control plane or a worker, once"; fi
}

# The section apply writes, as text.
section_text() {
    echo "$module:"
    echo "  status: applied"
    echo "  version: $kubernetes_version"
    echo "  controlPlane: $control"
    if [ -z "$workers" ]; then
        echo "  workers: []"
    else
        echo "  workers:"
        printf '%s\n' "$workers" | awk 'NF { print "  - " $0 }'
    fi
    echo "  apiServer: https://$control:6443"
}

# Sets `desired` (the section text), `marks` (`INDEX USER` lines for the infrastructure's nodes),
# `changes` (the plan's lines) and the counts of the summary.
make_plan() {
    read_config
    load_infrastructure
    cluster=$(printf '%s\n%s\n' "$control" "$workers" | awk 'NF')
    problem=$(NODES=$nodes CLUSTER=$cluster awk -v self="$module" -v infra="$provider" 'BEGIN {
        n = split(ENVIRON["NODES"], lines, "\n")
        for (i = 1; i <= n; i++) if (split(lines[i], f, " ") == 3) user[f[2]] = f[3]
        n = split(ENVIRON["CLUSTER"], lines, "\n")
        for (i = 1; i <= n; i++) {
            if (!(lines[i] in user)) { print lines[i] " is not a node of `" infra "`"; exit }
            if (user[lines[i]] != "unused" && user[lines[i]] != self) { print "node " lines[i] " is used by `" user[lines[i]] "`"; exit }
        }
    }')
    if [ -n "$problem" ]; then fail "$problem" "run \`init\` again to take free nodes of \`$provider\` from the state"; fi
    # The nodes to mark as used by k8s, and those it no longer uses.
    marking=$(NODES=$nodes CLUSTER=$cluster awk -v self="$module" -v infra="$provider" 'BEGIN {
        n = split(ENVIRON["CLUSTER"], lines, "\n"); for (i = 1; i <= n; i++) member[lines[i]] = 1
        n = split(ENVIRON["NODES"], lines, "\n")
        for (i = 1; i <= n; i++) {
            if (split(lines[i], f, " ") != 3) continue
            if ((f[2] in member) && f[3] != self) print "mark", f[1], self, "~ " infra " node " f[2] ": usedBy: " f[3] " -> " self
            if (!(f[2] in member) && f[3] == self) print "mark", f[1], "unused", "~ " infra " node " f[2] ": usedBy: " self " -> unused"
        }
    }')
    marks=$(printf '%s\n' "$marking" | awk '$1 == "mark" { print $2, $3 }')
    mark_lines=$(printf '%s\n' "$marking" | awk '$1 == "mark" { $1 = $2 = $3 = ""; sub(/^ +/, ""); print }')
    marked=$(printf '%s\n' "$marking" | awk -v self="$module" '$3 == self { n++ } END { print n + 0 }')
    released=$(printf '%s\n' "$marking" | awk '$3 == "unused" { n++ } END { print n + 0 }')

    desired=$(section_text)
    desired_flat=$(printf '%s\n' "$desired" | yaml_flatten -) || exit 1
    differences=$(flat_diff "$(flat_section "$state" "$module")" "$(flat_section "$desired_flat" "$module")")
    changes=$(printf '%s\n%s\n' "$(plan_lines "$differences")" "$mark_lines" | awk 'NF')
}

summary() {
    printf '%s: %s %s, %s %s, %s %s; %s nodes of `%s` %s, %s %s.\n' "$1" \
        "$(count_lines "$changes" '+ ')" "$2" "$(count_lines "$changes" '~ ')" "$3" "$(count_lines "$changes" '- ')" "$4" \
        "$marked" "$provider" "$5" "$released" "$6"
}

plan() {
    no_arguments "$@"
    make_plan
    if [ -z "$changes" ]; then
        echo "No changes: the \`$module\` section of the state matches its config."
        return 0
    fi
    printf '%s\n' "$changes"
    # Node marks are also `~` lines: count only the section's own changes as changes.
    changes=$(printf '%s\n' "$changes" | grep -v "^~ $provider node " || true)
    summary Plan "to add" "to change" "to remove" "to mark used" "to release"
    exit 2
}

apply() {
    no_arguments "$@"
    make_plan
    edit_state "$desired" "$provider" "$marks"
    # The record is written first and put in place last, so that a missing mount fails before
    # the state changes.
    prepare_record "$desired"
    write_state
    commit_record
    if [ -n "$changes" ]; then printf '%s\n' "$changes"; fi
    changes=$(printf '%s\n' "$changes" | grep -v "^~ $provider node " || true)
    summary Applied added changed removed "marked used" released
}

audit() {
    no_arguments "$@"
    if [ ! -f "$record_file" ]; then
        echo "Nothing to audit: \`$module\` has not applied anything yet."
        return 0
    fi
    load_record
    lenient=1
    if load_infrastructure; then infrastructure_problem=; else infrastructure_problem=$problem; fi
    if ! flat_has "$state" "$module"; then
        echo "The \`$module\` section was removed from the state by hand."
        exit 2
    fi
    current=$(flat_section "$state" "$module")
    drift=$(audit_lines "$(flat_diff "$recorded" "$current")")
    # The cluster's nodes must still be nodes of the infrastructure, marked as used by k8s.
    cluster=$(printf '%s\n' "$current" | awk -F'\t' '$1 == "controlPlane" || $1 ~ /^workers\[[0-9]+\]$/ { print $1, $2 }')
    if [ -n "$infrastructure_problem" ]; then
        found="cannot check the cluster's nodes: $infrastructure_problem"
    else
        found=$(NODES=$nodes CLUSTER=$cluster awk -v self="$module" -v infra="$provider" 'BEGIN {
            n = split(ENVIRON["NODES"], lines, "\n")
            for (i = 1; i <= n; i++) if (split(lines[i], f, " ") == 3) user[f[2]] = f[3]
            n = split(ENVIRON["CLUSTER"], lines, "\n")
            for (i = 1; i <= n; i++) {
                if (split(lines[i], f, " ") != 2) continue
                if (!(f[2] in user)) print f[1] ": " f[2] " is not a node of `" infra "`"
                else if (user[f[2]] != self) print f[1] ": " f[2] " is marked `usedBy: " user[f[2]] "` in `" infra "`"
            }
        }')
    fi
    drift=$(printf '%s\n%s\n' "$drift" "$found" | awk 'NF')
    if [ -z "$drift" ]; then
        echo "No drift: the \`$module\` section matches what it applied."
        return 0
    fi
    printf '%s\n' "$drift"
    echo "Audit: $(printf '%s\n' "$drift" | wc -l) hand changes to the \`$module\` cluster."
    exit 2
}

destroy() {
    no_arguments "$@"
    lenient=1
    marks=
    if load_infrastructure; then
        marks=$(printf '%s\n' "$nodes" | awk -v self="$module" '$3 == self { print $1, "unused" }')
    fi
    released=$(printf '%s\n' "$marks" | awk 'NF' | wc -l)
    if ! flat_has "$state" "$module" && [ "$released" -eq 0 ]; then
        rm -f "$record_file"
        echo "Nothing to destroy: the state has no \`$module\` section."
        return 0
    fi
    api=$(flat_get "$state" "$module.apiServer")
    if [ -n "$api" ]; then
        users=$(users_of "$api")
        if [ -n "$users" ]; then echo "warning: the cluster at $api is still used by $users" >&2; fi
    fi
    edit_state "" "$provider" "$marks"
    write_state
    rm -f "$record_file"
    echo "Destroyed: removed the \`$module\` section of the state; released $released nodes of \`${provider:-(no infrastructure)}\`."
}

# Called plainly, not in an `if` or `||`, so that `set -e` stays in force inside the method.
dispatch "$@"
