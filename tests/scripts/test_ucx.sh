#!/usr/bin/env bash
# The collectives and the failure tests again, with every peer reached over
# UCX (TUTTI_TRANSPORTS=ucx: UCX inside this host too): every
# collective, datatype and op against the reference on 1-8 ranks in the
# latency configuration (small FIFOs do not matter here; many small
# messages, every rank count), then SIGKILL of a rank mid-allreduce
# (survivors must get a failure status within the deadline). The
# bandwidth and hierarchical plans run over UCX between emulated hosts in
# test_cluster_collectives.sh. Skipped (77) when UCX was not built.
#
#   tests/scripts/test_ucx.sh [BUILDDIR]
set -euo pipefail

builddir=${1:-${TOP_BUILDDIR:-.}}
if ! grep -q '^#define HAVE_UCX 1' "$builddir/config.h" 2>/dev/null; then
    echo "test_ucx: UCX transport not built (configure found no UCX): skipped"
    exit 77
fi
for prog in check_collectives check_faults; do
    if [ ! -x "$builddir/tests/unit/$prog" ]; then
        echo "test_ucx: $prog not built (configure found no Check): skipped"
        exit 77
    fi
done
export TUTTI_TRANSPORTS=ucx
failures=0
for config in latency; do
    echo "== check_collectives, configuration $config, over UCX"
    CK_RUN_CASE=$config "$builddir/tests/unit/check_collectives" || failures=$((failures + 1))
done
echo "== check_faults over UCX"
"$builddir/tests/unit/check_faults" || failures=$((failures + 1))
if [ "$failures" -ne 0 ]; then
    echo "test_ucx: $failures suites failed"
    exit 1
fi
echo "test_ucx: all passed"
