#!/usr/bin/env bash
# The comparison benchmarks: tutti against Open MPI, interleaved. Installs
# Open MPI and UCX's tools, builds in build-mpi/ (so configure finds mpicc),
# then runs perf/compare-mpi.sh on this host with the given options (default:
# 7 rounds, 2 ranks), or with "hosts" as the first argument
# perf/compare-hosts.sh between 2 emulated hosts (as root; default 5 rounds).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${TUTTI_BUILD_DIR:-$top/build-mpi}
TUTTI_EXTRA_PACKAGES="openmpi-bin libopenmpi-dev ucx-utils" "$top/scripts/setup.sh" "$build" --enable-werror >&2
if [ "${1:-}" = hosts ]; then
    shift
    args=("$@")
    [ ${#args[@]} -gt 0 ] || args=(-r 5 -o "$build/compare-hosts.csv")
    exec "$top/perf/compare-hosts.sh" "${args[@]}" "$build"
fi
args=("$@")
[ ${#args[@]} -gt 0 ] || args=(-r 7 -o "$build/compare-mpi.csv")
exec "$top/perf/compare-mpi.sh" "${args[@]}" "$build"
