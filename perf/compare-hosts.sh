#!/usr/bin/env bash
# Allreduce between emulated hosts, against what the link can do and against
# Open MPI: 2 hosts x 1 rank on the namespace test cluster (scripts/cluster.sh,
# veth pairs on a bridge, MTU 9000), fp32 sum. Per round, interleaved:
#   - tutti (tutti-run --hosts: UCX between the hosts);
#   - Open MPI's MPI_Allreduce (mpirun in host 0, its daemons started through
#     scripts/netns-rsh.sh; ob1 over TCP on rail 0);
#   - the link: ucx_perftest tag bandwidth with peer error handling (-e, as
#     tutti creates its endpoints), one way, and both ways at once (two pairs
#     in opposite directions: an allreduce between two ranks sends both ways
#     at once, on the same cores).
# The table shows medians over the rounds: tutti's bus bandwidth (for two
# ranks, what each rank sends and receives per second), Open MPI's, the
# link's, and the ratios. As root (namespaces).
#
#   perf/compare-hosts.sh [-r ROUNDS] [-o CSV] BUILDDIR
#
# BUILDDIR is a built tree with UCX and mpicc found (perf/mpi-perf exists):
# scripts/run-compare.sh builds one.
set -euo pipefail

rounds=5
csv=compare-hosts.csv
sizes=(1048576 16777216 67108864)
top=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=perf/bench-common.sh
. "$top/perf/bench-common.sh"

die() {
    echo "compare-hosts: $*" >&2
    exit 1
}
while getopts "r:o:h" opt; do
    case $opt in
    r) rounds=$OPTARG ;;
    o) csv=$OPTARG ;;
    h) sed -n '2,/^set /p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) exit 2 ;;
    esac
done
shift $((OPTIND - 1))
[ $# -eq 1 ] || die "usage: compare-hosts.sh [-r ROUNDS] [-o CSV] BUILDDIR"
builddir=$(cd "$1" && pwd)
[[ $rounds =~ ^[1-9][0-9]*$ ]] || die "-r wants a positive integer"
[ "$(id -u)" -eq 0 ] || die "needs root (network namespaces)"
for f in tools/tutti-run perf/tutti-perf perf/mpi-perf; do
    [ -x "$builddir/$f" ] || die "$builddir/$f is missing (scripts/run-compare.sh builds everything)"
done
for tool in mpirun ucx_perftest ip; do
    command -v "$tool" >/dev/null || die "$tool is not on PATH"
done
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

tmp=$(mktemp -d)
export TT_CLUSTER_PREFIX=tb-
trap '"$top/scripts/cluster.sh" down >/dev/null 2>&1; rm -rf "$tmp"' EXIT
h0=${TT_CLUSTER_PREFIX}h0
h1=${TT_CLUSTER_PREFIX}h1
mtu=$("$top/scripts/cluster.sh" up 2 | sed -n "s/.*MTU \([0-9]*\).*/\1/p")

# row WHAT COMMAND...: run a perf program, print "time_us busbw" of its table, or stop.
row() {
    local what=$1
    shift
    if ! "$@" >"$tmp/out" 2>&1 || ! table_row <"$tmp/out"; then
        sed 's/^/  | /' "$tmp/out" >&2
        die "$what failed"
    fi
}
# tutti or mpi SIZE CHECK: prints "time_us busbw".
tutti() {
    # shellcheck disable=SC2046 # iters_for gives separate flags
    row "tutti at $1 B" "$builddir/tools/tutti-run" --no-prefix --hosts "$h0,$h1" -n 1 \
        "$builddir/perf/tutti-perf" allreduce -b "$1" -e "$1" -c "$2" $(iters_for "$1")
}
mpi() {
    local try
    # mpirun's daemon on the other host now and then fails to connect back at start-up
    # ("ORTE does not know how to route ..."): a failed launch, tried again, not a result.
    for try in 1 2 3; do
        # shellcheck disable=SC2046 # iters_for gives separate flags
        ip netns exec "$h0" mpirun --host "$h0:1,$h1:1" -np 2 \
            --mca plm_rsh_agent "$top/scripts/netns-rsh.sh" --mca oob_tcp_if_include rail0 \
            --mca pml ob1 --mca btl tcp,self --mca btl_tcp_if_include rail0 --mca op ^avx \
            "$builddir/perf/mpi-perf" allreduce -b "$1" -e "$1" -c "$2" $(iters_for "$1") \
            >"$tmp/out" 2>&1 && table_row <"$tmp/out" && return
        grep -q "ORTE" "$tmp/out" || break
        echo "# mpirun could not start its daemons (try $try)" >&2
    done
    sed 's/^/  | /' "$tmp/out" >&2
    die "Open MPI at $1 B failed"
}
# perftest SIZE PORT FROM TO: one way, FROM -> TO; prints GB/s.
perftest() {
    local to_addr=198.18.0.$((${4##*h} + 1))
    ip netns exec "$4" ucx_perftest -p "$2" -t tag_bw -s "$1" -n 50 -w 5 -e >/dev/null 2>&1 &
    sleep 0.5
    ip netns exec "$3" ucx_perftest "$to_addr" -p "$2" -t tag_bw -s "$1" -n 50 -w 5 -e 2>&1 |
        awk '/^Final:/ { printf "%.3f\n", $(NF - 2) * 1048576 / 1e9 }'
    wait
}
link_one_way() { perftest "$1" 13337 "$h1" "$h0"; }
link_both_ways() { # the slower direction while both run at once
    local back
    perftest "$1" 13338 "$h0" "$h1" >"$tmp/forth" &
    back=$(perftest "$1" 13339 "$h1" "$h0")
    wait
    awk -v a="$(cat "$tmp/forth")" -v b="$back" 'BEGIN { print (a < b ? a : b) }'
}

echo "# allreduce fp32 sum, 2 hosts x 1 rank (network namespaces, veth, MTU ${mtu:-9000}), $rounds rounds"
echo "# checking both libraries once (every element) ..."
for size in "${sizes[@]}"; do
    tutti "$size" 1 >/dev/null
    mpi "$size" 1 >/dev/null
done
raw=${csv%.csv}-raw.csv
echo "round,size_bytes,what,gbps" >"$raw"
for ((r = 1; r <= rounds; r++)); do
    echo "# round $r of $rounds ..."
    for size in "${sizes[@]}"; do
        echo "$r,$size,tutti,$(tutti "$size" 0 | cut -d' ' -f2)" >>"$raw"
        echo "$r,$size,openmpi,$(mpi "$size" 0 | cut -d' ' -f2)" >>"$raw"
        echo "$r,$size,link_one_way,$(link_one_way "$size")" >>"$raw"
        echo "$r,$size,link_both_ways,$(link_both_ways "$size")" >>"$raw"
    done
done

echo "size_bytes,tutti_busbw,openmpi_busbw,link_one_way,link_both_ways,vs_openmpi,vs_one_way,vs_both_ways" >"$csv"
printf '%-8s %10s %10s %12s %12s   %s\n' size tutti "Open MPI" "link 1-way" "link 2-way" \
    "tutti vs: Open MPI, link 1-way, link 2-way"
for size in "${sizes[@]}"; do
    med() { awk -F, -v s="$size" -v w="$1" '$2 == s && $3 == w { print $4 }' "$raw" | median; }
    t=$(med tutti) m=$(med openmpi) one=$(med link_one_way) two=$(med link_both_ways)
    read -r vm v1 v2 < <(awk -v t="$t" -v m="$m" -v a="$one" -v b="$two" \
        'BEGIN { printf "%.2f %.2f %.2f\n", t / m, t / a, t / b }')
    printf '%-8s %10.3f %10.3f %12.3f %12.3f   %sx, %s, %s\n' "$(human "$size")" "$t" "$m" "$one" \
        "$two" "$vm" "$v1" "$v2"
    echo "$size,$t,$m,$one,$two,$vm,$v1,$v2" >>"$csv"
done
echo "# GB/s (1e9 bytes/s), medians of $rounds rounds; busbw as nccl-tests (2 ranks: algbw);"
echo "# link: ucx_perftest -t tag_bw -e; summary in $csv, samples in $raw"
