#!/usr/bin/env bash
# tutti against the collective libraries installed next to it, on the same
# ranks and sizes, interleaved: each round runs every library once per
# collective and rank count, in turn, so drift in the machine hits all of
# them alike. Peers, each used when found:
#   openmpi  Open MPI's collectives (mpi-perf; required)
#   mpich    MPICH's (mpi-perf-mpich: configure finds mpicc.mpich)
#   gloo     Gloo's (gloo-perf: configure finds libgloo-dev)
# Every program is the same driver (perf/perf_common.c) over another
# library, so loops, sizes, checks and the busbw arithmetic are identical;
# each run is checked once before the timed rounds. Between emulated hosts
# every library is made to use the network (Open MPI's TCP BTL; MPICH
# MPIR_CVAR_NOLOCAL=1 and UCX_TLS=tcp,self): the namespaces share one kernel
# and host name, and libraries that see the same host name use shared memory,
# which would bypass the network being measured.
#
#   perf/compare.sh [-n "2 4"] [-H HOSTS] [-c COLLECTIVES] [-r ROUNDS] [-o DIR] BUILDDIR
#
# Results: a table per rank count and collective (times up to 32 KiB, bus
# bandwidth above, medians over the rounds, and tutti's ratio to each peer,
# from the times, > 1 meaning tutti is faster), DIR/compare.csv (medians),
# DIR/compare-raw.csv (every sample) and a plot per table, busbw against
# size, one line per library (DIR/<setup>-<collective>.png, gnuplot).
set -euo pipefail

rank_counts="2 4"
hosts=0
colls="allreduce allgather reduce_scatter broadcast"
rounds=3
outdir=
top=$(cd "$(dirname "$0")/.." && pwd)

usage() {
    cat <<'EOF'
usage: perf/compare.sh [options] BUILDDIR
  -n LIST        local rank counts, e.g. "2 4" (default; "" for none)
  -H HOSTS       also HOSTS emulated hosts x 1 rank (network namespaces,
                 scripts/cluster.sh; needs root); default 0: none
  -c LIST        collectives (default "allreduce allgather reduce_scatter
                 broadcast"; tutti-perf --help lists them); alltoallv:PATTERN
                 runs alltoallv with -p PATTERN (uniform, random, moe)
  -r ROUNDS      interleaved rounds (default 3)
  -o DIR         where the CSV files and plots go (default BUILDDIR/compare)
  -h             this text
  -B             bind local ranks to cores, every library alike (rank r on
                 the (r mod C)-th core: tutti-run --bind, mpirun --bind-to
                 core, MPICH -bind-to core); not with -H
Without -B no rank is bound to a core for any library (mpirun --bind-to
none), and more ranks than cores oversubscribe them all alike.
EOF
}
die() {
    echo "compare: $*" >&2
    exit 1
}
bind=0
while getopts "n:H:c:r:o:Bh" opt; do
    case $opt in
    n) rank_counts=$OPTARG ;;
    H) hosts=$OPTARG ;;
    c) colls=$OPTARG ;;
    r) rounds=$OPTARG ;;
    o) outdir=$OPTARG ;;
    B) bind=1 ;;
    h) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
    esac
done
shift $((OPTIND - 1))
[ $# -eq 1 ] || { usage >&2; exit 2; }
build=$(cd "$1" && pwd)
outdir=${outdir:-$build/compare}
[[ $rounds =~ ^[1-9][0-9]*$ ]] || die "-r wants a positive integer"
[[ $hosts =~ ^[0-9]+$ ]] || die "-H wants a number of hosts"
[ "$bind" -eq 0 ] || [ "$hosts" -eq 0 ] ||
    die "-B with -H: every emulated host would bind its rank to its first core, the same one"
for n in $rank_counts; do [[ $n =~ ^[1-9][0-9]*$ ]] || die "-n wants rank counts"; done
[ -x "$build/perf/tutti-perf" ] || die "$build/perf/tutti-perf is missing: build first"
[ -x "$build/perf/mpi-perf" ] && command -v mpirun >/dev/null ||
    die "Open MPI's mpi-perf is missing (scripts/run-compare.sh installs and builds what is needed)"
mkdir -p "$outdir"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

# The libraries present, tutti first.
libs=(tutti openmpi)
[ -x "$build/perf/mpi-perf-mpich" ] && command -v mpiexec.mpich >/dev/null && libs+=(mpich)
[ -x "$build/perf/gloo-perf" ] && libs+=(gloo)
declare -A label=([tutti]=tutti [openmpi]="Open MPI" [mpich]=MPICH [gloo]=Gloo)

# Two sweeps: small sizes with many calls (their means are latencies), large ones with fewer.
small_sizes=(-b 8 -e 32K -f 8 -n 200 -w 20)
large_sizes=(-b 256K -e 16M -f 8 -n 20 -w 5)
tmp=$(mktemp -d)
cluster_prefix=tcmp$$-
cleanup() {
    [ "$hosts" -gt 0 ] && TT_CLUSTER_PREFIX=$cluster_prefix "$top/scripts/cluster.sh" down >/dev/null 2>&1
    rm -rf "$tmp"
}
trap cleanup EXIT

# command_for SETUP LIB: the command that runs LIB's perf program on SETUP ("N" local
# ranks, or "hH" emulated hosts x 1 rank), in the array cmd.
command_for() {
    local setup=$1 lib=$2 n list h0=${cluster_prefix}h0
    if [[ $setup == h* ]]; then
        n=${setup#h}
        list=$(for ((h = 0; h < n; h++)); do printf '%sh%d,' "$cluster_prefix" "$h"; done)
        list=${list%,}
        case $lib in
        tutti) cmd=("$build/tools/tutti-run" --no-prefix --hosts "$list" -n 1 "$build/perf/tutti-perf") ;;
        gloo) cmd=(env GLOO_SOCKET_IFNAME=rail0 "$build/tools/tutti-run" --no-prefix --hosts "$list"
            -n 1 "$build/perf/gloo-perf") ;;
        openmpi) cmd=(ip netns exec "$h0" mpirun --host "${list//,/:1,}:1" -np "$n"
            --mca plm_rsh_agent "$top/scripts/netns-rsh.sh" --mca rtc_hwloc_vmhole none
            --mca oob_tcp_if_include rail0 --mca pml ob1 --mca btl tcp,self
            --mca btl_tcp_if_include rail0 --mca op ^avx "$build/perf/mpi-perf") ;;
        mpich) cmd=(ip netns exec "$h0" env MPIR_CVAR_NOLOCAL=1 UCX_TLS=tcp,self
            mpiexec.mpich -hosts "$list" -n "$n" -ppn 1
            -launcher ssh -launcher-exec "$top/scripts/netns-rsh.sh" -iface rail0
            "$build/perf/mpi-perf-mpich") ;;
        esac
        return
    fi
    n=$setup
    local -a run=("$build/tools/tutti-run" --no-prefix -n "$n") ompi=(--bind-to none)
    local -a hydra=()
    if [ "$bind" -eq 1 ]; then
        run+=(--bind)
        ompi=(--map-by core --bind-to core:overload-allowed)
        hydra=(-bind-to core)
    fi
    case $lib in
    tutti) cmd=("${run[@]}" "$build/perf/tutti-perf") ;;
    gloo) cmd=("${run[@]}" "$build/perf/gloo-perf") ;;
    openmpi) cmd=(mpirun -np "$n" --oversubscribe "${ompi[@]}" --mca op ^avx
        "$build/perf/mpi-perf") ;;
    mpich) cmd=(mpiexec.mpich -n "$n" "${hydra[@]}" "$build/perf/mpi-perf-mpich") ;;
    esac
}

# measure SETUP COLL LIB CHECK: both sweeps; prints "size time_us busbw" per supported row.
# COLL may be alltoallv:PATTERN, for alltoallv -p PATTERN.
measure() {
    local status=0 sweep
    local -a coll=("${2%%:*}")
    [[ $2 != *:* ]] || coll+=(-p "${2#*:}")
    command_for "$1" "$3"
    for sweep in small large; do
        local -n flags=${sweep}_sizes
        local -a check=(-c 0)
        [ "$4" -eq 0 ] || check=(-c 1 -n 2 -w 1) # checking needs no long timing
        timeout 900 "${cmd[@]}" "${coll[@]}" "${flags[@]}" "${check[@]}" >"$tmp/out" 2>&1 || status=$?
        if [ "$status" -ne 0 ]; then
            sed 's/^/  | /' "$tmp/out" | tail -20 >&2
            echo "# $3 $2 on $1 failed (exit status $status): left out" >&2
            return 1
        fi
        # 13 columns, 16 under a traffic pattern (the busiest rank's figures follow).
        awk '!/^#/ && NF >= 13 { print $1, $6, $8 }' "$tmp/out"
    done
}

setups=()
for n in $rank_counts; do setups+=("$n"); done
if [ "$hosts" -gt 0 ]; then
    [ "$(id -u)" -eq 0 ] || die "-H needs root (network namespaces)"
    TT_CLUSTER_PREFIX=$cluster_prefix "$top/scripts/cluster.sh" up "$hosts" >/dev/null
    setups+=("h$hosts")
fi
setup_name() { if [[ $1 == h* ]]; then echo "${1#h} hosts x 1 rank"; else echo "$1 local ranks"; fi; }

echo "# perf/compare: ${libs[*]}; collectives: $colls; $rounds rounds; $(nproc) cores;" \
    "ranks $([ "$bind" -eq 1 ] && echo bound to cores || echo not bound)"
echo "# checking every library once (every element) ..."
declare -A broken=()
for s in "${setups[@]}"; do
    for c in $colls; do
        for lib in "${libs[@]}"; do
            measure "$s" "$c" "$lib" 1 >/dev/null || broken[$s/$c/$lib]=1
        done
    done
done

raw=$outdir/compare-raw.csv
echo "setup,collective,round,library,size_bytes,time_us,busbw_gbps" >"$raw"
for ((r = 1; r <= rounds; r++)); do
    echo "# round $r of $rounds ..."
    for s in "${setups[@]}"; do
        for c in $colls; do
            for lib in "${libs[@]}"; do
                [ -z "${broken[$s/$c/$lib]:-}" ] || continue
                measure "$s" "$c" "$lib" 0 | while read -r size t bw; do
                    echo "$s,$c,$r,$lib,$size,$t,$bw"
                done >>"$raw" || true
            done
        done
    done
done

# ---------------------------------------------------------------- summary, tables, plots
summary=$outdir/compare.csv
# Medians per setup, collective, library and size.
awk -F, 'NR > 1 { k = $1 "," $2 "," $4 "," $5; t[k] = t[k] " " $6; b[k] = b[k] " " $7 }
    function med(list,    v, n, i, j, x) {
        n = split(list, v, " ")
        for (i = 2; i <= n; i++) { x = v[i]; for (j = i - 1; j >= 1 && v[j] + 0 > x + 0; j--) v[j + 1] = v[j]; v[j + 1] = x }
        return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
    }
    END { print "setup,collective,library,size_bytes,time_us,busbw_gbps"
          for (k in t) print k "," med(t[k]) "," med(b[k]) }' "$raw" |
    { read -r head; echo "$head"; sort -t, -k1,1 -k2,2 -k4,4n -k3,3; } >"$summary"

value() { # SETUP COLL LIB SIZE FIELD(5 time, 6 busbw)
    awk -F, -v s="$1" -v c="$2" -v l="$3" -v z="$4" -v f="$5" \
        '$1 == s && $2 == c && $3 == l && $4 == z { print $f }' "$summary"
}
have_gnuplot=$(command -v gnuplot || true)
for s in "${setups[@]}"; do
    for c in $colls; do
        echo
        echo "## $c, $(setup_name "$s"): up to 32 KiB time (us, lower is better), then busbw (GB/s)"
        printf '%-9s' size
        for lib in "${libs[@]}"; do printf ' %9s' "${label[$lib]}"; done
        for lib in "${libs[@]:1}"; do printf ' %13s' "vs ${label[$lib]}"; done
        echo
        for size in $(awk -F, -v s="$s" -v c="$c" '$1 == s && $2 == c { print $4 }' "$summary" | sort -un); do
            f=6
            [ "$size" -le 32768 ] && f=5
            printf '%-9s' "$size"
            t=$(value "$s" "$c" tutti "$size" 5)
            for lib in "${libs[@]}"; do printf ' %9s' "$(value "$s" "$c" "$lib" "$size" "$f")"; done
            # The ratio of the times (the same as that of the bandwidths, but not rounded).
            for lib in "${libs[@]:1}"; do
                p=$(value "$s" "$c" "$lib" "$size" 5)
                awk -v t="$t" -v p="$p" 'BEGIN {
                    if (t == "" || p == "" || t + 0 == 0) printf " %13s", "-"
                    else printf " %12.2fx", p / t }'
            done
            echo
        done
        [ -n "$have_gnuplot" ] || continue
        plot=$outdir/${s}-${c}.png
        cmds="set terminal pngcairo size 800,480 font 'sans,11'; set output '$plot';"
        cmds+="set title '$c, $(setup_name "$s") (this machine)'; set logscale x 2; set format x '%.0b%B';"
        cmds+="set xlabel 'message size (bytes)'; set ylabel 'bus bandwidth (GB/s)'; set key top left; set grid;"
        cmds+="set datafile separator ','; plot "
        sep=
        for lib in "${libs[@]}"; do
            awk -F, -v s="$s" -v c="$c" -v l="$lib" '$1 == s && $2 == c && $3 == l { print $4 "," $6 }' \
                "$summary" >"$tmp/$lib.dat"
            [ -s "$tmp/$lib.dat" ] || continue
            cmds+="$sep'$tmp/$lib.dat' using 1:2 with linespoints lw 2 title '${label[$lib]}'"
            sep=", "
        done
        gnuplot -e "$cmds" && echo "# plot: $plot"
    done
done
echo
echo "# medians of $rounds rounds, out-of-place; ratio = peer time / tutti time (> 1: tutti faster);"
echo "# $summary, samples in $raw"
[ -n "$have_gnuplot" ] || echo "# no gnuplot: no plots (apt-get install gnuplot-nox)"
