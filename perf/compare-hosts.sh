#!/usr/bin/env bash
# Allreduce between emulated hosts, against what the link can do and against
# Open MPI: 2 hosts x 1 rank on the namespace test cluster (scripts/cluster.sh,
# two rails of veth pairs on bridges, MTU 9000), fp32 sum. Per round,
# interleaved:
#   - tutti (tutti-run --hosts: UCX between the hosts) on rail 0, and on
#     both rails (TUTTI_RAILS=rail0,rail1: one channel per rail);
#   - Open MPI's MPI_Allreduce (mpirun in host 0, its daemons started through
#     scripts/netns-rsh.sh; ob1 over TCP on rail 0);
#   - the link (rail 0): ucx_perftest tag bandwidth with peer error handling
#     (-e, as tutti creates its endpoints), one way with UCX's defaults, one
#     way with the UCX settings tutti changes (TCP segments of 512K, no
#     zero-copy: README, Transports), and both ways at once with UCX's
#     defaults (two pairs in opposite directions: an allreduce between two
#     ranks sends both ways at once, on the same cores).
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
mtu=$("$top/scripts/cluster.sh" up 2 --rails 2 | sed -n "s/.*MTU \([0-9]*\).*/\1/p")

# row WHAT COMMAND...: run a perf program, print "time_us busbw" of its table, or stop.
row() {
    local what=$1
    shift
    if ! "$@" >"$tmp/out" 2>&1 || ! table_row <"$tmp/out"; then
        sed 's/^/  | /' "$tmp/out" >&2
        die "$what failed"
    fi
}
# tutti or mpi SIZE CHECK [RAILS]: prints "time_us busbw".
tutti() {
    # shellcheck disable=SC2046 # iters_for gives separate flags
    TUTTI_RAILS=${3:-} row "tutti at $1 B" "$builddir/tools/tutti-run" --no-prefix \
        --hosts "$h0,$h1" -n 1 \
        "$builddir/perf/tutti-perf" allreduce -b "$1" -e "$1" -c "$2" $(iters_for "$1")
}
mpi() {
    # shellcheck disable=SC2046 # iters_for gives separate flags
    ip netns exec "$h0" mpirun --host "$h0:1,$h1:1" -np 2 \
        --mca plm_rsh_agent "$top/scripts/netns-rsh.sh" --mca rtc_hwloc_vmhole none \
        --mca oob_tcp_if_include rail0 --mca pml ob1 --mca btl tcp,self \
        --mca btl_tcp_if_include rail0 --mca op ^avx \
        "$builddir/perf/mpi-perf" allreduce -b "$1" -e "$1" -c "$2" $(iters_for "$1") \
        >"$tmp/out" 2>&1 && table_row <"$tmp/out" && return
    sed 's/^/  | /' "$tmp/out" >&2
    die "Open MPI at $1 B failed"
}
# perftest SIZE PORT FROM TO [VAR=VALUE...]: one way, FROM -> TO; prints GB/s.
perftest() {
    local size=$1 port=$2 from=$3 to=$4 to_addr=198.18.0.$((${4##*h} + 1))
    shift 4
    ip netns exec "$to" env "$@" ucx_perftest -p "$port" -t tag_bw -s "$size" -n 50 -w 5 -e \
        >/dev/null 2>&1 &
    sleep 0.5
    ip netns exec "$from" env "$@" ucx_perftest "$to_addr" -p "$port" -t tag_bw -s "$size" \
        -n 50 -w 5 -e 2>&1 | awk '/^Final:/ { printf "%.3f\n", $(NF - 2) * 1048576 / 1e9 }'
    wait
}
link_one_way() { perftest "$1" 13337 "$h1" "$h0"; }
link_one_way_tuned() {
    perftest "$1" 13340 "$h1" "$h0" UCX_TCP_TX_SEG_SIZE=512k UCX_TCP_RX_SEG_SIZE=512k \
        UCX_ZCOPY_THRESH=inf
}
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
        echo "$r,$size,tutti_2_rails,$(tutti "$size" 0 rail0,rail1 | cut -d' ' -f2)" >>"$raw"
        echo "$r,$size,openmpi,$(mpi "$size" 0 | cut -d' ' -f2)" >>"$raw"
        echo "$r,$size,link_one_way,$(link_one_way "$size")" >>"$raw"
        echo "$r,$size,link_one_way_tuned,$(link_one_way_tuned "$size")" >>"$raw"
        echo "$r,$size,link_both_ways,$(link_both_ways "$size")" >>"$raw"
    done
done

echo "size_bytes,tutti_busbw,tutti_2_rails_busbw,openmpi_busbw,link_one_way,link_one_way_tuned,link_both_ways,vs_openmpi,vs_one_way,vs_one_way_tuned,vs_both_ways" >"$csv"
printf '%-7s %7s %7s %8s %7s %7s %7s   %s\n' size tutti "2 rails" "Open MPI" "1-way" "1-way*" \
    "2-way" "tutti vs: Open MPI, 1-way, 1-way*, 2-way"
for size in "${sizes[@]}"; do
    med() { awk -F, -v s="$size" -v w="$1" '$2 == s && $3 == w { print $4 }' "$raw" | median; }
    t=$(med tutti) t2=$(med tutti_2_rails) m=$(med openmpi) one=$(med link_one_way)
    tuned=$(med link_one_way_tuned) two=$(med link_both_ways)
    read -r vm v1 vt v2 < <(awk -v t="$t" -v m="$m" -v a="$one" -v u="$tuned" -v b="$two" \
        'BEGIN { printf "%.2f %.2f %.2f %.2f\n", t / m, t / a, t / u, t / b }')
    printf '%-7s %7.3f %7.3f %8.3f %7.3f %7.3f %7.3f   %sx, %s, %s, %s\n' "$(human "$size")" \
        "$t" "$t2" "$m" "$one" "$tuned" "$two" "$vm" "$v1" "$vt" "$v2"
    echo "$size,$t,$t2,$m,$one,$tuned,$two,$vm,$v1,$vt,$v2" >>"$csv"
done
echo "# GB/s (1e9 bytes/s), medians of $rounds rounds; busbw as nccl-tests (2 ranks: algbw);"
echo "# link: ucx_perftest -t tag_bw -e on rail 0 (1-way*: with tutti's UCX settings);"
echo "# tutti: rail 0, and both rails (TUTTI_RAILS); summary in $csv, samples in $raw"
