# rook: a mock of Rook/Ceph, persistent block storage on a Kubernetes cluster, written for busybox
# sh and awk. It "installs" Ceph on the cluster of a Kubernetes module (such as k8s) and records
# `rook: {status: applied, storageClass: rook-ceph-block, cluster: <the apiServer of k8s>}`, the
# storage class that database modules such as pg ask for.
#
# The methods are those of every persistence layer on Kubernetes, in persistence.sh (shared with
# nfs); the machinery is in module.sh, shared with the other shell modules.

set -euf

default_module=rook
case $0 in
    */*) here=${0%/*} ;;
    *) here=. ;;
esac

# The product and the storage class it provides (the `provides-storage-class` label).
product=Rook/Ceph
storage_class=rook-ceph-block

# module.sh and persistence.sh are copied next to this script by modules/build-contexts.sh; in
# the source tree they are in ../lib.
if [ -f "$here/module.sh" ]; then library=$here; else library=$here/../lib; fi
. "$library/module.sh"
. "$library/persistence.sh"

# Called plainly, not in an `if` or `||`, so that `set -e` stays in force inside the method.
dispatch "$@"
