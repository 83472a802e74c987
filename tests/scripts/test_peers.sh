#!/usr/bin/env bash
# The comparison benchmarks' other programs must measure what tutti-perf
# measures: mpi-perf over Open MPI (and over MPICH, and gloo-perf over Gloo,
# where configure built them) runs every collective on 3 ranks with every
# element checked (all-to-all-v with each traffic pattern, blocking and
# nonblocking), and each must come out clean; --corrupt must be caught
# in each. A peer whose program was not built is skipped. MPICH's reduce
# runs at root 0: MPICH 4.0.2 (Debian 12) crashes in MPI_Reduce with
# MPI_IN_PLACE at any other root (pmodels/mpich#6540, fixed in later MPICH).
#
#   tests/scripts/test_peers.sh [BUILDDIR]
set -uo pipefail

builddir=${1:-${TOP_BUILDDIR:-.}}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
out=$(mktemp)
trap 'rm -f "$out"' EXIT
failures=0
tested=0

# run LIB ARGS...: one perf program on 3 local ranks.
run() {
    local lib=$1
    shift
    case $lib in
    openmpi) timeout 300 mpirun -np 3 --oversubscribe --bind-to none --mca op ^avx \
        "$builddir/perf/mpi-perf" "$@" ;;
    mpich) timeout 300 mpiexec.mpich -n 3 "$builddir/perf/mpi-perf-mpich" "$@" ;;
    gloo) timeout 300 "$builddir/tools/tutti-run" --no-prefix -n 3 "$builddir/perf/gloo-perf" "$@" ;;
    esac
}

# Each collective, with the flags it takes beyond the common ones.
colls=("allreduce" "reduce_scatter" "allgather" "broadcast" "reduce" "barrier" "alltoall"
    "alltoall -z 0" "alltoallv -p uniform" "alltoallv -p random" "alltoallv -p moe -z 0")

check_lib() {
    local lib=$1 coll status root
    for coll in "${colls[@]}"; do
        echo "== $lib $coll"
        status=0
        root=1
        [ "$lib$coll" = mpichreduce ] && root=0
        # shellcheck disable=SC2086 # the collective and its flags
        run "$lib" $coll -b 8 -e 64K -f 8 -n 2 -w 1 -r "$root" -d all -o sum,min >"$out" 2>&1 ||
            status=$?
        if [ "$status" -ne 0 ] || ! grep -q '^# Out of bounds values : 0 OK$' "$out"; then
            sed 's/^/  | /' "$out"
            echo "FAIL: $lib $coll: exit status $status"
            failures=$((failures + 1))
        fi
        [ "$coll" = barrier ] && continue
        status=0
        # shellcheck disable=SC2086
        run "$lib" $coll -b 8 -e 4K -f 8 -n 1 -w 0 -r "$root" -d int32 --corrupt >"$out" 2>&1 ||
            status=$?
        if [ "$status" -ne 1 ] || ! grep -q '^# Out of bounds values : [1-9][0-9]* FAILED$' "$out"; then
            sed 's/^/  | /' "$out"
            echo "FAIL: $lib $coll --corrupt: exit status $status, expected 1 and FAILED"
            failures=$((failures + 1))
        fi
    done
    tested=$((tested + 1))
}

if [ -x "$builddir/perf/mpi-perf" ] && command -v mpirun >/dev/null; then
    check_lib openmpi
else
    echo "test_peers: Open MPI's mpi-perf not built: skipped"
fi
if [ -x "$builddir/perf/mpi-perf-mpich" ] && command -v mpiexec.mpich >/dev/null; then
    check_lib mpich
else
    echo "test_peers: MPICH's mpi-perf-mpich not built: skipped"
fi
if [ -x "$builddir/perf/gloo-perf" ]; then
    check_lib gloo
else
    echo "test_peers: gloo-perf not built (no libgloo-dev): skipped"
fi
if [ "$failures" -ne 0 ]; then
    echo "test_peers: $failures failure(s)"
    exit 1
fi
[ "$tested" -gt 0 ] || exit 77
echo "test_peers: all passed ($tested libraries)"
