#!/usr/bin/env bash
# The RDMA transport when it cannot run: on a machine without an RDMA
# device (this one), and without libibverbs at all (hidden here by
# bind-mounting an empty file over it in a private mount namespace).
# libtutti must load and run on shared memory, tutti-info must say why RDMA
# is off, and TUTTI_TRANSPORTS=rdma must fail with that reason instead of
# hanging. Skipped (77) without the RDMA transport; the second part needs
# root (unshare -m).
#
#   tests/scripts/test_rdma_off.sh [BUILDDIR]
set -uo pipefail
build=${TOP_BUILDDIR:-${1:?usage: test_rdma_off.sh BUILD_DIR}}
failures=0
out=$(mktemp)
trap 'rm -f "$out"' EXIT

grep -q '^#define HAVE_IBVERBS 1' "$build/config.h" || {
    echo "test_rdma_off: the RDMA transport is not built: skipped"
    exit 77
}

expect() { # DESCRIPTION PATTERN: the last command's output must match
    if grep -q -- "$2" "$out"; then
        echo "ok: $1"
    else
        echo "FAIL: $1: no line matching '$2' in:"
        sed 's/^/    /' "$out"
        failures=$((failures + 1))
    fi
}

# Runs "$@" with libibverbs hidden, when that can be done here.
without_verbs() {
    local lib
    lib=$(readlink -f "$(ldconfig -p | awk '/libibverbs\.so\.1 .*x86-64|libibverbs\.so\.1 / { print $NF; exit }')")
    unshare -m sh -c 'mount --bind /dev/null "$0" && exec "$@"' "$lib" "$@"
}

# The checks of one situation: $1 names it, $2 is what tutti-info must say about rdma.
check_situation() {
    local name=$1 why=$2
    shift 2
    "$@" "$build/tools/tutti-info" >"$out" 2>&1
    expect "$name: tutti-info says why rdma is off" "^  rdma *unavailable: .*$why"
    "$@" env TUTTI_LOG=info "$build/tools/tutti-run" -n 2 "$build/perf/tutti-perf" allreduce \
        -b 8 -e 64K -f 16 -n 2 -w 1 -c 1 >"$out" 2>&1
    expect "$name: two ranks run on shared memory, results checked" '# Out of bounds values : 0 OK'
    "$@" env TUTTI_TRANSPORTS=rdma TUTTI_BOOTSTRAP_TIMEOUT=20s "$build/tools/tutti-run" -n 2 \
        --timeout 60 "$build/perf/tutti-perf" allreduce -b 8 -e 8 -n 1 -w 0 >"$out" 2>&1
    expect "$name: TUTTI_TRANSPORTS=rdma fails with the reason" "transport rdma.*cannot run: .*$why"
}

if [ -n "$(ls /sys/class/infiniband 2>/dev/null)" ]; then
    echo "test_rdma_off: this machine has RDMA devices: the no-device part is skipped"
else
    check_situation "no RDMA device" "no RDMA device found"
fi
if [ "$(id -u)" -eq 0 ] && unshare -m true 2>/dev/null; then
    check_situation "no libibverbs" "cannot load libibverbs.so.1" without_verbs
else
    echo "test_rdma_off: not root (unshare -m): the no-libibverbs part is skipped"
fi
[ "$failures" -eq 0 ] && echo "test_rdma_off: all passed" || echo "test_rdma_off: $failures failed"
[ "$failures" -eq 0 ]
