#!/usr/bin/env bash
# Test tutti-perf (never its timings) on 3 local ranks (all-to-all and
# all-to-all-v on 1 to 4): for every collective, runs must report every row
# with #wrong 0 and exit 0, and a run that corrupts one result element per
# check (--corrupt) must report exactly that and exit 1. Also the table's
# shape, the header, the flags (-a, -z, -J, -p, bad ones: exit 2), the
# busiest rank's bytes under all-to-all-v's patterns, and the JSON file
# (valid, the table's figures; jq checks it when installed).
#
#   tests/scripts/test_perf.sh [BUILDDIR]
#
# BUILDDIR is the top build directory (default: $TOP_BUILDDIR, which
# AM_TESTS_ENVIRONMENT sets, else the current directory).
set -euo pipefail

builddir=${1:-${TOP_BUILDDIR:-.}}
run=$builddir/tools/tutti-run
perf=$builddir/perf/tutti-perf
nranks=3
failures=0
out=$(mktemp)
err=$(mktemp)
trap 'rm -f "$out" "$err"' EXIT

for prog in "$run" "$perf"; do
    if [ ! -x "$prog" ]; then
        echo "test_perf: $prog is missing; build first (make) or pass the build dir" >&2
        exit 99 # automake: hard error
    fi
done

fail() {
    echo "FAIL: $*" >&2
    failures=$((failures + 1))
}

# perf EXPECTED_STATUS ARGS...: run tutti-perf on $nranks ranks; output in $out and $err.
perf() {
    local want=$1 status=0
    shift
    echo "== tutti-run -n $nranks tutti-perf $*"
    "$run" --no-prefix --timeout 300 -n "$nranks" "$perf" "$@" >"$out" 2>"$err" || status=$?
    if [ "$status" -ne "$want" ]; then
        fail "exit status $status, expected $want"
        sed 's/^/  | /' "$out" "$err" >&2
        return 1
    fi
}

# Table rows are the lines that do not start with '#':
# size count type redop root  time algbw busbw #wrong  time algbw busbw #wrong
rows() { grep -v '^#' "$out" || true; }

# expect_rows N WRONG: N rows, each with #wrong = WRONG out of place and in place.
expect_rows() {
    local want_rows=$1 want_wrong=$2 got bad
    got=$(rows | wc -l)
    [ "$got" -eq "$want_rows" ] || fail "$got table rows, expected $want_rows"
    bad=$(rows | awk -v w="$want_wrong" 'NF != 13 || $9 != w || $13 != w')
    [ -z "$bad" ] || fail "rows without #wrong $want_wrong:"$'\n'"$(head -3 <<<"$bad")"
}

expect_footer() {
    grep -q "^# Out of bounds values : $1\$" "$out" || fail "footer is not '$1': $(grep 'Out of' "$out")"
    grep -q '^# Avg bus bandwidth    : [0-9.]*$' "$out" || fail "no average bus bandwidth line"
}

# -b 8 -e 1M -f 4 gives 8, 32, ..., 512K: 9 sizes.
sweep=(allreduce -b 8 -e 1M -f 4 -c 1)

# The README's datatype and op, with the default iteration counts.
if perf 0 "${sweep[@]}" -d fp32 -o sum; then
    expect_rows 9 0
    expect_footer "0 OK"
    grep -q "^# tutti-perf allreduce: $nranks ranks, datatype fp32, op sum," "$out" ||
        fail "header line missing or wrong"
fi

# Every type (aliases too) with every op; few iterations, it is the checks that count.
if perf 0 "${sweep[@]}" -d int8,uint8,int32,uint32,int64,uint64,half,bfloat16,float,double \
    -o all -n 2 -w 1; then
    expect_rows $((9 * 10 * 5)) 0
    expect_footer "0 OK"
fi

# The checker must see one wrong element per check, summed over ranks, and fail the run.
if perf 1 "${sweep[@]}" -d int32,bf16 -o sum,avg -n 1 -w 0 --corrupt; then
    expect_rows $((9 * 2 * 2)) 1
    expect_footer "$((9 * 2 * 2 * 2)) FAILED"
fi

# Sizes below one element become one element: fp64 from 1 B to 8 B is one row.
if perf 0 allreduce -b 1 -e 8 -d fp64 -n 1 -w 0; then
    expect_rows 1 0
    rows | awk '$1 != 8 || $2 != 1 { exit 1 }' || fail "expected one row of 8 B, 1 element"
fi

# Every other collective: checked sweeps, with their own sizes and busbw factors, then --corrupt.
# -b 8 -e 64K -f 8: 8, 64, 512, 4K, 32K; the gathered ones count whole blocks of 3 ranks.
small=(-b 8 -e 64K -f 8 -n 2 -w 1)
for coll in reduce_scatter allgather broadcast reduce; do
    root=()
    case $coll in broadcast | reduce) root=(-r 1) ;; esac
    types=(-d all)
    case $coll in reduce_scatter | reduce) types+=(-o all) ;; esac
    if perf 0 "$coll" "${small[@]}" "${root[@]}" "${types[@]}"; then
        rows | awk '$9 != 0 || $13 != 0 { bad = 1 } END { exit bad }' || fail "$coll: wrong results"
        expect_footer "0 OK"
    fi
    if perf 1 "$coll" "${small[@]}" "${root[@]}" -d int8,fp16 --corrupt; then
        expect_rows "$(rows | wc -l)" 1
        expect_footer "$(($(rows | wc -l) * 2)) FAILED"
    fi
done
# The sizes of the gathered collectives are whole vectors: 3 blocks of 2 fp32 elements is 24 B.
if perf 0 allgather -b 24 -e 24 -n 1 -w 0; then
    rows | awk '$1 != 24 || $2 != 2 { exit 1 }' || fail "allgather: expected 24 B, 2 elements"
    grep -q 'busbw = algbw \* (n-1)/n' "$out" || fail "allgather: busbw factor not in the header"
fi
if perf 0 barrier -n 3 -w 1 -d all; then
    expect_rows 1 0
    rows | awk '$1 != 0 || $3 != "none" { exit 1 }' || fail "barrier: expected one row of 0 B"
fi

# The nonblocking calls (-z 0), and every way of combining the ranks' times (-a).
for flags in "-z 0" "-a 0" "-a 2" "-a 3"; do
    # shellcheck disable=SC2086 # two words
    if perf 0 allreduce -b 8 -e 64K -f 8 -n 2 -w 1 $flags; then
        expect_rows 5 0
    fi
done
grep -q 'max over ranks' "$out" || fail "-a 3 not in the header"

# JSON: the table's rows, figures and footer, as a document jq can read.
json=$(mktemp)
trap 'rm -f "$out" "$err" "$json"' EXIT
if perf 0 reduce -b 8 -e 4K -f 8 -r 2 -n 2 -w 1 -d int32,fp64 -o sum,max -J "$json"; then
    if command -v jq >/dev/null; then
        jq -e '.collective == "reduce" and .nranks == '"$nranks"' and .wrong_total == 0
               and (.rows | length) == 16 and all(.rows[]; .root == 2 and .in_place.wrong == 0)' \
            "$json" >/dev/null || fail "JSON does not say what the table says: $(cat "$json")"
        # The table's out-of-place times, to 2 decimals, are the JSON's.
        diff <(rows | awk '{ print $6 }') \
            <(jq -r '.rows[].out_of_place.time_us' "$json" | awk '{ printf "%.2f\n", $1 }') \
            >/dev/null || fail "JSON times differ from the table's"
    else
        echo "   (jq not installed: JSON not parsed)"
        grep -q '"rows"' "$json" || fail "no rows in the JSON file"
    fi
fi
perf 3 allreduce -b 8 -e 8 -J /nonexistent/dir/out.json || true

# All-to-all and all-to-all-v on 1 to 4 ranks: every type, out of place and in place, each
# traffic pattern. -b 1 -e 256K -f 8: 1 B to 256K (a count that repeats is one row).
a2a=(-b 1 -e 256K -f 8 -n 1 -w 1)
a2a_colls=("alltoall" "alltoallv -p uniform" "alltoallv -p random" "alltoallv -p moe")
# expect_a2a COLL [uniform]: clean rows with their columns (alltoallv: 3 more, the busiest
# rank's bytes and bandwidths), whole blocks in the size (count per pair * element size *
# ranks), and the busiest rank's bytes: what one rank sends the others, (n-1)/n of the size,
# when uniform; on one rank, nothing; never more than all the ranks send.
expect_a2a() {
    local cols=13 uniform=0 bad
    [[ $1 == alltoallv* ]] && cols=16
    [[ $1 == *uniform || ${2:-} == uniform ]] && uniform=1
    bad=$(rows | awk -v c=$cols -v n="$nranks" -v u=$uniform '
        NF != c || $9 != 0 || $13 != 0 || $1 % ($2 * n) != 0 || index(" 1 2 4 8 ", " " $1 / ($2 * n) " ") == 0 ||
        (c == 16 && ((u || n == 1) && $14 != $1 * (n - 1) / n || $14 > $1 * n))')
    [ -z "$bad" ] || fail "$1 on $nranks ranks: rows with wrong results, sizes or columns:"$'\n'"$(head -3 <<<"$bad")"
    expect_footer "0 OK"
}
for nranks in 1 2 3 4; do
    for coll in "${a2a_colls[@]}"; do
        # shellcheck disable=SC2086 # the collective and its pattern flag
        if perf 0 $coll "${a2a[@]}" -d all; then
            expect_a2a "$coll"
        fi
    done
done
# The nonblocking calls, and the checker's --corrupt: one wrong element per check.
nranks=4
for coll in "${a2a_colls[@]}"; do
    # shellcheck disable=SC2086
    if perf 0 $coll "${a2a[@]}" -d int8,bf16,fp64 -z 0; then
        expect_a2a "$coll"
    fi
    # shellcheck disable=SC2086
    if perf 1 $coll -b 8 -e 64K -f 8 -n 1 -w 0 -d int8,fp16 --corrupt; then
        rows | awk '$9 != 1 || $13 != 1 { exit 1 }' || fail "$coll --corrupt: not 1 wrong per check"
        expect_footer "$(($(rows | wc -l) * 2)) FAILED"
    fi
done
grep -q '^# pattern moe (64 experts over 4 ranks, top-2, Zipf exponent 1, 4096 tokens per rank' \
    "$out" || fail "alltoallv: moe's defaults not in the header"
grep -q '^# Avg busiest bw       : [0-9.]*$' "$out" || fail "alltoallv: no average busiest bw line"
# A token goes to a rank once however many of its experts live there: 3 experts on 2 ranks
# (2 and 1), every token to all 3, is one token to each rank, i.e. the uniform pattern.
nranks=2
if perf 0 alltoallv -p moe --experts 3 --topk 3 "${a2a[@]}" -d int32; then
    expect_a2a "alltoallv -p moe --experts 3 --topk 3" uniform
fi
# The JSON file of a pattern: its parameters, and per row the busiest rank's figures.
nranks=3
if perf 0 alltoallv -p moe --experts 6 --topk 2 --zipf 1.5 --tokens 500 --seed 9 \
    -b 8 -e 4K -f 8 -n 1 -w 1 -d fp16,uint64 -J "$json"; then
    if command -v jq >/dev/null; then
        jq -e '.collective == "alltoallv" and .wrong_total == 0 and (.rows | length) == 8
               and .pattern == {"name": "moe", "seed": 9, "experts": 6, "topk": 2, "zipf": 1.5,
                                "tokens": 500}
               and (.avg_busiest_bw_gbps | type) == "number"
               and all(.rows[]; .busiest_bytes > 0 and .out_of_place.wrong == 0
                                and (.in_place.busiest_bw_gbps | type) == "number")' \
            "$json" >/dev/null || fail "alltoallv's JSON does not say what the table says: $(cat "$json")"
        diff <(rows | awk '{ print $14 }') <(jq -r '.rows[].busiest_bytes' "$json") >/dev/null ||
            fail "alltoallv: the JSON's busiest bytes differ from the table's"
    else
        grep -q '"busiest_bytes"' "$json" || fail "no busiest bytes in the JSON file"
    fi
fi

# Launchers' environments, no tutti-run: torchrun's (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT)
# and Slurm's (SLURM_PROCID, SLURM_NTASKS; the rendezvous in TUTTI_ADDR), 3 ranks started by hand.
port_base=$((20000 + $$ % 20000))
for launcher in torchrun slurm; do
    echo "== tutti-perf allreduce, 3 ranks started with $launcher's variables"
    pids=()
    port=$((port_base++))
    for r in 0 1 2; do
        case $launcher in
        torchrun) vars=(RANK=$r WORLD_SIZE=3 MASTER_ADDR=127.0.0.1 MASTER_PORT=$port) ;;
        slurm) vars=(SLURM_PROCID=$r SLURM_NTASKS=3 SLURM_JOB_ID=$port TUTTI_ADDR=127.0.0.1:$port) ;;
        esac
        env -u TUTTI_RANK -u TUTTI_NRANKS -u TUTTI_ADDR -u TUTTI_SECRET "${vars[@]}" \
            timeout 120 "$perf" allreduce -b 8 -e 64K -f 8 -n 2 -w 1 >"$out.$r" 2>&1 &
        pids+=($!)
    done
    status=0
    for pid in "${pids[@]}"; do wait "$pid" || status=$?; done
    cp "$out.0" "$out"
    [ "$status" -eq 0 ] || fail "$launcher: a rank exited with status $status: $(cat "$out".[012])"
    expect_rows 5 0
    expect_footer "0 OK"
    rm -f "$out".[012]
done

# Bad flags: exit status 2.
perf 2 allreduce -d fp128 || true
perf 2 allreduce -b 1M -e 1K || true
perf 2 allreduce -a 4 || true
perf 2 allreduce -z 2 || true
perf 2 allgatherv || true
perf 2 broadcast -r 3 || true
perf 2 alltoall -p random || true
perf 2 alltoallv -p zipf || true
perf 2 alltoallv -p moe --experts 4 --topk 5 || true
perf 2 alltoallv -p moe --zipf -1 || true

if [ "$failures" -gt 0 ]; then
    echo "test_perf: $failures failure(s)" >&2
    exit 1
fi
echo "test_perf: all passed"
