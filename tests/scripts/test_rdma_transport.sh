#!/usr/bin/env bash
# A transport over real verbs, in the Soft-RoCE test bed (scripts/rdma-vm.sh):
# every peer is reached through TUTTI_TRANSPORTS=$TT_RDMA_TRANSPORT (default
# rdma) on the VMs' rxe0.
#  - one VM: the RDMA transport's own tests (check_transports, case rdma;
#    check_regcache and check_memwatch, the registration cache),
#    check_collectives (every collective, datatype and op against the
#    reference) in the configurations TT_RDMA_CK_CONFIGS; then tutti-perf,
#    results checked, for every collective on 2 and 4 ranks;
#  - two VMs: tutti-perf allreduce and alltoall, checked, with 1 and with 2
#    ranks per VM, the ranks started by environment (TUTTI_RANK, TUTTI_NRANKS,
#    TUTTI_ADDR, TUTTI_SECRET) in each VM; then (rdma) the same on two rails
#    at once, rxe0 and rxe1 on two wires, each rail carrying a share;
#  - a fault: an allreduce loop between the two VMs (1 rank each), VM 1's
#    link taken down (ip link set ... down under rxe0) once it runs: every
#    rank must fail, logged as "tutti[rN] ERROR" naming the other rank (or
#    the device), within TT_RDMA_FAULT_DEADLINE seconds of the cut, and exit
#    with a failure status (no hang; on the side of the cut, rxe's queue-pair
#    destroy holds the exit for about 50 s). The time from the cut to each
#    rank's error and to its exit is printed (VM 1 marks the cut in the shared run folder; VM 0 sees the mark
#    within about 0.1 s, so both times are on one VM's clock).
# One line per check, "ok - ..." or "FAIL - ...". Exit 0 when all passed, 1
# when one failed, 77 (skipped) when not root, when QEMU cannot be installed
# or when the build has no such transport (config.h, tutti-info).
# On 2 idle cores: about 1.5 minutes without check_collectives, which adds
# about 1.5 (latency) and 4.5 (bandwidth) minutes on 2-4 ranks; the fault
# stage also says which part noticed (the transport, or the bootstrap's TCP
# liveness check). A host busy with other VMs takes 3-4 times as long.
#
# TT_RDMA_TRANSPORT=ucx runs the same with UCX over rxe0 (rc_verbs for data,
# TCP on the VM's interface for UCX's wire-up and keep-alive: rc_verbs alone
# has no wire-up transport, and ud_verbs' wire-up stalls on one rxe device).
#
# Settings (environment): TT_RDMA_TRANSPORT (rdma), TT_RDMA_CK_CONFIGS
# ("bandwidth": every collective, datatype and op, large messages included;
# "latency bandwidth" takes twice as long; empty: no check_collectives),
# TT_RDMA_CK_RANKS (2,3,4: passed to check_collectives as
# TT_TEST_RANK_COUNTS), TT_RDMA_FAULT_DEADLINE (20 s).
# TUTTI_* and UCX_* variables set here are passed into the VMs (only PATH,
# HOME and the current folder pass otherwise), e.g. TUTTI_RDMA_TIMEOUT,
# TUTTI_RDMA_RETRY_COUNT, TUTTI_LOG.
#
#   tests/scripts/test_rdma_transport.sh [BUILDDIR]
set -uo pipefail

self=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")
top=${TOP_SRCDIR:-$(cd "$(dirname "$self")/../.." && pwd)}
vm=$top/scripts/rdma-vm.sh
transport=${TT_RDMA_TRANSPORT:-rdma}
ck_configs=${TT_RDMA_CK_CONFIGS-bandwidth}
ck_ranks=${TT_RDMA_CK_RANKS:-2,3,4}
fault_deadline=${TT_RDMA_FAULT_DEADLINE:-20}
collectives=(allreduce reduce_scatter allgather broadcast reduce barrier alltoall alltoallv)
two_vm_collectives=(allreduce alltoall)
port_base=29500
name=test_rdma_transport

# ---------------------------------------------------------------- in the VMs

# shellcheck source=tests/scripts/rdma_vm_transport.sh
. "$(dirname "$self")/rdma_vm_transport.sh"

# result NAME STATUS SECONDS [DETAIL]: what the host reports as a check.
result() { printf 'RESULT %s %s %.1f %s\n' "$1" "$2" "$3" "${4:-}"; }
since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { print b - a }'; }
show_tail() { tail -n "${2:-30}" "$1" | sed 's/^/  | /'; }

# Prefixes every line with the time it was read (this VM's clock).
stamp() {
    local line
    while IFS= read -r line; do printf '%s %s\n' "$EPOCHREALTIME" "$line"; done
}

perf_checked() { grep -q '# Out of bounds values : 0 OK$' "$1"; }

# Emulated CPUs run late: a TCP keep-alive of 5 s (the bootstrap's liveness,
# TUTTI_FAILURE_TIMEOUT) has dropped healthy ranks when two ranks share a
# vCPU, and so has RDMA's ack timeout of 67 ms x 4 tries (retry count
# exceeded between two VMs with two ranks each, whose rxe runs on the ranks'
# one vCPU). The stages that test results allow more (not the fault stage).
relax_liveness() {
    export TUTTI_FAILURE_TIMEOUT=${TUTTI_FAILURE_TIMEOUT:-30s}
    export TUTTI_RDMA_TIMEOUT=${TUTTI_RDMA_TIMEOUT:-18}
}

vm_one() {
    local config n coll t0 st log=/tmp/run.log
    use_transport
    relax_liveness
    if [ "$transport" = rdma ]; then
        echo "== check_transports, the transport's own tests"
        t0=$EPOCHREALTIME
        CK_RUN_CASE=rdma timeout 900 "$builddir/tests/unit/check_transports" > "$log" 2>&1
        st=$?
        grep -q 'rdma skipped' "$log" && st=1 # it must run here
        tail -n 1 "$log"
        [ "$st" -eq 0 ] || show_tail "$log" 40
        result check_transports "$st" "$(since "$t0")"
        echo "== check_regcache and check_memwatch, the registration cache"
        t0=$EPOCHREALTIME
        { timeout 300 "$builddir/tests/unit/check_regcache" &&
            timeout 300 "$builddir/tests/unit/check_memwatch"; } > "$log" 2>&1
        st=$?
        grep -q 'skipped\|refused' "$log" && st=1 # they must run here
        grep -E '^[0-9]+%: Checks' "$log"
        [ "$st" -eq 0 ] || show_tail "$log" 40
        result check_regcache "$st" "$(since "$t0")"
    fi
    for config in $ck_configs; do
        echo "== check_collectives, configuration $config, TT_TEST_RANK_COUNTS=$ck_ranks"
        t0=$EPOCHREALTIME
        CK_RUN_CASE=$config TT_TEST_RANK_COUNTS=$ck_ranks \
            timeout 1500 "$builddir/tests/unit/check_collectives" > "$log" 2>&1
        st=$?
        grep -E '^collectives: N=|^[0-9]+%: Checks' "$log"
        [ "$st" -eq 0 ] || show_tail "$log" 40
        result "check_collectives:$config" "$st" "$(since "$t0")"
    done
    for n in 2 4; do
        echo "== tutti-perf, every collective checked, $n ranks"
        for coll in "${collectives[@]}"; do
            t0=$EPOCHREALTIME
            TUTTI_OP_TIMEOUT=60s "$builddir/tools/tutti-run" -n "$n" --timeout 240 \
                "$builddir/perf/tutti-perf" "$coll" -b 8 -e 1M -f 32 -n 2 -w 1 -c 1 \
                -d int32,bf16 > "$log" 2>&1
            st=$?
            [ "$st" -ne 0 ] || perf_checked "$log" || st=1
            [ "$st" -eq 0 ] || show_tail "$log"
            result "perf:$coll:${n}ranks" "$st" "$(since "$t0")"
        done
    done
}

# Starts this VM's ranks of a job of $1 ranks, $2 per VM (VM v holds ranks
# v*$2 ...), rendezvous on VM 0's port $3, running the rest of the command
# line; logs in /tmp/rank.R (time-stamped with $stamp=1); waits at most
# $wait_s seconds and sets st to the first failing rank's status.
run_ranks() {
    local nranks=$1 per_vm=$2 port=$3 r first pids=() rs
    shift 3
    first=$((RDMA_VM_ID * per_vm))
    for ((r = first; r < first + per_vm; r++)); do
        if [ "${stamp:-0}" = 1 ]; then
            (TUTTI_RANK=$r TUTTI_NRANKS=$nranks TUTTI_ADDR=198.18.0.1:$port TUTTI_SECRET=$secret \
                timeout -k 2 "$wait_s" "$@" 2>&1; echo "exit $?") | stamp > "/tmp/rank.$r" &
        else
            TUTTI_RANK=$r TUTTI_NRANKS=$nranks TUTTI_ADDR=198.18.0.1:$port TUTTI_SECRET=$secret \
                timeout -k 2 "$wait_s" "$@" > "/tmp/rank.$r" 2>&1 &
        fi
        pids+=($!)
    done
    st=0
    for r in "${!pids[@]}"; do
        wait "${pids[r]}"
        rs=$?
        [ "$st" -ne 0 ] || st=$rs
    done
    ranks=$(seq "$first" $((first + per_vm - 1)))
}

vm_two() {
    local per_vm coll t0 port=$port_base r wait_s=180 max
    use_transport
    relax_liveness
    export TUTTI_OP_TIMEOUT=60s TUTTI_BOOTSTRAP_TIMEOUT=90s
    for per_vm in 1 2; do
        # Two ranks share a VM's one vCPU with rxe's own work: up to 4 MiB
        # took 78-104 s on a loaded host, so smaller sizes then.
        max=4M
        [ "$per_vm" = 1 ] || max=1M
        for coll in "${two_vm_collectives[@]}"; do
            echo "== tutti-perf $coll, 2 VMs x $per_vm ranks (VM $RDMA_VM_ID)"
            t0=$EPOCHREALTIME
            run_ranks $((2 * per_vm)) "$per_vm" "$port" "$builddir/perf/tutti-perf" "$coll" \
                -b 8 -e "$max" -f 8 -n 2 -w 1 -c 1 -d int32,bf16
            # Rank 0 reports the wrong elements of every rank.
            [ "$st" -ne 0 ] || [ "$RDMA_VM_ID" != 0 ] || perf_checked /tmp/rank.0 || st=1
            for r in $ranks; do
                if [ "$r" = 0 ] || [ "$st" -ne 0 ]; then sed "s/^/  [$r] /" "/tmp/rank.$r"; fi
            done
            result "two-VMs:$coll:2x${per_vm}ranks:vm$RDMA_VM_ID" "$st" "$(since "$t0")"
            port=$((port + 1))
        done
    done
    [ "$transport" != rdma ] || vm_two_rails
}

# Packets each rail's device has sent so far, space-separated.
sent_packets() {
    local dev
    for dev in $RDMA_VM_DEVS; do
        cat "/sys/class/infiniband/$dev/ports/1/hw_counters/sent_pkts" 2>/dev/null || echo 0
    done | paste -sd' '
}

# Both rails at once (the VMs have two wires): the ranks open rxe0 and rxe1
# (TUTTI_RDMA_DEVICES) and the plans run a channel per rail (TUTTI_RAILS),
# results checked; each device must have sent at least a quarter of the
# packets, so that neither rail is left idle.
vm_two_rails() {
    local coll t0 port=$((port_base + 20)) before after wait_s=180 detail
    for coll in "${two_vm_collectives[@]}"; do
        echo "== tutti-perf $coll, 2 VMs x 1 rank, rails $RDMA_VM_DEVS (VM $RDMA_VM_ID)"
        t0=$EPOCHREALTIME
        before=$(sent_packets)
        TUTTI_RDMA_DEVICES=${RDMA_VM_DEVS// /,} TUTTI_RAILS=${RDMA_VM_NETDEVS// /,} \
            run_ranks 2 1 "$port" "$builddir/perf/tutti-perf" "$coll" \
            -b 8 -e 4M -f 8 -n 2 -w 1 -c 1 -d int32,bf16
        after=$(sent_packets)
        [ "$st" -ne 0 ] || [ "$RDMA_VM_ID" != 0 ] || perf_checked /tmp/rank.0 || st=1
        detail=$(awk -v b="$before" -v a="$after" 'BEGIN {
            n = split(b, x, " "); split(a, y, " "); t = 0
            for (i = 1; i <= n; i++) { d[i] = y[i] - x[i]; t += d[i] }
            for (i = 1; i <= n; i++) printf "rail %d: %d packets%s", i - 1, d[i], i < n ? ", " : ""
            low = n < 2 || t == 0
            for (i = 1; i <= n; i++) if (d[i] * 4 < t) low = 1
            if (low) printf " (a rail left idle)" }')
        [ "$st" -ne 0 ] || [[ $detail != *idle* ]] || st=1
        [ "$st" -eq 0 ] || sed 's/^/  | /' /tmp/rank."$RDMA_VM_ID"
        result "two-rails:$coll:vm$RDMA_VM_ID" "$st" "$(since "$t0")" "$detail"
        port=$((port + 1))
    done
}

# First line at or after time $2 in the stamped log $1 that says tutti failed:
# prints "TIME LINE".
first_error() {
    awk -v t="$2" '$1 >= t && / tutti\[r[0-9]+\] ERROR / { print; exit }' "$1"
}

vm_fault() {
    local mark=$RDMA_VM_DIR/cut r peer cut_at err exit_line st_rank t_err t_exit verdict detail
    # A rank behind the cut took about 50 s to exit after its error until the
    # registration cache came (rxe's ibv_destroy_qp blocked that long in the
    # kernel, seen with strace); it now exits within a second, for reasons not
    # understood. It must fail within the deadline, and exit at all (no hang)
    # within wait_s.
    local wait_s=$((fault_deadline + 120))
    use_transport
    # The deadline is the transport's to meet: the operation deadline stays far off.
    export TUTTI_OP_TIMEOUT=${TUTTI_OP_TIMEOUT:-120s} TUTTI_LOG=${TUTTI_LOG:-info}
    stamp=1 run_ranks 2 1 $((port_base + 10)) "$builddir/perf/tutti-perf" allreduce \
        -b 1M -e 1M -n 1000000 -w 1 -c 0 &
    local job=$!
    r=$RDMA_VM_ID
    peer=$((1 - r))
    if [ "$r" = 1 ]; then
        # Once this rank runs allreduces, wait a moment, then cut.
        local i
        for ((i = 0; i < 600; i++)); do
            grep -q 'INFO  allreduce of 1048576 bytes' /tmp/rank.1 2>/dev/null && break
            kill -0 "$job" 2>/dev/null || break
            sleep 0.1
        done
        sleep 2
        # The mark goes first: VM 0 takes the moment it sees the mark as the
        # cut. Written after the cut, it reached VM 0 later than the cut by
        # the time ip takes to start under emulation, and rank 0's error came
        # before it (seen in CI).
        cut_at=$EPOCHREALTIME
        echo "$cut_at" > "$mark"
        /usr/sbin/ip link set "$RDMA_VM_NETDEV" down
        echo "== VM 1: $RDMA_VM_NETDEV (under $RDMA_VM_DEV) down"
    else
        # Wait for VM 1's mark: the cut time on this VM's clock, within a poll
        # (the cut itself follows the mark).
        local i
        for ((i = 0; i < 1200; i++)); do
            [ -e "$mark" ] && break
            kill -0 "$job" 2>/dev/null || break
            sleep 0.05
        done
        cut_at=$EPOCHREALTIME
        [ -e "$mark" ] || cut_at=
    fi
    wait "$job"
    if [ -z "$cut_at" ]; then
        show_tail "/tmp/rank.$r"
        result "fault:rank$r" 1 0 "the link was never cut (the allreduce did not start?)"
        return
    fi
    err=$(first_error "/tmp/rank.$r" "$cut_at")
    exit_line=$(grep -E '^[0-9.]+ exit [0-9]+$' "/tmp/rank.$r" | tail -n 1)
    st_rank=${exit_line##* }
    t_exit=$(awk -v a="$cut_at" -v b="${exit_line%% *}" 'BEGIN { printf "%.2f", b - a }')
    if [ -n "$err" ]; then
        t_err=$(awk -v a="$cut_at" -v b="${err%% *}" 'BEGIN { printf "%.2f", b - a }')
    else
        t_err=-
    fi
    echo "== fault, rank $r (VM $r): error ${t_err} s and exit ${t_exit} s after the cut, status $st_rank"
    awk -v t="$cut_at" '$1 >= t' "/tmp/rank.$r" | cut -d' ' -f2- | grep -v 'INFO  allreduce of' |
        head -n 20 | sed 's/^/  | /'
    # Who noticed: the transport, or the bootstrap's TCP liveness check
    # (TUTTI_FAILURE_TIMEOUT), which reports the peer's rendezvous connection.
    local via=transport
    case $err in *rendezvous*) via="bootstrap liveness" ;; esac
    verdict=0
    detail="error after $t_err s (via $via), exit after $t_exit s, status $st_rank"
    if [ "$st_rank" = 0 ] || [ "$st_rank" = 124 ] || [ "$st_rank" = 137 ]; then
        verdict=1 detail="$detail: no failure exit"
    elif [ -z "$err" ]; then
        verdict=1 detail="$detail: no 'tutti[r$r] ERROR' line after the cut"
        grep ' tutti\[r[0-9]*\] ERROR ' "/tmp/rank.$r" | head -n 3 | sed 's/^/  | before the cut: /'
    elif ! grep -Eq "rank $peer\b|$RDMA_VM_DEV|$RDMA_VM_NETDEV" <<< "$err"; then
        verdict=1 detail="$detail: the error names neither rank $peer nor $RDMA_VM_DEV/$RDMA_VM_NETDEV"
    elif awk -v t="$t_err" -v d="$fault_deadline" 'BEGIN { exit !(t > d) }'; then
        verdict=1 detail="$detail: the error came later than ${fault_deadline} s"
    fi
    result "fault:rank$r" "$verdict" "$t_exit" "$detail"
}

in_vm() {
    local stage=$1
    builddir=$2
    secret=${TT_RDMA_SECRET:-}
    case $stage in
    one) vm_one ;;
    two) vm_two ;;
    fault) vm_fault ;;
    *) echo "$name: unknown stage $stage" >&2; exit 2 ;;
    esac
}

# ------------------------------------------------------------- on the host

passed=0
failed=0

skip() {
    echo "$name: $*: skipped"
    exit 77
}

ok() {
    echo "ok - $*"
    passed=$((passed + 1))
}

fail() {
    echo "FAIL - $*"
    failed=$((failed + 1))
}

# The transport must be built in: its library found by configure, and
# listed by tutti-info (which lists every transport built, available here
# or not).
check_build() {
    local macro listed
    case $transport in
    rdma) macro=HAVE_IBVERBS ;;
    ucx) macro=HAVE_UCX ;;
    *) macro= ;;
    esac
    [ -f "$builddir/config.h" ] || skip "no config.h in $builddir"
    if [ -n "$macro" ] && ! grep -q "^#define $macro 1" "$builddir/config.h"; then
        skip "configure did not find $transport's library ($macro)"
    fi
    for prog in tools/tutti-info tools/tutti-run perf/tutti-perf tests/unit/check_collectives; do
        [ -x "$builddir/$prog" ] || skip "$prog not built"
    done
    listed=$("$builddir/tools/tutti-info" 2>/dev/null |
        awk '/^transports:/ { t = 1; next } t && /^  [^ ]/ { print $1; next } t { exit }')
    grep -qx "$transport" <<< "$listed" ||
        skip "this build has no $transport transport (tutti-info lists: ${listed//$'\n'/ })"
}

prepare_bed() {
    [ "$(id -u)" -eq 0 ] || skip "not root"
    if ! "$vm" prepare > "$work/prepare.log" 2>&1; then
        command -v qemu-system-x86_64 > /dev/null || skip "QEMU cannot be installed"
        cat "$work/prepare.log"
        echo "$name: scripts/rdma-vm.sh prepare failed"
        exit 1
    fi
}

# The command line that runs stage $1 of this script in a VM.
stage_command() {
    local v fwd=()
    for v in $(compgen -e); do
        case $v in TUTTI_* | UCX_*) fwd+=("$v=${!v}") ;; esac
    done
    printf '%q ' env "${fwd[@]}" TT_RDMA_TRANSPORT="$transport" TT_RDMA_CK_CONFIGS="$ck_configs" \
        TT_RDMA_CK_RANKS="$ck_ranks" TT_RDMA_FAULT_DEADLINE="$fault_deadline" \
        TT_RDMA_SECRET="$secret" bash "$self" --in-vm "$1" "$builddir"
}

# Runs a stage: run_stage NAME TIMEOUT [rdma-vm.sh options]; its output in
# $work/NAME.log (and on stdout); the VM test bed's status in stage_status.
run_stage() {
    local stage=$1 timeout_s=$2 t0=$SECONDS cmd
    shift 2
    cmd=$(stage_command "$stage")
    echo "== stage $stage ($transport)"
    # shellcheck disable=SC2086 # the command line is quoted by stage_command
    "$vm" run --timeout "$timeout_s" "$@" -- bash -c "$cmd" 2>&1 | tee "$work/$stage.log"
    stage_status=${PIPESTATUS[0]}
    echo "== stage $stage: exit $stage_status after $((SECONDS - t0)) s"
}

# Reports the checks the VMs printed for the stage (RESULT NAME STATUS
# SECONDS DETAIL), and a failure for each expected one that is missing.
report() {
    local log=$1 check line st secs detail
    shift
    for check in "$@"; do
        line=$(sed -n "s/^\(\[vm1\] \)\{0,1\}RESULT $check //p" "$log" | tail -n 1)
        if [ -z "$line" ]; then
            fail "$check: did not run (the stage exited $stage_status)"
            continue
        fi
        read -r st secs detail <<< "$line"
        if [ "$st" = 0 ]; then
            ok "$check (${secs} s)${detail:+: $detail}"
        else
            fail "$check: status $st after ${secs} s${detail:+: $detail}"
        fi
    done
}

main() {
    local checks coll n config per_vm
    [ "${1:-}" = --in-vm ] && { in_vm "$2" "$3"; exit; }
    builddir=$(cd "${1:-${TOP_BUILDDIR:-.}}" && pwd) || exit 1
    check_build
    work=$(mktemp -d "${TMPDIR:-/tmp}/$name.XXXXXX")
    trap 'rm -rf "$work"' EXIT
    prepare_bed
    secret=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
    run_stage one 2400
    checks=(check_transports check_regcache)
    for config in $ck_configs; do checks+=("check_collectives:$config"); done
    for n in 2 4; do
        for coll in "${collectives[@]}"; do checks+=("perf:$coll:${n}ranks"); done
    done
    report "$work/one.log" "${checks[@]}"

    run_stage two 600 --rails 2 --vm1 "$(stage_command two)"
    checks=()
    for per_vm in 1 2; do
        for coll in "${two_vm_collectives[@]}"; do
            checks+=("two-VMs:$coll:2x${per_vm}ranks:vm0" "two-VMs:$coll:2x${per_vm}ranks:vm1")
        done
    done
    if [ "$transport" = rdma ]; then
        for coll in "${two_vm_collectives[@]}"; do
            checks+=("two-rails:$coll:vm0" "two-rails:$coll:vm1")
        done
    fi
    report "$work/two.log" "${checks[@]}"

    run_stage fault $((fault_deadline + 300)) --vm1 "$(stage_command fault)"
    report "$work/fault.log" fault:rank0 fault:rank1

    echo "$name ($transport): $passed passed, $failed failed"
    [ "$failed" -eq 0 ]
}

main "$@"
