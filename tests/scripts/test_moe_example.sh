#!/usr/bin/env bash
# examples/moe_example under tutti-run on a few rank counts and shapes: every
# rank must check its combined tokens and say OK, so the example cannot rot.
set -uo pipefail
build=${TOP_BUILDDIR:-${1:?usage: test_moe_example.sh BUILD_DIR}}
run="$build/tools/tutti-run"
prog="$build/examples/moe_example"
failures=0
out=$(mktemp)
trap 'rm -f "$out"' EXIT

try() { # RANKS ARGS...: every rank exits 0 and prints its OK line
    local n=$1 ok
    shift
    if ! "$run" -n "$n" --timeout 60 "$prog" "$@" >"$out" 2>&1; then
        echo "FAIL: $n ranks, arguments '$*': exit status $?"
        sed 's/^/    /' "$out"
        failures=$((failures + 1))
        return
    fi
    ok=$(grep -c "^\[[0-9]*\] rank [0-9]*: .*: OK$" "$out")
    if [ "$ok" -ne "$n" ]; then
        echo "FAIL: $n ranks, arguments '$*': $ok of $n ranks said OK"
        sed 's/^/    /' "$out"
        failures=$((failures + 1))
        return
    fi
    echo "ok: $n ranks, arguments '$*'"
}

try 1
try 3
try 4 100 33 3 4
try 4 0 8 1 1 # no tokens on ranks 0 and 3 (ranks 1 and 2 get 1 and 2)
"$run" -n 2 --timeout 60 "$prog" 8 4 1 3 >"$out" 2>&1
[ $? -eq 2 ] && echo "ok: top_k above the experts is refused" ||
    { echo "FAIL: top_k 3 with 2 experts was not refused"; failures=$((failures + 1)); }

[ "$failures" -eq 0 ]
