# pg: a mock of PostgreSQL 15.4 on persistent storage, written for busybox sh and awk. It
# "installs" PostgreSQL with its volumes on the storage class of a persistence module (such as
# rook or nfs) and records `pg: {status: applied, storageClass, replicas}`.
#
# The persistence is the module that e names in the requirements file as the best installed one
# for pg's strong requirement (`kind=persistence`); without that file (an older e), the first
# section of the state with a `storageClass`. Without any, pg cannot be installed, and says how
# to find one: the first step of the design's walkthrough. Its weak requirement, a monitoring,
# is only reported. The machinery is in module.sh, shared with the other shell modules.

set -euf

default_module=pg
case $0 in
    */*) here=${0%/*} ;;
    *) here=. ;;
esac
# module.sh is copied next to this script by modules/build-contexts.sh; in the source tree it
# is in ../lib.
if [ -f "$here/module.sh" ]; then . "$here/module.sh"; else . "$here/../lib/module.sh"; fi

# The PostgreSQL version (the `provides-postgresql` label) and the replicas init asks for.
postgresql_version=15.4.0
default_replicas=2
requirement_text="a persistence layer"
requirement_guess="kind=persistence"

guess_provider() {
    first_section_with storageClass
}

# One line about the weak requirement: which monitoring will watch the database, if any.
monitoring() {
    if read_requirement weak 0; then
        if [ -n "$requirement_module" ]; then
            echo "Monitoring: \`$requirement_module\` ($requirement_selector)."
        else
            echo "Monitoring: none installed ($requirement_selector, optional); \`e search '$requirement_selector'\` finds one."
        fi
    fi
}

init() {
    no_arguments "$@"
    # Sets `provider` (the persistence module) and `provided` (its storage class).
    load_provider storageClass
    {
        echo "# PostgreSQL $postgresql_version of \`$module\`: the storage class of its volumes (provided by"
        echo "# \`$provider\`, taken from the state by init) and how many replicas run."
        echo "$module:"
        echo "  storageClass: $provided"
        echo "  replicas: $default_replicas"
    } | write_atomically "$config_file"
    echo "Wrote \`$config_file\`: PostgreSQL $postgresql_version, $default_replicas replicas on the storage class $provided of \`$provider\`."
    monitoring
}

# Reads the config: sets `storage_class` and `replicas`.
read_config() {
    load_config_section
    only_config_keys "storageClass replicas" "the keys are \`storageClass\` and \`replicas\`"
    storage_class=$(flat_get "$section" storageClass)
    if ! printf '%s\n' "$storage_class" | grep -Eq '^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$'; then
        fail "invalid config \`$config_file\`: \`storageClass\` must be a storage class name, not \`$storage_class\`" "run \`init\` to write it again"
    fi
    replicas=$(flat_get "$section" replicas)
    case $replicas in
        '' | *[!0-9]* | 0*) fail "invalid config \`$config_file\`: \`replicas\` must be a whole number from 1, not \`$replicas\`" ;;
    esac
}

section_text() {
    echo "$module:"
    echo "  status: applied"
    echo "  storageClass: $storage_class"
    echo "  replicas: $replicas"
}

make_plan() {
    read_config
    load_provider storageClass
    if [ "$storage_class" != "$provided" ]; then
        fail "the config asks for the storage class $storage_class, but \`$provider\` provides $provided" "run \`init\` again to take the storage class of \`$provider\` from the state"
    fi
    desired=$(section_text)
    compare_with_state
}

# The storage class the section names must still be provided by the persistence module.
audit_more() {
    audit_provided storageClass storageClass "is not provided by" "it provides"
}

plan() {
    no_arguments "$@"
    plan_section
}

apply() {
    no_arguments "$@"
    apply_section
    echo "PostgreSQL $postgresql_version runs $replicas replicas on the storage class $storage_class of \`$provider\`."
}

audit() {
    no_arguments "$@"
    audit_section
}

destroy() {
    no_arguments "$@"
    destroy_section
}

# Called plainly, not in an `if` or `||`, so that `set -e` stays in force inside the method.
dispatch "$@"
