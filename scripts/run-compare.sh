#!/usr/bin/env bash
# The comparison benchmarks. Installs the peers (Open MPI, MPICH, Gloo),
# UCX's tools and gnuplot, builds in build-mpi/ (so configure finds them),
# then runs one of:
#   run-compare.sh [ARGS]        perf/compare.sh: every peer, 2 and 4 local
#                                ranks and 2 emulated hosts (default
#                                -n "2 4" -H 2 -r 3; needs root for -H)
#   run-compare.sh mpi [ARGS]    perf/compare-mpi.sh: allreduce against Open
#                                MPI on this host, pinned ranks (default
#                                7 rounds, 2 ranks)
#   run-compare.sh hosts [ARGS]  perf/compare-hosts.sh: allreduce between 2
#                                emulated hosts against Open MPI and the
#                                link (ucx_perftest); as root
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${TUTTI_BUILD_DIR:-$top/build-mpi}
TUTTI_EXTRA_PACKAGES="openmpi-bin libopenmpi-dev mpich libmpich-dev libgloo-dev ucx-utils gnuplot-nox" \
    "$top/scripts/setup.sh" "$build" --enable-werror >&2
mode=${1:-}
case $mode in
hosts | mpi) shift ;;
*) mode=all ;;
esac
args=("$@")
case $mode in
hosts)
    [ ${#args[@]} -gt 0 ] || args=(-r 5 -o "$build/compare-hosts.csv")
    exec "$top/perf/compare-hosts.sh" "${args[@]}" "$build"
    ;;
mpi)
    [ ${#args[@]} -gt 0 ] || args=(-r 7 -o "$build/compare-mpi.csv")
    exec "$top/perf/compare-mpi.sh" "${args[@]}" "$build"
    ;;
esac
[ ${#args[@]} -gt 0 ] || args=(-n "2 4" -H 2 -r 3)
exec "$top/perf/compare.sh" "${args[@]}" "$build"
