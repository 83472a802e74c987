#!/usr/bin/env bash
# The whole test suite, as CI runs it:
#   1. the normal build (-Werror) and `make check`;
#   2. a separate build with AddressSanitizer + UBSan and `make check`;
#   3. valgrind (memcheck) over the core's single-process tests;
#   4. the Soft-RoCE test bed (a VM with a real verbs stack), once: it does
#      not depend on the build.
# Ends with one line "N passed, N failed".
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${TUTTI_BUILD_DIR:-$top/build}
# Open MPI: test_mpirun_cluster.sh launches into the namespace cluster with mpirun.
# gdb: a rank whose call passes its deadline prints the other ranks' stacks (tt_report_hang).
export TUTTI_EXTRA_PACKAGES="${TUTTI_EXTRA_PACKAGES:-} openmpi-bin libopenmpi-dev mpich libmpich-dev libgloo-dev jq gdb"
passed=0
failed=0

count_suite() { # BUILD_DIR: add the automake harness totals
    local log=$1/test-suite.log p f
    if [ ! -f "$log" ]; then
        failed=$((failed + 1))
        return
    fi
    p=$(sed -n 's/^# PASS: *//p' "$log")
    f=$(( $(sed -n 's/^# FAIL: *//p' "$log") + $(sed -n 's/^# ERROR: *//p' "$log") + $(sed -n 's/^# XPASS: *//p' "$log") ))
    passed=$((passed + ${p:-0}))
    failed=$((failed + f))
    [ "$f" -eq 0 ] || grep -E "^(FAIL|ERROR)" "$log" | sed 's/^/    /'
}

run_suite() { # NAME BUILD_DIR [configure options...]
    local name=$1 dir=$2
    shift 2
    echo "=== $name"
    if ! "$top/scripts/setup.sh" "$dir" "$@"; then
        echo "=== $name: build failed"
        failed=$((failed + 1))
        return
    fi
    (cd "$dir" && make -j"$(nproc)" check >/dev/null 2>&1)
    count_suite "$dir"
    sed -n '/^# TOTAL/,/^# ERROR/p' "$dir/test-suite.log" | sed "s/^/    $name /"
}

run_valgrind() { # memcheck over the core's tests (forked ranks run under it too)
    local dir=$1 t
    echo "=== valgrind"
    if ! command -v valgrind >/dev/null; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q valgrind >/dev/null
    fi
    # pidfd_open is unknown to Debian's valgrind 3.19: tutti falls back to kill(pid, 0).
    for t in check_util check_schedule check_reduce check_bootstrap check_shm check_api check_faults; do
        if CK_FORK=no CK_EXCLUDE_TAGS=large valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
            --child-silent-after-fork=no "$dir/tests/unit/$t" >"$dir/valgrind-$t.log" 2>&1; then
            passed=$((passed + 1))
            echo "    valgrind $t: clean"
        else
            failed=$((failed + 1))
            echo "    valgrind $t: FAILED (see $dir/valgrind-$t.log)"
            tail -20 "$dir/valgrind-$t.log" | sed 's/^/    /'
        fi
    done
}

# The Soft-RoCE VM tests, once (they take minutes under QEMU): the test bed
# itself, then the RDMA transport in it (its unit tests, the collectives on
# 2-4 ranks, two VMs, a link cut), on the normal build.
run_rdma_vm() { # each script: 0 passed, 77 skipped, else failed
    local status t
    echo "=== rdma-vm"
    for t in test_rdma_vm test_rdma_transport; do
        status=0
        "$top/tests/scripts/$t.sh" "$build" >"$build/$t.log" 2>&1 || status=$?
        case $status in
        0) passed=$((passed + 1)); echo "    $t: passed ($(tail -1 "$build/$t.log"))" ;;
        77) echo "    $t: skipped ($(tail -1 "$build/$t.log"))" ;;
        *) failed=$((failed + 1)); echo "    $t: FAILED (exit $status)"
            grep -E '^(FAIL|ok) ' "$build/$t.log" | grep '^FAIL' | sed 's/^/    /'
            tail -30 "$build/$t.log" | sed 's/^/    /' ;;
        esac
    done
}

start=$(date +%s)
run_suite "build" "$build" --enable-werror
run_suite "asan+ubsan" "$build-asan" --enable-werror --enable-sanitizers
run_valgrind "$build"
run_rdma_vm
echo "=== done in $(( $(date +%s) - start )) s"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
