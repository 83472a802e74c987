#!/usr/bin/env bash
# The MPI backend against MPI's own semantics. tests/mpi/check_mpi_colls, a
# plain MPI program that checks every collective the backend interposes
# (blocking and nonblocking, every datatype and op, in place, roots, counts,
# sub-communicators, and what the backend hands back to MPI), runs on 1, 2,
# 3, 4, 5 and 8 local ranks under Open MPI and on 1 to 4 under MPICH (whose
# ranks busy-poll: on 2 cores, 8 of them take over 3 minutes for the quick
# case set, with or without the backend): first as it is, which checks the
# test itself, then with the backend preloaded (LD_PRELOAD, TUTTI_MPI_STATS=1),
# where every served collective must report calls served and MPI_Allreduce
# and MPI_Reduce_scatter calls handed back. Without the backend no
# "tutti-mpi:" line may appear. Odd rank counts start MPI with
# MPI_Init_thread(MPI_THREAD_MULTIPLE) and add two threads of collectives.
# MPICH's ranks busy-poll, so above one rank per core its runs take the
# quick case set (-q). Each run is under timeout: a hang fails, and the
# failure shows the last case rank 0 started. After a failing run with the
# backend, the larger rank counts of that MPI are not run (they would take
# as long to fail the same way). An MPI whose program or backend library
# was not built is skipped (77 if none ran).
#
#   tests/scripts/test_mpi_backend.sh [BUILDDIR]
#
# TT_MPI_RANKS and TT_MPI_MPICH_RANKS override the rank counts (e.g.
# TT_MPI_RANKS="2 4"; the first is for both MPIs unless the second is set), and
# TT_MPI_ARGS adds arguments to every run (e.g. TT_MPI_ARGS="-g types,comms";
# check_mpi_colls -h lists them).
set -uo pipefail

builddir=${1:-${TOP_BUILDDIR:-.}}
builddir=$(cd "$builddir" && pwd)
ompi_ranks=${TT_MPI_RANKS:-1 2 3 4 5 8}
mpich_ranks=${TT_MPI_MPICH_RANKS:-${TT_MPI_RANKS:-1 2 3 4}}
read -r -a extra_args <<<"${TT_MPI_ARGS:-}"
cores=$(nproc)
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
out=$(mktemp)
trap 'rm -f "$out"' EXIT
failures=0
tested=0

# Every collective the backend serves: each must have served calls.
served_names="MPI_Allreduce MPI_Reduce MPI_Bcast MPI_Allgather MPI_Reduce_scatter_block
MPI_Reduce_scatter MPI_Alltoall MPI_Alltoallv MPI_Barrier MPI_Iallreduce MPI_Ireduce MPI_Ibcast
MPI_Iallgather MPI_Ireduce_scatter_block MPI_Ireduce_scatter MPI_Ialltoall MPI_Ialltoallv
MPI_Ibarrier"
# Collectives the test calls in ways the backend must hand back to MPI
# (user ops and derived datatypes; unequal counts).
fallback_names="MPI_Allreduce MPI_Reduce_scatter"

# preload_for LIB: what LD_PRELOAD needs for the backend library LIB. A
# library built with AddressSanitizer needs its runtime loaded first.
preload_for() {
    local asan
    asan=$(ldd "$1" 2>/dev/null | awk '/libasan/ { print $3; exit }')
    if [ -n "$asan" ]; then
        echo "$asan:$1"
    else
        echo "$1"
    fi
}

# launch MPI N PRELOAD ARGS...: the test program on N local ranks of MPI
# (openmpi or mpich), with the backend preloaded unless PRELOAD is empty.
launch() {
    local mpi=$1 n=$2 preload=$3
    shift 3
    local env=(TUTTI_MPI_STATS 1 LD_LIBRARY_PATH "$builddir/.libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
        ASAN_OPTIONS "detect_leaks=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}")
    [ -n "$preload" ] && env+=(LD_PRELOAD "$preload")
    local args=() i
    case $mpi in
    openmpi)
        for ((i = 0; i < ${#env[@]}; i += 2)); do args+=(-x "${env[i]}=${env[i + 1]}"); done
        # Debian's Open MPI saturates int8 sums in its AVX-512 ops: the plain ones are exact.
        timeout -k 10 180 mpirun -np "$n" --oversubscribe --bind-to none --mca op ^avx "${args[@]}" \
            "$builddir/tests/mpi/check_mpi_colls" "$@" </dev/null
        ;;
    mpich)
        for ((i = 0; i < ${#env[@]}; i += 2)); do args+=(-genv "${env[i]}" "${env[i + 1]}"); done
        timeout -k 10 400 mpiexec.mpich -n "$n" "${args[@]}" \
            "$builddir/tests/mpi/check_mpi_colls-mpich" "$@" </dev/null
        ;;
    esac
}

# check_stats OUTPUT: the preloaded run's TUTTI_MPI_STATS lines; prints
# what is wrong, if anything.
check_stats() {
    awk -v served="$served_names" -v fallback="$fallback_names" '
        /^tutti-mpi:/ {
            if ($0 !~ /^tutti-mpi: MPI_[A-Za-z_]+ served [0-9]+ fell back [0-9]+$/) {
                print "malformed stats line: " $0
                bad = 1
                next
            }
            if ($2 in s) {
                print "two stats lines for " $2
                bad = 1
            }
            s[$2] = $4
            f[$2] = $7
        }
        END {
            n = split(served, names)
            for (i = 1; i <= n; i++)
                if (!(names[i] in s) || s[names[i]] == 0) {
                    printf "%s: no calls served\n", names[i]
                    bad = 1
                }
            n = split(fallback, names)
            for (i = 1; i <= n; i++)
                if (!(names[i] in f) || f[names[i]] == 0) {
                    printf "%s: no calls handed back to MPI\n", names[i]
                    bad = 1
                }
            exit bad
        }' "$1"
}

# run_one MPI N PRELOAD LABEL ARGS...: one run, one line of output; 1 if it failed.
run_one() {
    local mpi=$1 n=$2 preload=$3 label=$4 status=0 why='' cases stats
    shift 4
    [ $# -gt 0 ] && label="$label ($*)"
    launch "$mpi" "$n" "$preload" -v "$@" >"$out" 2>&1 || status=$?
    cases=$(sed -n 's/^check_mpi_colls: [0-9]* ranks: all \([0-9]*\) cases passed.*/\1/p' "$out")
    if [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then
        why="timed out (a hang)"
    elif [ "$status" -ne 0 ]; then
        why="exit status $status"
    elif [ -z "$cases" ]; then
        why="no summary line"
    elif [ -z "$preload" ] && grep -q '^tutti-mpi:' "$out"; then
        why="tutti-mpi lines without the backend"
    elif [ -n "$preload" ] && ! stats=$(check_stats "$out"); then
        why="stats: $(echo "$stats" | paste -sd ';' | sed 's/;/; /g')"
    fi
    if [ -n "$why" ]; then
        echo "FAIL: $mpi $n ranks $label: $why"
        grep -m 1 'check_mpi_colls: FAIL' "$out" | sed 's/^/    /'
        grep '^case ' "$out" | tail -1 | sed 's/^/    last case rank 0 started: /'
        grep -v '^case \|^check_mpi_colls: note:' "$out" | head -40 | sed 's/^/  | /'
        failures=$((failures + 1))
        return 1
    fi
    echo "ok: $mpi $n ranks $label: $cases cases"
}

check_mpi() {
    local mpi=$1 ranks=$2 prog=$3 launcher=$4 lib=$5 n args preload
    if [ ! -x "$prog" ] || ! command -v "$launcher" >/dev/null 2>&1; then
        echo "test_mpi_backend: $mpi: $(basename "$prog") or $launcher missing: skipped"
        return
    fi
    if [ ! -f "$lib" ]; then
        echo "test_mpi_backend: $mpi: $lib not built: skipped"
        return
    fi
    preload=$(preload_for "$lib")
    for n in $ranks; do
        args=("${extra_args[@]}")
        [ $((n % 2)) -eq 1 ] && [ "$n" -gt 1 ] && args+=(-t)
        [ "$mpi" = mpich ] && [ "$n" -gt "$cores" ] && args+=(-q)
        run_one "$mpi" "$n" "" "plain" "${args[@]}"
        if ! run_one "$mpi" "$n" "$preload" "preloaded" "${args[@]}"; then
            echo "test_mpi_backend: $mpi: larger rank counts not run"
            break
        fi
    done
    tested=$((tested + 1))
}

check_mpi openmpi "$ompi_ranks" "$builddir/tests/mpi/check_mpi_colls" mpirun \
    "$builddir/.libs/libtutti_mpi.so"
check_mpi mpich "$mpich_ranks" "$builddir/tests/mpi/check_mpi_colls-mpich" mpiexec.mpich \
    "$builddir/.libs/libtutti_mpi_mpich.so"
if [ "$failures" -ne 0 ]; then
    echo "test_mpi_backend: $failures run(s) failed"
    exit 1
fi
[ "$tested" -gt 0 ] || exit 77
echo "test_mpi_backend: all passed ($tested MPIs)"
