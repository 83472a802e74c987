#!/usr/bin/env bash
# The main job: the perf suite over 4 local ranks (shared memory), every
# collective in turn, each printing its nccl-tests-style table. With
# arguments, one tutti-perf run instead: run-perf.sh COLLECTIVE [FLAGS...]
# (TUTTI_NRANKS sets the rank count).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${TUTTI_BUILD_DIR:-$top/build}
"$top/scripts/setup.sh" "$build" --enable-werror >&2
run=("$build/tools/tutti-run" -n "${TUTTI_NRANKS:-4}" "$build/perf/tutti-perf")
if [ $# -gt 0 ]; then
    exec "${run[@]}" "$@"
fi
for coll in allreduce reduce_scatter allgather broadcast reduce barrier alltoall "alltoallv -p moe"; do
    # shellcheck disable=SC2086 # alltoallv's pattern flag
    "${run[@]}" $coll -b 8 -e 64M -f 4
done
