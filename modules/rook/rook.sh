# rook: a mock of Rook/Ceph, persistent block storage on a Kubernetes cluster, written for busybox
# sh and awk. It "installs" Ceph on the cluster of a Kubernetes module (such as k8s) and records
# `rook: {status: applied, storageClass: rook-ceph-block, cluster: <the apiServer of k8s>}`, the
# storage class that database modules such as pg ask for.
#
# The cluster is the module that e names in the requirements file as the best installed one for
# rook's strong requirement; without that file (an older e), the first section of the state with
# an `apiServer`. The machinery is in module.sh, shared with the other shell modules.

set -euf

default_module=rook
case $0 in
    */*) here=${0%/*} ;;
    *) here=. ;;
esac
# module.sh is copied next to this script by modules/build-contexts.sh; in the source tree it
# is in ../lib.
if [ -f "$here/module.sh" ]; then . "$here/module.sh"; else . "$here/../lib/module.sh"; fi

# The product and the storage class it provides (the `provides-storage-class` label).
product=Rook/Ceph
storage_class=rook-ceph-block
requirement_text="a Kubernetes cluster"
requirement_guess="kind=kubernetes,provides-kubernetes semver (>=1.25)"

guess_provider() {
    first_section_with apiServer
}

# Sets `state` (flattened), `provider` (the Kubernetes module) and `api` (its API server). With
# `lenient` set, returns 1 with `problem` set instead of failing.
load_cluster() {
    load_flat "$state_file" state
    if ! locate_provider 0 "$requirement_text" "$requirement_guess"; then
        if [ -n "${lenient:-}" ]; then return 1; fi
        fail "$problem" "$hint"
    fi
    api=$(flat_get "$state" "$provider.apiServer")
    if [ -z "$api" ]; then
        problem="\`$provider\` has no \`apiServer\` in the state"
        if [ -n "${lenient:-}" ]; then return 1; fi
        fail "$problem" "apply \`$provider\` first"
    fi
}

init() {
    no_arguments "$@"
    load_cluster
    {
        echo "# The Kubernetes cluster that \`$module\` runs $product on: the API server of \`$provider\`."
        echo "# Written by init from the state; plan checks that \`$provider\` still serves it."
        echo "$module:"
        echo "  cluster: $api"
    } | write_atomically "$config_file"
    echo "Wrote \`$config_file\`: $product on the cluster of \`$provider\` ($api), storage class $storage_class."
}

# Reads the config: sets `cluster`.
read_config() {
    if [ ! -f "$config_file" ]; then fail "failed to read \`$config_file\`: no such file" "run \`init\` first to write it"; fi
    load_flat "$config_file" config
    if ! flat_has "$config" "$module"; then fail "invalid config \`$config_file\`: no \`$module\` section" "run \`init\` to write it again"; fi
    section=$(flat_section "$config" "$module")
    unknown=$(printf '%s\n' "$section" | awk -F'\t' 'NF && $1 != "cluster" { key = $1; sub(/[.[].*$/, "", key); print (key == "" ? "(none: the section must be a mapping)" : key); exit }')
    if [ -n "$unknown" ]; then fail "invalid config \`$config_file\`: unknown key \`$unknown\`" "the only key is \`cluster\`, the API server of the Kubernetes cluster"; fi
    cluster=$(flat_get "$section" cluster)
    case $cluster in
        https://?*) ;;
        *) fail "invalid config \`$config_file\`: \`cluster\` must be an https:// URL, not \`$cluster\`" "run \`init\` to write it again" ;;
    esac
}

section_text() {
    echo "$module:"
    echo "  status: applied"
    echo "  storageClass: $storage_class"
    echo "  cluster: $cluster"
}

make_plan() {
    read_config
    load_cluster
    if [ "$cluster" != "$api" ]; then
        fail "the config names the cluster $cluster, but \`$provider\` serves $api" "run \`init\` again to take the cluster of \`$provider\` from the state"
    fi
    desired=$(section_text)
    compare_with_state
}

# The cluster the section names must still be served by the Kubernetes module.
audit_more() {
    named=$(flat_get "$current" cluster)
    lenient=1
    if ! load_cluster; then
        echo "cluster: cannot check $named: $problem"
    elif [ "$named" != "$api" ]; then
        echo "cluster: $named is not served by \`$provider\` (it serves $api)"
    fi
}

plan() {
    no_arguments "$@"
    plan_section
}

apply() {
    no_arguments "$@"
    apply_section
    echo "$product serves the storage class $storage_class on $cluster."
}

audit() {
    no_arguments "$@"
    audit_section
}

destroy() {
    no_arguments "$@"
    destroy_section storageClass "storage class"
}

# Called plainly, not in an `if` or `||`, so that `set -e` stays in force inside the method.
dispatch "$@"
