#!/usr/bin/env bash
# tutti-run and tutti-info, end to end: output prefixes, exit codes when a rank
# fails, crashes or hangs, and the settings listing.
set -uo pipefail
build=${TOP_BUILDDIR:-${1:?usage: test_tutti_run.sh BUILD_DIR}}
run="$build/tools/tutti-run"
prog="$build/tests/programs/env_rank"
failures=0

check() { # DESCRIPTION EXPECTED_STATUS ACTUAL_STATUS
    if [ "$2" != "$3" ]; then
        echo "FAIL: $1: exit status $3, expected $2"
        failures=$((failures + 1))
    else
        echo "ok: $1"
    fi
}

expect_output() { # DESCRIPTION FILE PATTERN
    if grep -q -- "$3" "$2"; then
        echo "ok: $1"
    else
        echo "FAIL: $1: no line matching '$3' in:"
        sed 's/^/    /' "$2"
        failures=$((failures + 1))
    fi
}

out=$(mktemp)
trap 'rm -f "$out"' EXIT

"$run" -n 4 "$prog" >"$out" 2>&1
check "four ranks succeed" 0 $?
for r in 0 1 2 3; do
    expect_output "rank $r's line is prefixed" "$out" "^\[$r\] rank $r of 4: sum 10$"
done

"$run" -n 1 "$prog" >"$out" 2>&1
check "a single rank" 0 $?

"$run" -n 4 "$prog" --fail 2 7 >"$out" 2>&1
status=$?
# The others may fail too as they notice; the exit code is the first failure reaped.
[ "$status" -ne 0 ] && echo "ok: a failing rank makes tutti-run fail ($status)" ||
    { echo "FAIL: tutti-run returned 0 although rank 2 failed"; failures=$((failures + 1)); }
expect_output "the failure is reported" "$out" "rank 2 exited with status 7"

"$run" -n 1 "$prog" --fail 0 7 >"$out" 2>&1
check "a single failing rank's exit code is returned" 7 $?

# Under AddressSanitizer the SEGV must stay a signal, not become ASan's exit code 1.
ASAN_OPTIONS="handle_segv=0:${ASAN_OPTIONS:-}" "$run" -n 3 "$prog" --crash 1 >"$out" 2>&1
check "a crashing rank gives 128+SIGSEGV" 139 $?
expect_output "the crash is named" "$out" "rank 1 was killed by signal 11"

start=$(date +%s)
"$run" -n 3 --timeout 2 "$prog" --hang 0 >"$out" 2>&1
check "a hung job is stopped by --timeout" 124 $?
[ $(( $(date +%s) - start )) -lt 30 ] || { echo "FAIL: --timeout took too long"; failures=$((failures + 1)); }

"$run" -n 2 /nonexistent/program >"$out" 2>&1
check "a missing program gives 127" 127 $?

"$run" >"$out" 2>&1
check "no arguments is a usage error" 2 $?

"$run" -n 2 --no-prefix "$prog" >"$out" 2>&1
check "--no-prefix works" 0 $?
expect_output "lines are not prefixed" "$out" "^rank 0 of 2: sum 3$"

# --bind: each rank allowed one CPU, the (rank mod C)-th of tutti-run's own C CPUs.
mapfile -t cpus < <(taskset -pc $$ | sed 's/.*: //' | tr ',' '\n' |
    awk -F- '{ for (c = $1; c <= ($2 == "" ? $1 : $2); c++) print c }')
"$run" -n 3 --bind sh -c 'grep Cpus_allowed_list /proc/self/status' >"$out" 2>&1
check "--bind runs" 0 $?
for r in 0 1 2; do
    expect_output "--bind pins rank $r" "$out" "^\[$r\] Cpus_allowed_list:[[:space:]]*${cpus[$((r % ${#cpus[@]}))]}\$"
done

"$build/tools/tutti-info" >"$out" 2>&1
check "tutti-info runs" 0 $?
expect_output "tutti-info lists TUTTI_LOG" "$out" "TUTTI_LOG = "
expect_output "tutti-info lists the shm transport" "$out" "shm *available"
TUTTI_SECRET=hush "$build/tools/tutti-info" >"$out" 2>&1
expect_output "tutti-info hides the secret" "$out" "TUTTI_SECRET = (set)"

[ "$failures" -eq 0 ]
