#!/usr/bin/env bash
# tutti against raw RDMA writes on the Soft-RoCE test bed (scripts/rdma-vm.sh):
# in rounds, interleaved (so that drift in the machine's load touches every
# tool alike), ib_write_bw (perftest, RC RDMA writes on rxe0) at each size,
# then tutti-perf allreduce and alltoall on 2 ranks with
# TUTTI_TRANSPORTS=$TT_RDMA_TRANSPORT (default rdma) over the same device;
# prints a table of the medians over the rounds.
#
#   --vms 1 (default)  one VM with two vCPUs: both ib_write_bw processes and
#            both ranks on its rxe0 (packets loop back through the kernel).
#   --vms 2  two VMs with one vCPU each, joined by a virtual wire: the
#            ib_write_bw server and rank 1 in VM 1, the client and rank 0
#            in VM 0 (ranks started by environment: TUTTI_RANK, ...).
#
# Columns (MB/s = 10^6 bytes per second, for every tool):
#   ib_write_bw  average bandwidth of one RC queue pair writing messages of
#                that size one way (perftest prints MiB/s: converted);
#   algbw        tutti-perf's size / time (out of place, mean over the
#                iterations, averaged over the ranks);
#   busbw        algbw times the collective's factor: 2(n-1)/n = 1 for a
#                2-rank allreduce, (n-1)/n = 1/2 for a 2-rank alltoall: the
#                bytes each rank sends to the other per second;
#   ratio        busbw / ib_write_bw: the share of the raw one-way RDMA
#                bandwidth that tutti achieves in what each rank sends. 1.0
#                means tutti sends as fast as one ib_write_bw stream; below
#                it is the cost of tutti's protocol, reduction and
#                synchronization (and, for the allreduce, of sending and
#                receiving at once, while ib_write_bw only sends). Under
#                emulation rxe's work (copies, CRCs) runs on the same
#                vCPUs as the ranks, so both directions and the reduction
#                compete for the CPU: figures are for comparing runs on this
#                test bed, not for predicting hardware.
#
# --uncached-too  in each round, tutti also runs with its registration cache
#            off (TUTTI_RDMA_REG_CACHE=0: every large message registers its
#            buffers), and a second table compares the two.
#
# Options: --vms 1|2, --rounds N (3), --sizes "64K 256K 1M 4M 16M",
# --iters N (tutti-perf timed calls per size, 5), --mib M (MiB that
# ib_write_bw writes per size, 128), --timeout S (VM run, 1800), --log FILE
# (keep the whole output, every round's figures as "DATA round tool size MB/s").
# TT_RDMA_TRANSPORT=ucx measures tutti over UCX on rxe0 instead (rc_verbs
# for data, TCP for UCX's wire-up). TUTTI_* and UCX_* variables set here
# are passed into the VMs. Needs root (QEMU).
#
#   perf/rdma-vm-bench.sh [--vms 2] [BUILDDIR]
set -uo pipefail

self=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")
top=$(cd "$(dirname "$self")/.." && pwd)
vm=$top/scripts/rdma-vm.sh
transport=${TT_RDMA_TRANSPORT:-rdma}
vms=1
rounds=3
sizes="64K 256K 1M 4M 16M"
iters=5
mib=128
timeout_s=1800
port=29600
log=
uncached_too=0

usage() {
    sed -n '2,/^set -uo/p' "$self" | sed '$d; s/^# \{0,1\}//'
}

# ------------------------------------------------------------------ in the VMs

# shellcheck source=tests/scripts/rdma_vm_transport.sh
. "$top/tests/scripts/rdma_vm_transport.sh"

bytes() {
    case $1 in
    *K) echo $((${1%K} << 10)) ;;
    *M) echo $((${1%M} << 20)) ;;
    *G) echo $((${1%G} << 30)) ;;
    *) echo "$1" ;;
    esac
}

# ib_write_bw at size $2 bytes in round $1; prints "DATA round ib_write_bw size MB/s".
vm_write_bw() {
    local round=$1 size=$2 g=$RDMA_VM_GID_INDEX out=/tmp/write_bw.log
    # A count of writes, not a duration (-D): in duration mode, with its
    # 128 writes in flight, rxe under emulation reported 8 MB/s at 1 MiB
    # against 66 MB/s for the same size counted (or with -t 16).
    local iters_wb=$(((mib << 20) / size))
    [ "$iters_wb" -ge 5 ] || iters_wb=5
    local args=(-d "$RDMA_VM_DEV" -x "$g" -F -s "$size" -n "$iters_wb")
    if [ "$vms" = 1 ]; then
        ib_write_bw "${args[@]}" > /tmp/write_bw_server.log 2>&1 &
        for _ in $(seq 1 40); do
            ib_write_bw "${args[@]}" 127.0.0.1 > "$out" 2>&1 && break
            sleep 0.5
        done
        wait
    elif [ "$RDMA_VM_ID" = 1 ]; then
        ib_write_bw "${args[@]}" > "$out" 2>&1
        return
    else
        for _ in $(seq 1 60); do
            ib_write_bw "${args[@]}" "$RDMA_VM_PEER" > "$out" 2>&1 && break
            sleep 0.5
        done
    fi
    awk -v r="$round" -v s="$size" '$1 == s && NF >= 5 && $4 + 0 > 0 {
        printf "DATA %s ib_write_bw %s %.3f\n", r, s, $4 * 1.048576; found = 1 }
        END { if (!found) printf "DATA %s ib_write_bw %s -\n", r, s }' "$out"
    grep -q "^ *$size " "$out" || sed 's/^/  | /' "$out" | tail -n 15
}

# tutti-perf $2 over every size in round $1; prints "DATA round COLL$3 size
# algbw-MB/s" from the out-of-place times (bytes / us = MB/s).
vm_tutti() {
    local round=$1 coll=$2 label=$2${3:-} lo hi out=/tmp/tutti.log st r
    lo=$(bytes "${sizes%% *}")
    hi=$(bytes "${sizes##* }")
    local perf=("$builddir/perf/tutti-perf" "$coll" -b "$lo" -e "$hi" -f 4 -n "$iters" -w 1 -c 0)
    export TUTTI_OP_TIMEOUT=300s
    if [ "$vms" = 1 ]; then
        "$builddir/tools/tutti-run" -n 2 --timeout 600 "${perf[@]}" > "$out" 2>&1
        st=$?
    else
        r=$RDMA_VM_ID
        TUTTI_RANK=$r TUTTI_NRANKS=2 TUTTI_ADDR=198.18.0.1:$port TUTTI_SECRET=$secret \
            timeout 600 "${perf[@]}" > "$out" 2>&1
        st=$?
        port=$((port + 1))
        [ "$r" = 0 ] || { [ "$st" = 0 ] || tail -n 15 "$out" | sed 's/^/  | /'; return; }
    fi
    [ "$st" = 0 ] || tail -n 15 "$out" | sed 's/^/  | /'
    # Rows: [0] size count type redop root time algbw busbw #wrong ...
    sed 's/^\[0\] *//' "$out" | awk -v r="$round" -v c="$label" -v st="$st" '
        $1 ~ /^[0-9]+$/ && NF >= 9 && st == 0 && $6 + 0 > 0 { printf "DATA %s %s %s %.3f\n", r, c, $1, $1 / $6 }'
}

in_vm() {
    local round size
    use_transport
    for ((round = 1; round <= rounds; round++)); do
        echo "== round $round of $rounds"
        for size in $sizes; do vm_write_bw "$round" "$(bytes "$size")"; done
        vm_tutti "$round" allreduce
        vm_tutti "$round" alltoall
        [ "$uncached_too" = 1 ] || continue
        TUTTI_RDMA_REG_CACHE=0 vm_tutti "$round" allreduce -uncached
        TUTTI_RDMA_REG_CACHE=0 vm_tutti "$round" alltoall -uncached
    done
}

# -------------------------------------------------------------------- on host

# The medians over the rounds, as a table.
table() {
    awk -v transport="$transport" -v vms="$vms" -v rounds="$rounds" '
    function median(key,   n, i, j, t, v) {
        n = split(vals[key], v, " ")
        for (i = 2; i <= n; i++) for (j = i; j > 1 && v[j - 1] + 0 > v[j] + 0; j--) {
            t = v[j]; v[j] = v[j - 1]; v[j - 1] = t }
        if (n == 0) return -1
        return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
    }
    function fmt(x) { return x < 0 ? sprintf("%9s", "-") : sprintf("%9.1f", x) }
    function ratio(a, b) { return a < 0 || b <= 0 ? sprintf("%6s", "-") : sprintf("%6.2f", a / b) }
    $1 == "DATA" && $5 != "-" {
        key = $3 " " $4; vals[key] = vals[key] " " $5; sizes[$4] = 1
    }
    END {
        printf "# tutti (%s) vs ib_write_bw, %s VM%s, medians of %d rounds; MB/s = 10^6 B/s\n",
            transport, vms, (vms > 1 ? "s" : ""), rounds
        printf "# ratio = tutti busbw / ib_write_bw (busbw: allreduce x1, alltoall x1/2 on 2 ranks)\n"
        printf "#%11s %12s | %9s %9s %6s | %9s %9s %6s\n", "", "", "allreduce", "", "", "alltoall", "", ""
        printf "#%11s %12s | %9s %9s %6s | %9s %9s %6s\n", "size (B)", "ib_write_bw",
            "algbw", "busbw", "ratio", "algbw", "busbw", "ratio"
        n = 0
        for (s in sizes) list[++n] = s + 0
        for (i = 2; i <= n; i++) for (j = i; j > 1 && list[j - 1] > list[j]; j--) {
            t = list[j]; list[j] = list[j - 1]; list[j - 1] = t }
        for (i = 1; i <= n; i++) {
            s = list[i]
            w = median("ib_write_bw " s)
            ar = median("allreduce " s); aa = median("alltoall " s)
            arb = ar < 0 ? -1 : ar; aab = aa < 0 ? -1 : aa / 2
            printf " %11d %12s | %s %s %s | %s %s %s\n", s, fmt(w), fmt(ar), fmt(arb), ratio(arb, w),
                fmt(aa), fmt(aab), ratio(aab, w)
        }
        if (!(("allreduce-uncached " list[1]) in vals)) exit
        printf "# registration cache on / off (TUTTI_RDMA_REG_CACHE=0): algbw MB/s, medians\n"
        printf "#%11s | %9s %9s %6s | %9s %9s %6s\n", "size (B)", "allreduce", "uncached", "gain",
            "alltoall", "uncached", "gain"
        for (i = 1; i <= n; i++) {
            s = list[i]
            ar = median("allreduce " s); aru = median("allreduce-uncached " s)
            aa = median("alltoall " s); aau = median("alltoall-uncached " s)
            printf " %11d | %s %s %s | %s %s %s\n", s, fmt(ar), fmt(aru), ratio(ar, aru),
                fmt(aa), fmt(aau), ratio(aa, aau)
        }
    }'
}

main() {
    local builddir_arg='' cmd v fwd=() st t0=$SECONDS listed
    if [ "${1:-}" = --in-vm ]; then
        builddir=$2 vms=$3 rounds=$4 sizes=$5 iters=$6 mib=$7 secret=$8 uncached_too=$9
        in_vm
        exit
    fi
    while [ $# -gt 0 ]; do
        case $1 in
        --vms) vms=${2:?}; shift 2 ;;
        --rounds) rounds=${2:?}; shift 2 ;;
        --sizes) sizes=${2:?}; shift 2 ;;
        --iters) iters=${2:?}; shift 2 ;;
        --mib) mib=${2:?}; shift 2 ;;
        --timeout) timeout_s=${2:?}; shift 2 ;;
        --log) log=${2:?}; shift 2 ;;
        --uncached-too) uncached_too=1; shift ;;
        -h | --help) usage; exit 0 ;;
        -*) usage >&2; exit 2 ;;
        *) builddir_arg=$1; shift ;;
        esac
    done
    [ "$vms" = 1 ] || [ "$vms" = 2 ] || { usage >&2; exit 2; }
    builddir=$(cd "${builddir_arg:-.}" && pwd) || exit 2
    [ -x "$builddir/perf/tutti-perf" ] || { echo "rdma-vm-bench: no perf/tutti-perf in $builddir" >&2; exit 2; }
    # (The list first: with pipefail, grep -q ending the pipe early would fail it.)
    listed=$("$builddir/tools/tutti-info" 2>/dev/null |
        awk '/^transports:/ { t = 1; next } t && /^  [^ ]/ { print $1; next } t { exit }')
    if ! grep -qx "$transport" <<< "$listed"; then
        echo "rdma-vm-bench: this build has no $transport transport (TT_RDMA_TRANSPORT)" >&2
        exit 2
    fi
    for v in $(compgen -e); do
        case $v in TUTTI_* | UCX_*) fwd+=("$v=${!v}") ;; esac
    done
    secret=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
    cmd=$(printf '%q ' env "${fwd[@]}" TT_RDMA_TRANSPORT="$transport" bash "$self" --in-vm \
        "$builddir" "$vms" "$rounds" "$sizes" "$iters" "$mib" "$secret" "$uncached_too")
    if [ -n "$log" ]; then
        out=$log
    else
        out=$(mktemp "${TMPDIR:-/tmp}/rdma-vm-bench.XXXXXX")
        trap 'rm -f "$out"' EXIT
    fi
    if [ "$vms" = 2 ]; then
        "$vm" run --timeout "$timeout_s" --vm1 "$cmd" -- bash -c "$cmd" 2>&1 | tee "$out" | grep -v '^\(\[vm1\] \)\{0,1\}DATA '
    else
        "$vm" run --timeout "$timeout_s" -- bash -c "$cmd" 2>&1 | tee "$out" | grep -v '^DATA '
    fi
    st=${PIPESTATUS[0]}
    grep '^DATA ' "$out" | table
    echo "# $((SECONDS - t0)) s in all; test bed exit $st"
    [ "$st" = 0 ]
}

main "$@"
