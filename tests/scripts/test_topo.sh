#!/usr/bin/env bash
# Test tutti-topo's sub-commands on fixtures: a host read from an hwloc XML
# file, small cluster descriptions, the per-size plan table, DOT graphs
# (edges counted), simulations (a streamed one, and the refusal of one too
# large), bad input and usage errors with their exit codes (0 ok, 1 failure,
# 2 usage).
#
#   tests/scripts/test_topo.sh [BUILDDIR]
#
# BUILDDIR is the top build directory (default: $TOP_BUILDDIR, which
# AM_TESTS_ENVIRONMENT sets, else the current directory). Fixtures come from
# $TOP_SRCDIR/tests/fixtures (default: next to this script). Graphviz is not
# needed; SVG output is checked only when dot is installed.
set -euo pipefail

builddir=${1:-${TOP_BUILDDIR:-.}}
srcdir=${TOP_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
topo=$builddir/tools/tutti-topo
fixtures=$srcdir/tests/fixtures
failures=0
tmp=$(mktemp -d)
out=$tmp/out
err=$tmp/err
trap 'rm -rf "$tmp"' EXIT

if [ ! -x "$topo" ]; then
    echo "test_topo: $topo is missing; build first (make) or pass the build dir" >&2
    exit 99 # automake: hard error
fi
# The library's settings must not steer the plans checked here.
unset TUTTI_ALGO TUTTI_TUNING_FILE TUTTI_CHUNK_SIZE TUTTI_CHANNELS TUTTI_TOPO_FILE

fail() {
    echo "FAIL: $*" >&2
    failures=$((failures + 1))
}

# run EXPECTED_STATUS ARGS...: run tutti-topo; output in $out and $err.
run() {
    local want=$1 status=0
    shift
    echo "== tutti-topo $*"
    "$topo" "$@" >"$out" 2>"$err" || status=$?
    if [ "$status" -ne "$want" ]; then
        fail "tutti-topo $*: exit status $status, expected $want"
        sed 's/^/  | /' "$out" "$err" >&2
    fi
    return 0
}

# expect PATTERN [FILE]: FILE (default $out) has a line matching the extended regex PATTERN.
expect() {
    if ! grep -Eq -- "$1" "${2:-$out}"; then
        fail "no line matches '$1'"
        sed 's/^/  | /' "${2:-$out}" >&2
    fi
}

# count PATTERN N [FILE]: exactly N lines match PATTERN.
count() {
    local n
    n=$(grep -Ec -- "$1" "${3:-$out}" || true)
    if [ "$n" -ne "$2" ]; then
        fail "$n lines match '$1', expected $2"
        sed 's/^/  | /' "${3:-$out}" >&2
    fi
}

# ---- help and usage
run 0 --help && expect '^usage: tutti-topo'
for cmd in host cluster plan draw simulate; do
    run 0 "$cmd" --help && expect "^usage: tutti-topo $cmd"
done
run 2
run 2 frobnicate && expect "no command 'frobnicate'" "$err"
run 2 plan --no-such-option
run 2 simulate --algo
run 2 draw --format png
run 2 host --ranks 4 --rank 4
run 2 cluster

# ---- host: the DGX-like fixture has 8 InfiniBand HCAs (and a management port)
status=0
TUTTI_TOPO_FILE=$fixtures/topo/dgx-like-2s-8nic-8gpu.xml "$topo" host --ranks 8 --rank 5 \
    >"$out" 2>"$err" || status=$?
echo "== TUTTI_TOPO_FILE=dgx-like-2s-8nic-8gpu.xml tutti-topo host --ranks 8 --rank 5"
if [ "$status" -ne 0 ] && grep -qi hwloc "$err"; then
    echo "   (skipped: built without hwloc)"
else
    [ "$status" -eq 0 ] || fail "host on the DGX-like fixture: exit status $status"
    count ' InfiniBand ' 8
    expect '^  GPUs: 8'
    expect '^# local rank 5 of 8'
    expect 'this rank: NUMA 1, package 1, .*nearest NIC mlx5_5'
    count '^ +[0-9]+: NUMA' 8
fi
run 0 host && expect '^host ' && expect 'this rank:'

# ---- cluster descriptions
run 0 cluster "$fixtures/cluster/4x4.txt"
expect '^cluster: 16 ranks on 4 hosts, 4 per host, 4 rails'
expect 'link net alpha 3.00 us, beta 25.0 GB/s'
expect 'reduce +gamma 40.0 GB/s'
TUTTI_TRANSPORTS=auto run 0 cluster "$fixtures/cluster/4x4.txt"
expect '^  transports \(TUTTI_TRANSPORTS\): inside a host shm, between hosts (rdma, else ucx|ucx)$'
TUTTI_TRANSPORTS=rdma run 0 cluster "$fixtures/cluster/4x4.txt"
expect '^  transports \(TUTTI_TRANSPORTS\): inside a host rdma, between hosts rdma$'
TUTTI_TRANSPORTS=ucx run 0 cluster "$fixtures/cluster/4x4.txt"
expect '^  transports \(TUTTI_TRANSPORTS\): inside a host ucx, between hosts ucx$'
TUTTI_TRANSPORTS=shm run 0 cluster "$fixtures/cluster/4x4.txt"
expect '^  transports \(TUTTI_TRANSPORTS\): inside a host shm, between hosts none'
run 0 cluster "$fixtures/cluster/2048x8.txt"
expect '^cluster: 16384 ranks on 2048 hosts, 8 per host, 8 rails'
expect '^  host 2047: r16376\(nic 0\)'
printf 'hosts 4\nranks_per_host four\n' >"$tmp/bad.txt"
run 1 cluster "$tmp/bad.txt" && expect 'line 2' "$err" && expect 'not a usable cluster' "$err"
printf 'hosts 4\n' >"$tmp/incomplete.txt"
run 1 cluster "$tmp/incomplete.txt" && expect "needs 'hosts' and 'ranks_per_host'" "$err"
run 1 cluster "$tmp/missing.txt" && expect 'cannot open' "$err"
run 1 plan --cluster "$tmp/bad.txt" && expect 'line 2' "$err"

# ---- plan: one row per size, 8 B .. 1 MiB doubling = 18 rows
run 0 plan --cluster "$fixtures/cluster/4x4.txt" --min 8 --max 1M
count '^ +[0-9]+ +[0-9]+ ' 18
expect '^# cluster: 4 hosts x 4 ranks \(16\), 4 rails'
expect '^ +8 +2 rd +cost model'
run 0 plan --hosts 2 --ranks-per-host 8 --nics 2 --min 1K --max 1G --factor 4 --all
count '^ +[0-9]+ +[0-9]+ ' 11
expect 'ring\(us\) +tree\(us\) +hier\(us\) +rd\(us\)'
TUTTI_ALGO=allreduce=ring "$topo" plan --hosts 2 --ranks-per-host 4 --min 64 --max 64K \
    >"$out" 2>"$err" || fail "plan with TUTTI_ALGO=allreduce=ring failed"
echo "== TUTTI_ALGO=allreduce=ring tutti-topo plan --hosts 2 --ranks-per-host 4"
count ' ring +TUTTI_ALGO ' 11
run 0 plan --hosts 1 --ranks-per-host 4 --collective broadcast --min 1K --max 1M --factor 32
count '^ +[0-9]+ +[0-9]+ ' 3
expect 'busbw = algbw x 1'

# ---- draw: a ring of 16 ranks has 16 edges per channel, 4 of them between hosts
run 0 draw --cluster "$fixtures/cluster/4x4.txt" --algo ring --channel 0 --size 1M
expect '^digraph tutti \{'
count ' -> ' 16
count ' -> .*style="bold,dashed"' 4
count 'subgraph cluster_h' 4
expect '^}'
run 0 draw --cluster "$fixtures/cluster/4x4.txt" --algo ring
count ' -> ' 64 # 4 channels
run 0 draw --hosts 8 --ranks-per-host 4 --nics 4 --algo hier --max-hosts 2
count 'subgraph cluster_h' 2
expect '^  others0 \[label="hosts 2..7"'
run 0 draw --hosts 8 --ranks-per-host 4 --nics 4 --algo ring --collapse --channel 1
count ' -> ' 8 # host h -> host h+1
count '^  h[0-9]+ \[label="host' 8
run 0 draw --hosts 1 --ranks-per-host 8 --algo tree -o "$tmp/tree.dot"
expect 'dir=both' "$tmp/tree.dot"
expect '#d62728' "$tmp/tree.dot" # the second tree's colour
run 1 draw --hosts 2 --ranks-per-host 3 --algo hier --collective broadcast
if command -v dot >/dev/null 2>&1; then
    run 0 draw --cluster "$fixtures/cluster/4x4.txt" --algo tree --format svg -o "$tmp/tree.svg"
    expect '<svg' "$tmp/tree.svg"
else
    echo "   (SVG not checked: Graphviz's dot is not installed)"
fi

# ---- simulate
run 0 simulate --cluster "$fixtures/cluster/4x4.txt" --algo ring --size 4M
expect '^  plan +ring \(decided by --algo\), 4 channels'
expect '^  time +simulated [0-9.]+ (us|ms), model [0-9.]+ (us|ms)'
expect '^  busbw +simulated [0-9.]+ GB/s'
expect '^  bytes shm +[0-9.]+ [KMG]iB in [0-9]+ messages'
expect '^  bytes net +[0-9.]+ [KMG]iB in [0-9]+ messages'
expect '^  busiest link rank [0-9]+ -> rank [0-9]+'
expect '^  busiest (NIC host [0-9]+ NIC [0-9]+|copy port rank [0-9]+) (in|out)'
expect '^  steps +[0-9]+ .* ran'
expect '^  simulation +[0-9.]+ s, simulator memory'
# A ring allreduce moves 2(n-1)/n of the data per rank: 16 ranks x 30/16 x 4 MiB = 120 MiB.
expect 'messages +[0-9]+ on 32 links, 120 MiB in all'
for algo in tree hier rd; do
    run 0 simulate --cluster "$fixtures/cluster/4x4.txt" --algo "$algo" --size 1M
    expect "^  plan +$algo "
done
run 0 simulate --hosts 4 --ranks-per-host 2 --nics 1 --collective broadcast --size 1M --root 3
expect '^  plan +chain|binomial'
run 0 simulate --hosts 2 --ranks-per-host 2 --collective barrier --nics-by channel
# Too large whole (1.07e9 steps) and even two parts at a time (1.3e8 steps) for the limit.
run 1 simulate --cluster "$fixtures/cluster/2048x8.txt" --algo ring --size 64M --channels 1 \
    --max-steps 100M
expect '^  refused .*; streamed 2 parts at a time, about 1.3[0-9]e\+08 steps'
expect 'not simulating a ring plan of about .* the model predicts' "$err"
# In 4 parts: too large whole (3840 steps) but not two parts at a time (2048 steps), so
# streamed, with the times of the whole plan.
TUTTI_PART_STEPS=64 run 0 simulate --cluster "$fixtures/cluster/4x4.txt" --algo ring --size 4M
grep '^  time ' "$out" >"$tmp/whole-time"
TUTTI_PART_STEPS=64 run 0 simulate --cluster "$fixtures/cluster/4x4.txt" --algo ring --size 4M \
    --max-steps 3000
expect '^  streamed +2 parts at a time .*no rank waited'
expect '^  steps +3840 .* 3840 ran'
grep '^  time ' "$out" | cmp -s - "$tmp/whole-time" || fail "streamed times differ from the whole plan's"
run 1 simulate --cluster "$fixtures/cluster/4x4.txt" --algo ring --max-steps 1000
expect '^  refused '
run 1 simulate --hosts 2 --ranks-per-host 3 --algo chain && expect 'no chain algorithm' "$err"
run 1 simulate --hosts 2 --root 99 && expect 'root 99' "$err"

if [ "$failures" -ne 0 ]; then
    echo "test_topo: $failures failure(s)" >&2
    exit 1
fi
echo "test_topo: all passed"
