#!/usr/bin/env bash
# Compare tutti's allreduce with Open MPI's on this host: fp32 sum, latency
# at 8 B and bus bandwidth at 1 MiB, 16 MiB and 64 MiB. The two run
# interleaved (tutti, Open MPI, tutti, Open MPI, ...) for R rounds, the same
# binary code measuring both (tutti-perf and mpi-perf share perf_common.c),
# and the table shows medians over the rounds.
#
#   perf/compare-mpi.sh [-n RANKS] [-r ROUNDS] [-B auto|none|core] [-o CSV]
#                       [-m 'MPIRUN ARGS'] BUILDDIR
#
# BUILDDIR is a configured and built tree (make) where configure found
# mpicc, so perf/mpi-perf exists. Nothing is installed here: missing tools
# are reported and the script stops.
set -euo pipefail

nranks=2
rounds=5
binding=auto
csv=compare-mpi.csv
mpirun_extra=
sizes=(8 1048576 16777216 67108864)

usage() {
    cat <<'EOF'
usage: compare-mpi.sh [options] BUILDDIR
  -n RANKS       ranks per run (default 2; more than the cores oversubscribes)
  -r ROUNDS      interleaved rounds (default 5)
  -B auto|none|core
                 binding of ranks, the same for both libraries: core pins rank
                 i to core i (mpirun --bind-to core, taskset for tutti; Open
                 MPI's own default up to 2 ranks); none lets the kernel place
                 them (mpirun --bind-to none); auto (default) is core when
                 the ranks fit the cores, else none
  -o CSV         summary file (default compare-mpi.csv); raw samples go to
                 the same name with -raw before .csv
  -m ARGS        extra mpirun arguments, e.g. '--mca btl tcp,self'
  -h             this text
EOF
}

die() {
    echo "compare-mpi: $*" >&2
    exit 1
}

while getopts "n:r:B:o:m:h" opt; do
    case $opt in
    n) nranks=$OPTARG ;;
    r) rounds=$OPTARG ;;
    B) binding=$OPTARG ;;
    o) csv=$OPTARG ;;
    m) mpirun_extra=$OPTARG ;;
    h) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
    esac
done
shift $((OPTIND - 1))
[ $# -eq 1 ] || { usage >&2; exit 2; }
builddir=$1
[[ $nranks =~ ^[1-9][0-9]*$ ]] || die "-n wants a positive integer"
[[ $rounds =~ ^[1-9][0-9]*$ ]] || die "-r wants a positive integer"
[[ $binding == auto || $binding == none || $binding == core ]] || die "-B wants auto, none or core"

# ---------------------------------------------------------------- prerequisites
run=$builddir/tools/tutti-run
tperf=$builddir/perf/tutti-perf
mperf=$builddir/perf/mpi-perf
if [ ! -x "$run" ] || [ ! -x "$tperf" ]; then
    die "$run or $tperf is missing: build the tree first (make in $builddir)"
fi
[ -x "$mperf" ] ||
    die "$mperf is missing: configure did not find mpicc (install an MPI with its compiler wrapper, e.g. Debian's libopenmpi-dev, then re-run configure and make)"
for tool in mpirun awk sort sed paste nproc; do
    command -v "$tool" >/dev/null || die "$tool is not on PATH"
done
mpirun --version 2>&1 | grep -q "Open MPI" ||
    die "mpirun is not Open MPI's ($(mpirun --version 2>&1 | head -1)); this script compares with Open MPI"
cores=$(nproc)
if [ "$binding" = auto ]; then
    if [ "$nranks" -le "$cores" ]; then binding=core; else binding=none; fi
fi
if [ "$binding" = core ]; then
    command -v taskset >/dev/null || die "taskset (util-linux) is needed for -B core"
    [ "$nranks" -le "$cores" ] || die "-B core with $nranks ranks on $cores cores: use -B none"
fi

# Open MPI refuses root unless told; more ranks than cores needs --oversubscribe.
if [ "$(id -u)" -eq 0 ]; then
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
mpirun_args=(-np "$nranks")
[ "$nranks" -gt "$cores" ] && mpirun_args+=(--oversubscribe)
if [ "$binding" = core ]; then
    mpirun_args+=(--map-by core --bind-to core)
    # tutti-run has no binding of its own: each rank pins itself, then runs tutti-perf.
    # shellcheck disable=SC2016 # $TUTTI_RANK, $0 and $@ are for the rank's shell
    tutti_cmd=("$run" --no-prefix -n "$nranks" sh -c \
        'exec taskset -c "$((TUTTI_RANK % '"$cores"'))" "$0" "$@"' "$tperf")
else
    mpirun_args+=(--bind-to none)
    tutti_cmd=("$run" --no-prefix -n "$nranks" "$tperf")
fi
# shellcheck disable=SC2206 # word splitting of the extra arguments is wanted
[ -n "$mpirun_extra" ] && mpirun_args+=($mpirun_extra)
mpi_cmd=(mpirun "${mpirun_args[@]}" "$mperf")

# shellcheck source=perf/bench-common.sh
. "$(dirname "$0")/bench-common.sh"

# measure LIB SIZE CHECK: one run; prints "time_us busbw" of the out-of-place column.
measure() {
    local lib=$1 size=$2 check=$3 out status=0
    local -a cmd
    if [ "$lib" = tutti ]; then cmd=("${tutti_cmd[@]}"); else cmd=("${mpi_cmd[@]}"); fi
    # shellcheck disable=SC2046 # iters_for gives separate flags
    out=$("${cmd[@]}" allreduce -d fp32 -o sum -b "$size" -e "$size" -c "$check" \
        $(iters_for "$size") 2>&1) || status=$?
    if [ "$status" -ne 0 ]; then
        printf '%s\n' "$out" | sed 's/^/  | /' >&2
        die "$lib run at $size B failed (exit status $status)"
    fi
    echo "$out" | table_row ||
        die "$lib run at $size B printed no table row"
}

# ---------------------------------------------------------------- runs
echo "# allreduce fp32 sum, $nranks ranks on $cores cores, binding: $binding, $rounds rounds"
echo "# tutti: $tperf over its shm transport; Open MPI: $(mpirun --version 2>&1 | head -1), default transport selection${mpirun_extra:+, extra: $mpirun_extra}"
echo "# checking both once (every element, -c 1) ..."
for size in "${sizes[@]}"; do
    measure tutti "$size" 1 >/dev/null
    measure mpi "$size" 1 >/dev/null
done

raw=${csv%.csv}-raw.csv
[ "$raw" != "$csv" ] || raw=$csv-raw.csv
echo "round,size_bytes,library,time_us,busbw_gbps" >"$raw"
for ((r = 1; r <= rounds; r++)); do
    echo "# round $r of $rounds ..."
    for size in "${sizes[@]}"; do
        for lib in tutti mpi; do
            read -r t bw < <(measure "$lib" "$size" 0)
            echo "$r,$size,$lib,$t,$bw" >>"$raw"
        done
    done
done

# ---------------------------------------------------------------- table
echo "size_bytes,metric,tutti_median,openmpi_median,ratio,verdict,tutti_min,tutti_max,openmpi_min,openmpi_max" >"$csv"
printf '%-8s %-13s %12s %12s  %s\n' "size" "metric" "tutti" "Open MPI" "ratio (tutti vs Open MPI)"
for size in "${sizes[@]}"; do
    if [ "$size" -eq 8 ]; then col=4 metric="time (us)"; else col=5 metric="busbw (GB/s)"; fi
    samples() { awk -F, -v s="$size" -v c="$col" -v l="$1" '$2 == s && $3 == l { print $c }' "$raw"; }
    a=$(samples tutti | median)
    b=$(samples mpi | median)
    spread="$(samples tutti | sort -g | sed -n '1p;$p' | paste -sd,),$(samples mpi | sort -g | sed -n '1p;$p' | paste -sd,)"
    # ratio > 1 means tutti is better: Open MPI time / tutti time, or tutti busbw / Open MPI busbw.
    read -r ratio verdict < <(awk -v a="$a" -v b="$b" -v lat="$((size == 8))" 'BEGIN {
        r = lat ? (a > 0 ? b / a : 0) : (b > 0 ? a / b : 0)
        if (r >= 1) printf "%.3f %.2fx_faster\n", r, r
        else if (r > 0) printf "%.3f %.2fx_slower\n", r, 1 / r
        else print "0 n/a" }')
    verdict=${verdict//_/ }
    printf '%-8s %-13s %12.3f %12.3f  %s\n' "$(human "$size")" "$metric" "$a" "$b" "$verdict"
    echo "$size,$metric,$a,$b,$ratio,$verdict,$spread" >>"$csv"
done
echo "# medians of $rounds rounds; out-of-place column; summary in $csv, samples in $raw"
