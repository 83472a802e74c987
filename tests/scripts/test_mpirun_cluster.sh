#!/usr/bin/env bash
# Open MPI's mpirun launching into the namespace test cluster, as users
# launch with mpirun on a real one: mpirun runs in host 0's namespace and
# starts its daemons on the other hosts through scripts/netns-rsh.sh (its
# remote-launch agent, in place of ssh). Each rank must land in its host's
# namespace, and tutti must initialise from Open MPI's environment and run a
# checked allreduce across the hosts; then tutti-perf, unchanged, runs every
# collective under mpirun with its checks on. Needs root and mpirun;
# skipped (77) otherwise.
#
#   tests/scripts/test_mpirun_cluster.sh [BUILDDIR]
set -uo pipefail

builddir=${1:-${TOP_BUILDDIR:-.}}
top=${TOP_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
cluster="$top/scripts/cluster.sh"
prog="$builddir/tests/programs/env_rank"
skip() {
    echo "test_mpirun_cluster: $*: skipped"
    exit 77
}
[ "$(id -u)" -eq 0 ] || skip "needs root for network namespaces"
command -v mpirun >/dev/null 2>&1 || skip "no mpirun (apt-get install openmpi-bin)"
grep -q '^#define HAVE_UCX 1' "$builddir/config.h" 2>/dev/null || skip "UCX transport not built"

export TT_CLUSTER_PREFIX="tm$$-"
h0=${TT_CLUSTER_PREFIX}h0
h1=${TT_CLUSTER_PREFIX}h1
out=$(mktemp)
trap '"$cluster" down >/dev/null 2>&1; rm -rf "$out" "${TMPDIR:-/tmp}/ompi-netns-$TT_CLUSTER_PREFIX"*' EXIT
"$cluster" up 2 >/dev/null || skip "cannot make network namespaces here"

export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
secret=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
mpi() { # mpirun in host 0, 2 ranks per host, its daemons and traffic on rail 0
    timeout 120 ip netns exec "$h0" mpirun --host "$h0:2,$h1:2" -np 4 \
        --mca plm_rsh_agent "$top/scripts/netns-rsh.sh" --mca rtc_hwloc_vmhole none \
        --mca oob_tcp_if_include rail0 --mca btl_tcp_if_include rail0 "$@"
}
failures=0
fail() {
    echo "FAIL: $*"
    sed 's/^/    /' "$out"
    failures=$((failures + 1))
}

mpi /bin/sh -c 'echo "rank $OMPI_COMM_WORLD_RANK in $(ip netns identify)"' >"$out" 2>&1 ||
    fail "mpirun did not start the ranks"
for r in 0 1 2 3; do
    grep -qx "rank $r in ${TT_CLUSTER_PREFIX}h$((r / 2))" "$out" ||
        fail "rank $r is not in ${TT_CLUSTER_PREFIX}h$((r / 2))"
done

mpi -x TUTTI_ADDR=198.18.0.1:29517 -x TUTTI_SECRET="$secret" "$prog" >"$out" 2>&1 ||
    fail "the allreduce across hosts under mpirun failed"
for r in 0 1 2 3; do
    grep -qx "rank $r of 4: sum 10" "$out" || fail "rank $r did not report the sum"
done

# One launch runs the perf suite's collectives one after the other (each its own tutti job),
# all on one address: a rank that finished job k starts job k+1 while rank 0 may still be
# ending job k, reaches job k's rendezvous, is refused as a rank that has joined already,
# and tries again until job k+1's rendezvous is up.
perf="$builddir/perf/tutti-perf"
script='for c in allreduce reduce_scatter allgather broadcast reduce barrier alltoall alltoallv; do
    TUTTI_ADDR=198.18.0.1:29520 "$0" "$c" -b 8 -e 1M -f 32 -n 2 -w 1 -r 1 || exit 1
done'
mpi -x TUTTI_SECRET="$secret" /bin/sh -c "$script" "$perf" \
    >"$out" 2>&1 || fail "tutti-perf under mpirun failed"
n=$(grep -c '^# Out of bounds values : 0 OK$' "$out")
[ "$n" -eq 8 ] || fail "tutti-perf under mpirun: $n of 8 collectives checked clean"

if [ "$failures" -ne 0 ]; then
    echo "test_mpirun_cluster: $failures checks failed"
    exit 1
fi
echo "test_mpirun_cluster: all passed"
