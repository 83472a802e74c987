#!/usr/bin/env bash
# The main job: the perf suite for allreduce over 4 local ranks (shared memory),
# printing the nccl-tests-style table. Extra arguments go to tutti-perf.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${TUTTI_BUILD_DIR:-$top/build}
"$top/scripts/setup.sh" "$build" --enable-werror >&2
args=("$@")
[ ${#args[@]} -gt 0 ] || args=(-b 8 -e 64M -f 2)
exec "$build/tools/tutti-run" -n "${TUTTI_NRANKS:-4}" "$build/perf/tutti-perf" allreduce "${args[@]}"
