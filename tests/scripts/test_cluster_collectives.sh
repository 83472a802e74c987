#!/usr/bin/env bash
# Collectives across emulated hosts: a cluster of 3 hosts (network
# namespaces, scripts/cluster.sh), the unit tests' ranks placed on them in
# blocks (tests/lib/netns.h), shared memory inside a host and UCX between
# hosts. Every collective, datatype and op against the reference on 1-8
# ranks, with flat rings and with hierarchical plans; then the failure tests
# across hosts: a rank killed mid-allreduce, and the second host's link cut
# mid-allreduce (every rank must fail within the deadlines, none may hang).
# Needs root and UCX; skipped (77) otherwise.
#
#   tests/scripts/test_cluster_collectives.sh [BUILDDIR]
set -uo pipefail

builddir=${1:-${TOP_BUILDDIR:-.}}
top=${TOP_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
cluster="$top/scripts/cluster.sh"
skip() {
    echo "test_cluster_collectives: $*: skipped"
    exit 77
}
grep -q '^#define HAVE_UCX 1' "$builddir/config.h" 2>/dev/null || skip "UCX transport not built"
for prog in check_collectives check_faults; do
    [ -x "$builddir/tests/unit/$prog" ] || skip "$prog not built (no Check)"
done
[ "$(id -u)" -eq 0 ] || skip "needs root for network namespaces"

export TT_CLUSTER_PREFIX="tc$$-"
trap '"$cluster" down >/dev/null 2>&1' EXIT
"$cluster" up 3 >/dev/null || skip "cannot make network namespaces here"
export TT_TEST_NETNS="${TT_CLUSTER_PREFIX}h0,${TT_CLUSTER_PREFIX}h1,${TT_CLUSTER_PREFIX}h2"
export TUTTI_BOOTSTRAP_ADDR=198.18.0.1:0 # host 0, rail 0 (cluster.sh's addresses)

failures=0
for config in bandwidth hier; do
    echo "== check_collectives, configuration $config, 3 hosts"
    CK_RUN_CASE=$config "$builddir/tests/unit/check_collectives" || failures=$((failures + 1))
done
echo "== check_faults, 3 hosts, with a link cut"
TT_TEST_CUT_LINK="'$cluster' link 1 0 down" TT_TEST_RESTORE_LINK="'$cluster' link 1 0 up" \
    "$builddir/tests/unit/check_faults" || failures=$((failures + 1))
if [ "$failures" -ne 0 ]; then
    echo "test_cluster_collectives: $failures suites failed"
    exit 1
fi
echo "test_cluster_collectives: all passed"
