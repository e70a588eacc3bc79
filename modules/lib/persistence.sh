# persistence.sh: the methods of a persistence layer on Kubernetes, shared by the example modules
# rook and nfs, which differ only in what they mock. Such a module "installs" its storage on the
# cluster of a Kubernetes module (such as k8s) and records `<module>: {status: applied,
# storageClass, cluster: <the apiServer of k8s>}`, the storage class that database modules such
# as pg ask for.
#
# The cluster is the module that e names in the requirements file as the best installed one for
# the module's strong requirement; without that file (an older e), the first section of the
# state with an `apiServer`. The script sets `default_module`, `here`, `product` (what it mocks,
# for its messages) and `storage_class` (its `provides-storage-class` label), sources module.sh
# and then this file, and calls `dispatch`. modules/build-contexts.sh copies this file into the
# build contexts of rook and nfs, as it does module.sh.

requirement_text="a Kubernetes cluster"
requirement_guess="kind=kubernetes,provides-kubernetes semver (>=1.25)"

guess_provider() {
    first_section_with apiServer
}

init() {
    no_arguments "$@"
    # Sets `provider` (the Kubernetes module) and `provided` (its API server).
    load_provider apiServer
    {
        echo "# The Kubernetes cluster that \`$module\` runs $product on: the API server of \`$provider\`."
        echo "# Written by init from the state; plan checks that \`$provider\` still serves it."
        echo "$module:"
        echo "  cluster: $provided"
    } | write_atomically "$config_file"
    echo "Wrote \`$config_file\`: $product on the cluster of \`$provider\` ($provided), storage class $storage_class."
}

# Reads the config: sets `cluster`.
read_config() {
    load_config_section
    only_config_keys cluster "the only key is \`cluster\`, the API server of the Kubernetes cluster"
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
    load_provider apiServer
    if [ "$cluster" != "$provided" ]; then
        fail "the config names the cluster $cluster, but \`$provider\` serves $provided" "run \`init\` again to take the cluster of \`$provider\` from the state"
    fi
    desired=$(section_text)
    compare_with_state
}

# The cluster the section names must still be served by the Kubernetes module.
audit_more() {
    audit_provided cluster apiServer "is not served by" "it serves"
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
