#!/usr/bin/env bash
# The comparison benchmark: tutti against Open MPI, interleaved, on this host.
# Installs Open MPI, builds in build-mpi/ (so configure finds mpicc), then runs
# perf/compare-mpi.sh with the given options (default: 7 rounds, 2 ranks).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${TUTTI_BUILD_DIR:-$top/build-mpi}
TUTTI_EXTRA_PACKAGES="openmpi-bin libopenmpi-dev" "$top/scripts/setup.sh" "$build" --enable-werror >&2
args=("$@")
[ ${#args[@]} -gt 0 ] || args=(-r 7 -o "$build/compare-mpi.csv")
exec "$top/perf/compare-mpi.sh" "${args[@]}" "$build"
