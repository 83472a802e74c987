#!/usr/bin/env bash
# Collectives across emulated hosts: a cluster of 3 hosts with two rails
# each (network namespaces, scripts/cluster.sh; TUTTI_RAILS names the rails,
# which hwloc does not list), the unit tests' ranks placed on them in blocks
# (tests/lib/netns.h), shared memory inside a host and UCX between hosts.
# Every collective, datatype and op against the reference on 1-8 ranks, with
# flat rings and with hierarchical plans; a large allreduce between two hosts
# must spread over both rails (the interfaces' byte counters); tutti-perf
# checks every collective on the 3 hosts x 2 ranks; then the
# failure tests across hosts: a rank killed mid-allreduce, and the second
# host's rail-0 link cut mid-allreduce (every rank must fail within the
# deadlines, none may hang). Needs root and UCX; skipped (77) otherwise.
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
for prog in tests/unit/check_collectives tests/unit/check_faults perf/tutti-perf; do
    [ -x "$builddir/$prog" ] || skip "$prog not built"
done
[ "$(id -u)" -eq 0 ] || skip "needs root for network namespaces"

export TT_CLUSTER_PREFIX="tc$$-"
tmp_out=$(mktemp)
trap '"$cluster" down >/dev/null 2>&1; rm -f "$tmp_out"' EXIT
"$cluster" up 3 --rails 2 >/dev/null || skip "cannot make network namespaces here"
h0=${TT_CLUSTER_PREFIX}h0
export TT_TEST_NETNS="$h0,${TT_CLUSTER_PREFIX}h1,${TT_CLUSTER_PREFIX}h2"
export TUTTI_BOOTSTRAP_ADDR=198.18.0.1:0 # host 0, rail 0 (cluster.sh's addresses)
export TUTTI_RAILS=rail0,rail1

failures=0
for config in bandwidth hier; do
    echo "== check_collectives, configuration $config, 3 hosts x 2 rails"
    CK_RUN_CASE=$config "$builddir/tests/unit/check_collectives" || failures=$((failures + 1))
done

# Bytes host 0 has sent on rail R so far.
sent() { ip netns exec "$h0" cat "/sys/class/net/rail$1/statistics/tx_bytes"; }
echo "== allreduce of 16 MiB between 2 hosts: both rails carry it"
before0=$(sent 0) before1=$(sent 1)
if "$builddir/tools/tutti-run" --hosts "$h0,${TT_CLUSTER_PREFIX}h1" -n 1 \
    "$builddir/perf/tutti-perf" allreduce -b 16M -e 16M -n 2 -w 1 -c 1 >/dev/null; then
    on0=$(($(sent 0) - before0)) on1=$(($(sent 1) - before1))
    echo "   rail 0 sent $on0 bytes, rail 1 sent $on1"
    # Each call sends 16 MiB from host 0, half per channel; there are at least 6 calls.
    if [ $((on0 + on1)) -lt $((6 << 24)) ] || [ $((on0 * 10)) -lt $((on1 * 8)) ] ||
        [ $((on1 * 10)) -lt $((on0 * 8)) ]; then
        echo "FAIL: the rails did not share the allreduce's bytes evenly"
        failures=$((failures + 1))
    fi
else
    echo "FAIL: tutti-perf across 2 hosts"
    failures=$((failures + 1))
fi
echo "== tutti-perf, every collective checked, 3 hosts x 2 ranks"
for coll in allreduce reduce_scatter allgather broadcast reduce barrier alltoall alltoallv; do
    if ! "$builddir/tools/tutti-run" --hosts "$TT_TEST_NETNS" -n 2 "$builddir/perf/tutti-perf" \
        "$coll" -b 8 -e 4M -f 64 -n 2 -w 1 -r 3 -d int32,bf16 >"$tmp_out" 2>&1 ||
        ! grep -q '^\[0\] # Out of bounds values : 0 OK$' "$tmp_out"; then
        sed 's/^/  | /' "$tmp_out"
        echo "FAIL: tutti-perf $coll across 3 hosts"
        failures=$((failures + 1))
    fi
done

echo "== check_faults, 3 hosts, with a link cut"
TT_TEST_CUT_LINK="'$cluster' link 1 0 down" TT_TEST_RESTORE_LINK="'$cluster' link 1 0 up" \
    "$builddir/tests/unit/check_faults" || failures=$((failures + 1))
if [ "$failures" -ne 0 ]; then
    echo "test_cluster_collectives: $failures suites failed"
    exit 1
fi
echo "test_cluster_collectives: all passed"
