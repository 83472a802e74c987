#!/usr/bin/env bash
# What the MPI backend (libtutti_mpi) changes for an unchanged MPI program:
# the same perf/mpi-perf binary under Open MPI, run as it is and with the
# backend preloaded (LD_PRELOAD), on the same ranks, sizes and mpirun flags.
# Latency (time per call, small sizes) and bus bandwidth (large sizes) for
# allreduce (fp32 sum), allgather and alltoall on 2 and 4 local ranks. The
# two run interleaved, round after round (which goes first alternates), and
# the tables show medians over the rounds with the ratio, > 1 meaning the
# backend is faster. Each pair is checked once first (every element, -c 1),
# and the preloaded check must show the backend serving the collective
# (TUTTI_MPI_STATS) and handing none of its calls back to Open MPI. Ranks
# are bound to cores when they fit (-B auto): unbound, on a busy 2-core
# machine, tutti's small-message times (native or through the backend)
# jumped between 0.4 and 25 us from run to run.
#
#   perf/compare-mpi-backend.sh [-n "2 4"] [-c COLLECTIVES] [-r ROUNDS]
#                               [-B auto|none|core] [-m 'MPIRUN ARGS'] [-o DIR] BUILDDIR
#
# BUILDDIR is a built tree where configure found Open MPI (perf/mpi-perf and
# .libs/libtutti_mpi.so exist). Results: DIR/compare-mpi-backend.csv
# (medians) and DIR/compare-mpi-backend-raw.csv (every sample).
set -euo pipefail

rank_counts="2 4"
colls="allreduce allgather alltoall"
rounds=5
binding=auto
mpirun_extra=
outdir=

usage() {
    cat <<'EOF'
usage: perf/compare-mpi-backend.sh [options] BUILDDIR
  -n LIST        local rank counts (default "2 4"; more ranks than cores
                 oversubscribe them, alike for both)
  -c LIST        collectives (default "allreduce allgather alltoall"; any
                 that mpi-perf runs)
  -r ROUNDS      interleaved rounds (default 5)
  -B auto|none|core
                 binding, the same for both: core pins rank r to the
                 (r mod cores)-th core (mpirun --map-by core --bind-to
                 core:overload-allowed); none lets the kernel place them;
                 auto (default) is core when the ranks fit the cores, else none
  -m ARGS        extra mpirun arguments for both, e.g. '--mca btl self,vader'
  -o DIR         where the CSV files go (default BUILDDIR/compare)
  -h             this text
EOF
}
die() {
    echo "compare-mpi-backend: $*" >&2
    exit 1
}
while getopts "n:c:r:B:m:o:h" opt; do
    case $opt in
    n) rank_counts=$OPTARG ;;
    c) colls=$OPTARG ;;
    r) rounds=$OPTARG ;;
    B) binding=$OPTARG ;;
    m) mpirun_extra=$OPTARG ;;
    o) outdir=$OPTARG ;;
    h) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
    esac
done
shift $((OPTIND - 1))
[ $# -eq 1 ] || { usage >&2; exit 2; }
build=$(cd "$1" && pwd)
outdir=${outdir:-$build/compare}
[[ $rounds =~ ^[1-9][0-9]*$ ]] || die "-r wants a positive integer"
[[ $binding == auto || $binding == none || $binding == core ]] || die "-B wants auto, none or core"
for n in $rank_counts; do [[ $n =~ ^[1-9][0-9]*$ ]] || die "-n wants rank counts"; done
mperf=$build/perf/mpi-perf
lib=$build/.libs/libtutti_mpi.so
[ -x "$mperf" ] || die "$mperf is missing: configure did not find mpicc (scripts/run-compare.sh installs and builds what is needed)"
[ -f "$lib" ] || die "$lib is missing: configure did not find Open MPI's ompi-c.pc (libopenmpi-dev), or the tree is not built"
if ! mpirun --version 2>&1 | grep -q "Open MPI"; then
    die "mpirun is missing or not Open MPI's: the backend library here is built for Open MPI"
fi
mkdir -p "$outdir"
cores=$(nproc)
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

# shellcheck source=perf/bench-common.sh
. "$(dirname "$0")/bench-common.sh"

# Two sweeps, as perf/compare.sh: small sizes with many calls (their means
# are latencies), large ones with fewer. measure reads them by name.
# shellcheck disable=SC2034
small_sizes=(-b 8 -e 32K -f 8 -n 200 -w 20)
# shellcheck disable=SC2034
large_sizes=(-b 256K -e 16M -f 8 -n 20 -w 5)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
libs=(mpi backend)
declare -A label=([mpi]="Open MPI" [backend]="+ backend")

# run LIB N STATS ARGS...: mpi-perf ARGS on N local ranks, plain (LIB mpi)
# or with the backend (backend; STATS 1: with its TUTTI_MPI_STATS report).
run() {
    local which=$1 n=$2 stats=$3
    shift 3
    local -a env=(-x "LD_LIBRARY_PATH=$build/.libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}")
    [ "$which" = backend ] && env+=(-x "LD_PRELOAD=$lib")
    [ "$stats" -eq 1 ] && env+=(-x TUTTI_MPI_STATS=1)
    # shellcheck disable=SC2046,SC2086 # word splitting of the binding and extra arguments is wanted
    timeout -k 10 900 mpirun -np "$n" --oversubscribe $(bind_args "$n") $mpirun_extra --mca op ^avx \
        "${env[@]}" "$mperf" "$@" </dev/null
}

# bind_args N: mpirun's binding flags for N ranks.
bind_args() {
    if [ "$binding" = core ] || { [ "$binding" = auto ] && [ "$1" -le "$cores" ]; }; then
        echo "--map-by core --bind-to core:overload-allowed"
    else
        echo "--bind-to none"
    fi
}

# measure LIB N COLL CHECK: both sweeps; prints "size time_us busbw" per row
# (out-of-place columns). With CHECK, every element is checked instead, and
# the backend's run must serve COLL.
measure() {
    local which=$1 n=$2 coll=$3 check=$4 sweep status stats name
    for sweep in small large; do
        local -n flags=${sweep}_sizes
        local -a c=(-c 0)
        [ "$check" -eq 0 ] || c=(-c 1 -n 2 -w 1) # checking needs no long timing
        status=0
        run "$which" "$n" "$check" "$coll" "${flags[@]}" "${c[@]}" >"$tmp/out" 2>&1 || status=$?
        if [ "$status" -ne 0 ] || { [ "$check" -eq 1 ] && ! grep -q '^# Out of bounds values : 0 OK$' "$tmp/out"; }; then
            sed 's/^/  | /' "$tmp/out" | tail -20 >&2
            echo "# ${label[$which]} $coll on $n ranks failed (exit status $status): left out" >&2
            return 1
        fi
        if [ "$check" -eq 1 ] && [ "$which" = backend ]; then
            # mpi-perf's collective as MPI names it, e.g. alltoall -> MPI_Alltoall.
            name=$(awk -v c="$coll" 'BEGIN {
                m["allreduce"] = "Allreduce"; m["allgather"] = "Allgather"; m["alltoall"] = "Alltoall"
                m["alltoallv"] = "Alltoallv"; m["broadcast"] = "Bcast"; m["reduce"] = "Reduce"
                m["reduce_scatter"] = "Reduce_scatter_block"; m["barrier"] = "Barrier"
                print "MPI_" (c in m ? m[c] : c) }')
            stats=$(grep "^tutti-mpi: $name served" "$tmp/out" || true)
            if ! [[ $stats =~ served\ [1-9][0-9]*\ fell\ back\ 0$ ]]; then
                grep '^tutti-mpi:' "$tmp/out" | sed 's/^/  | /' >&2
                echo "# the backend did not serve every $name call of mpi-perf $coll on $n ranks ($sweep sizes): left out" >&2
                return 1
            fi
            echo "# $n ranks, $coll, $sweep sizes: ${stats#tutti-mpi: }" >&2
        fi
        awk '!/^#/ && NF >= 13 { print $1, $6, $8 }' "$tmp/out"
    done
}

echo "# perf/compare-mpi-backend: mpi-perf under $(mpirun --version 2>&1 | head -1), as it is and with $lib preloaded"
echo "# collectives: $colls; ranks: $rank_counts; $rounds rounds; $cores cores; binding $binding${mpirun_extra:+; mpirun $mpirun_extra}"
echo "# checking both once (every element) ..."
declare -A broken=()
for n in $rank_counts; do
    for c in $colls; do
        for l in "${libs[@]}"; do
            measure "$l" "$n" "$c" 1 >/dev/null || broken[$n/$c]=1
        done
    done
done

raw=$outdir/compare-mpi-backend-raw.csv
echo "ranks,collective,round,library,size_bytes,time_us,busbw_gbps" >"$raw"
for ((r = 1; r <= rounds; r++)); do
    echo "# round $r of $rounds ..."
    order=("${libs[@]}")
    [ $((r % 2)) -eq 1 ] || order=("${libs[1]}" "${libs[0]}")
    for n in $rank_counts; do
        for c in $colls; do
            [ -z "${broken[$n/$c]:-}" ] || continue
            for l in "${order[@]}"; do
                measure "$l" "$n" "$c" 0 | while read -r size t bw; do
                    echo "$n,$c,$r,$l,$size,$t,$bw"
                done >>"$raw" || true
            done
        done
    done
done

# ---------------------------------------------------------------- tables
summary=$outdir/compare-mpi-backend.csv
echo "ranks,collective,size_bytes,metric,openmpi_median,backend_median,ratio" >"$summary"
samples() { # N COLL LIB SIZE FIELD(6 time, 7 busbw)
    awk -F, -v n="$1" -v c="$2" -v l="$3" -v z="$4" -v f="$5" \
        '$1 == n && $2 == c && $4 == l && $5 == z { print $f }' "$raw"
}
for n in $rank_counts; do
    for c in $colls; do
        [ -z "${broken[$n/$c]:-}" ] || { echo; echo "## $c, $n local ranks: left out (its check failed)"; continue; }
        echo
        echo "## $c, $n local ranks ($(bind_args "$n")): up to 32 KiB time (us, lower is better), then busbw (GB/s); medians of $rounds"
        printf '%-10s %12s %12s  %s\n' "size (B)" "${label[mpi]}" "${label[backend]}" "ratio (backend vs Open MPI)"
        for size in $(awk -F, -v n="$n" -v c="$c" '$1 == n && $2 == c { print $5 }' "$raw" | sort -un); do
            if [ "$size" -le 32768 ]; then f=6 metric=time_us; else f=7 metric=busbw_gbps; fi
            a=$(samples "$n" "$c" mpi "$size" "$f" | median)
            b=$(samples "$n" "$c" backend "$size" "$f" | median)
            # > 1: the backend is better (Open MPI's time / the backend's, or the bandwidths the other way).
            read -r ratio verdict < <(awk -v a="$a" -v b="$b" -v lat="$((f == 6))" 'BEGIN {
                r = lat ? (b > 0 ? a / b : 0) : (a > 0 ? b / a : 0)
                if (r >= 1) printf "%.3f %.2fx_faster\n", r, r
                else if (r > 0) printf "%.3f %.2fx_slower\n", r, 1 / r
                else print "0 n/a" }')
            printf '%-10s %12.3f %12.3f  %s\n' "$size" "$a" "$b" "${verdict//_/ }"
            echo "$n,$c,$size,$metric,$a,$b,$ratio" >>"$summary"
        done
    done
done
echo
echo "# out-of-place column; medians in $summary, every sample in $raw"
