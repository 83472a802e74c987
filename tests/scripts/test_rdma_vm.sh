#!/usr/bin/env bash
# The Soft-RoCE test bed (scripts/rdma-vm.sh) gives a real verbs stack:
#  - one VM: ibv_devices lists rxe0; ibv_rc_pingpong and ib_write_bw between
#    two processes on that device complete;
#  - two VMs: ibv_rc_pingpong and ib_write_bw between them complete (the
#    bandwidths are printed, for the record);
#  - a fault: all packets lost (netem) during an RC transfer between the VMs
#    make the sender's queue pair complete with "retry exceeded" instead of
#    hanging, within a bound; the time is printed (rdma_fault_probe.c sets
#    the ack timeout and retry count, which perftest cannot both set);
#  - run's exit status is the command's, and --timeout kills QEMU (124).
# Needs root (QEMU, apt-get for what is missing); skipped (77) otherwise or
# when QEMU cannot be installed. Takes about 1.5 minutes on 2 cores.
#
#   tests/scripts/test_rdma_vm.sh
set -euo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
vm=$top/scripts/rdma-vm.sh
passed=0
failed=0

skip() {
    echo "test_rdma_vm: $*: skipped"
    exit 77
}

check() {
    local what=$1
    shift
    if "$@"; then
        echo "ok - $what"
        passed=$((passed + 1))
    else
        echo "not ok - $what"
        failed=$((failed + 1))
    fi
}

prepare_bed() {
    [ "$(id -u)" -eq 0 ] || skip "not root"
    if ! "$vm" prepare; then
        command -v qemu-system-x86_64 >/dev/null || skip "QEMU cannot be installed"
        echo "test_rdma_vm: scripts/rdma-vm.sh prepare failed"
        exit 1
    fi
}

# Scripts the VMs run, in a folder the VMs see (the host's / is shared).
write_vm_scripts() {
    # Client side of a server/client tool: retries while the server (the
    # other VM, booting at its own pace) is not listening yet.
    cat > "$work/client.sh" <<'EOF'
for try in $(seq 1 40); do
    "$@" && exit 0
    st=$?
    sleep 0.5
done
exit $st
EOF
    # One VM: server in the background, client on the same rxe device.
    cat > "$work/one_vm.sh" <<'EOF'
set -u
g=$RDMA_VM_GID_INDEX
echo "== ibv_devices"
ibv_devices
echo "== ibv_rc_pingpong, gid index $g"
ibv_rc_pingpong -d rxe0 -g "$g" -n 500 > /tmp/pp_server.log 2>&1 &
sh "$WORK/client.sh" ibv_rc_pingpong -d rxe0 -g "$g" -n 500 127.0.0.1 || echo "client failed: $?"
wait $! || echo "server failed: $?"
sed 's/^/server: /' /tmp/pp_server.log
echo "== ib_write_bw"
ib_write_bw -d rxe0 -x "$g" -F -D 3 > /tmp/bw_server.log 2>&1 &
sh "$WORK/client.sh" ib_write_bw -d rxe0 -x "$g" -F -D 3 127.0.0.1 || echo "client failed: $?"
wait $! || echo "server failed: $?"
EOF
    cat > "$work/two_vm_server.sh" <<'EOF'
g=$RDMA_VM_GID_INDEX
ibv_rc_pingpong -d rxe0 -g "$g" -n 500 && echo "pingpong server done"
ib_write_bw -d rxe0 -x "$g" -F -D 3 > /dev/null && echo "write_bw server done"
EOF
    cat > "$work/two_vm_client.sh" <<'EOF'
g=$RDMA_VM_GID_INDEX
echo "== ibv_rc_pingpong to $RDMA_VM_PEER"
sh "$WORK/client.sh" ibv_rc_pingpong -d rxe0 -g "$g" -n 500 "$RDMA_VM_PEER" || echo "client failed: $?"
echo "== ib_write_bw to $RDMA_VM_PEER"
sh "$WORK/client.sh" ib_write_bw -d rxe0 -x "$g" -F -D 3 "$RDMA_VM_PEER" || echo "client failed: $?"
EOF
    # Fault: once writes flow, VM 0 drops everything it sends (netem loss
    # 100%, a silent loss: no port event) and times the completion error.
    cat > "$work/fault_client.sh" <<'EOF'
"$WORK/rdma_fault_probe" "$RDMA_VM_DIR" client rxe0 "$RDMA_VM_GID_INDEX" "$TIMEOUT" "$RETRY" > /tmp/probe.log 2>&1 &
pid=$!
until grep -q '^running' /tmp/probe.log; do
    kill -0 $pid 2>/dev/null || { cat /tmp/probe.log; exit 1; }
    sleep 0.2
done
sleep 1
cut_at=$(date +%s.%N)
tc qdisc add dev "$RDMA_VM_NETDEV" root netem loss 100% || exit 1
timeout 30 tail --pid=$pid -f /dev/null || echo "no completion within 30 s"
cat /tmp/probe.log
awk -v cut="$cut_at" '/^error/ { printf "error %.2f s after the loss began\n", $2 - cut }' /tmp/probe.log
EOF
}

one_vm() {
    "$vm" run --timeout 240 -- env WORK="$work" sh "$work/one_vm.sh" > "$work/one.log" 2>&1 || echo "exit $?" >> "$work/one.log"
    cat "$work/one.log"
    check "one VM: ibv_devices lists rxe0" grep -q '^ *rxe0 ' "$work/one.log"
    check "one VM: ibv_rc_pingpong client completes" grep -q '^500 iters in' "$work/one.log"
    check "one VM: ibv_rc_pingpong server completes" grep -q '^server: 500 iters in' "$work/one.log"
    check "one VM: ib_write_bw reports a bandwidth" has_bandwidth "$work/one.log"
}

two_vms() {
    "$vm" run --timeout 240 --vm1 "sh $work/two_vm_server.sh" -- env WORK="$work" sh "$work/two_vm_client.sh" > "$work/two.log" 2>&1 ||
        echo "exit $?" >> "$work/two.log"
    cat "$work/two.log"
    check "two VMs: ibv_rc_pingpong client completes" grep -q '^500 iters in' "$work/two.log"
    check "two VMs: ibv_rc_pingpong server completes" grep -q '^\[vm1\] 500 iters in' "$work/two.log"
    check "two VMs: ib_write_bw reports a bandwidth" has_bandwidth "$work/two.log"
    check "two VMs: run exits 0" exited_zero "$work/two.log"
}

fault() {
    local server="$work/rdma_fault_probe \$RDMA_VM_DIR server rxe0 \$RDMA_VM_GID_INDEX 14 3"
    if ! cc -O2 -o "$work/rdma_fault_probe" "$top/tests/scripts/rdma_fault_probe.c" -libverbs; then
        check "fault: rdma_fault_probe builds" false
        return
    fi
    # Ack timeout 14 (4.096 us * 2^14 = 67 ms) and 3 retries: about 0.27 s.
    "$vm" run --timeout 240 --vm1-server "$server" -- env WORK="$work" TIMEOUT=14 RETRY=3 \
        sh "$work/fault_client.sh" > "$work/fault.log" 2>&1 || echo "exit $?" >> "$work/fault.log"
    cat "$work/fault.log"
    check "fault: the writer's QP completes with retry exceeded (status 12)" grep -q '^error .* status 12 ' "$work/fault.log"
    check "fault: within 5 s of the loss" error_within 5 "$work/fault.log"
}

# The run's exit status is the command's; a timeout kills QEMU and exits 124.
exit_status() {
    local st=0
    "$vm" run -- sh -c 'exit 7' || st=$?
    check "run exits with the command's status (7)" test "$st" = 7
    st=0
    TMPDIR=$work "$vm" run --timeout 2 -- sleep 600 || st=$?
    check "run --timeout 2 exits 124" test "$st" = 124
    check "no QEMU left after the timeout" no_qemu_under "$work"
}

# No QEMU whose run folder is under $1 (its kernel command line names it).
no_qemu_under() { ! pgrep -f "rdmavm.run=$1/" >/dev/null; }

exited_zero() { ! grep -q '^exit ' "$1"; }

# The probe's "error S s after the loss began" line, with S below $1.
error_within() {
    awk -v limit="$1" '/^error .* after the loss began/ { found = 1; ok = ($2 < limit) }
        END { exit !(found && ok) }' "$2"
}

# ib_write_bw's result row: bytes, iterations, peak, average (MB/s) > 0.
has_bandwidth() {
    awk '$1 == 65536 && NF >= 5 && $4 + 0 > 0 { found = 1; print "bandwidth " $4 " MB/s" } END { exit !found }' "$1"
}

main() {
    prepare_bed
    work=$(mktemp -d "${TMPDIR:-/tmp}/test_rdma_vm.XXXXXX")
    trap 'rm -rf "$work"' EXIT
    write_vm_scripts
    exit_status
    one_vm
    two_vms
    fault
    echo "test_rdma_vm: $passed passed, $failed failed"
    [ "$failed" -eq 0 ]
}

main "$@"
