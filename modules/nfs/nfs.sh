# nfs: a mock of an NFS provisioner (nfs-subdir-external-provisioner) on a Kubernetes cluster,
# persistent storage that is an alternative to rook, written for busybox sh and awk. It
# "installs" the provisioner on the cluster of a Kubernetes module (such as k8s) and records
# `nfs: {status: applied, storageClass: nfs-client, cluster: <the apiServer of k8s>}`, the
# storage class that database modules such as pg ask for.
#
# The methods are those of every persistence layer on Kubernetes, in persistence.sh (shared with
# rook); the machinery is in module.sh, shared with the other shell modules.

set -euf

default_module=nfs
case $0 in
    */*) here=${0%/*} ;;
    *) here=. ;;
esac

# The product and the storage class it provides (the `provides-storage-class` label).
product="NFS provisioner"
storage_class=nfs-client

# module.sh and persistence.sh are copied next to this script by modules/build-contexts.sh; in
# the source tree they are in ../lib.
if [ -f "$here/module.sh" ]; then library=$here; else library=$here/../lib; fi
. "$library/module.sh"
. "$library/persistence.sh"

# Called plainly, not in an `if` or `||`, so that `set -e` stays in force inside the method.
dispatch "$@"
