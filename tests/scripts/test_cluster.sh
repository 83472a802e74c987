#!/usr/bin/env bash
# The namespace test cluster (scripts/cluster.sh) and tutti-run --hosts: hosts
# made and removed cleanly (also twice, also over leftovers), addresses, MTU,
# isolation, reachability over each rail, cutting a link, ranks started in
# their hosts' namespaces with the rendezvous on host 0. Needs root; skipped
# (77) where network namespaces cannot be made.
set -uo pipefail
build=${TOP_BUILDDIR:-${1:?usage: test_cluster.sh BUILD_DIR}}
top=${TOP_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
cluster="$top/scripts/cluster.sh"
run="$build/tools/tutti-run"
prog="$build/tests/programs/env_rank"
# Our own names, so runs at the same time (or a cluster someone is using) do not collide.
export TT_CLUSTER_PREFIX="tt$$-"
p=$TT_CLUSTER_PREFIX
h0=${p}h0
h1=${p}h1
failures=0

ok() { echo "ok: $1"; }
fail() {
    echo "FAIL: $1"
    failures=$((failures + 1))
}
check() { # DESCRIPTION EXPECTED_STATUS ACTUAL_STATUS
    if [ "$2" != "$3" ]; then fail "$1: exit status $3, expected $2"; else ok "$1"; fi
}
verify() { # DESCRIPTION COMMAND...: the command must succeed
    local what=$1
    shift
    if "$@"; then ok "$what"; else fail "$what"; fi
}
refute() { # DESCRIPTION COMMAND...: the command must fail
    local what=$1
    shift
    if "$@"; then fail "$what"; else ok "$what"; fi
}
expect_output() { # DESCRIPTION FILE PATTERN
    if grep -q -E -- "$3" "$2"; then
        ok "$1"
    else
        fail "$1: no line matching '$3' in:"
        sed 's/^/    /' "$2"
    fi
}
expect_no_output() { # DESCRIPTION FILE PATTERN
    if grep -q -E -- "$3" "$2"; then
        fail "$1: unexpected lines:"
        grep -E -- "$3" "$2" | sed 's/^/    /'
    else
        ok "$1"
    fi
}

# Whether namespace $1 reaches address $2: ping if installed, else a TCP
# connection to a closed port, which only a reachable host refuses.
reach() { # NAMESPACE ADDRESS
    if command -v ping >/dev/null 2>&1; then
        ip netns exec "$1" ping -c1 -W1 "$2" >/dev/null 2>&1
    else
        [[ $(ip netns exec "$1" timeout 2 bash -c "echo >/dev/tcp/$2/9" 2>&1) == *refused* ]]
    fi
}
# A restored link may take a moment to pass traffic again.
reach_soon() { # NAMESPACE ADDRESS
    for _ in 1 2 3 4 5; do
        reach "$1" "$2" && return 0
        sleep 0.5
    done
    return 1
}
# Everything of our prefix in the root namespace (namespaces, bridges, veth ends).
leftovers() {
    ip netns list | grep -E "^${p}" || true
    ip -o link show | grep -E "^[0-9]+: ${p}" || true
}

[ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root (network namespaces)"; exit 77; }
command -v ip >/dev/null 2>&1 || { echo "SKIP: needs ip (iproute2)"; exit 77; }
probe=${p}probe
if ! ip netns add "$probe" 2>/dev/null; then
    echo "SKIP: cannot create network namespaces here"
    exit 77
fi
if ! ip -n "$probe" link add tb type bridge 2>/dev/null ||
    ! ip -n "$probe" link add tv type veth peer name tw 2>/dev/null; then
    ip netns delete "$probe"
    echo "SKIP: no bridge or veth support here"
    exit 77
fi
ip netns delete "$probe"

forwarding=$(cat /proc/sys/net/ipv4/ip_forward)
out=$(mktemp)
cleanup() {
    "$cluster" down >/dev/null 2>&1
    rm -f "$out"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# ------------------------------------------------------------- up, twice
"$cluster" up 2 >"$out" 2>&1
check "up 2 hosts" 0 $?
expect_output "up says which MTU" "$out" "MTU 9000"
"$cluster" hosts >"$out" 2>&1
verify "hosts lists both" test "$(paste -sd ' ' "$out")" = "$h0 $h1"

"$cluster" up 2 >"$out" 2>&1
check "up again over a running cluster" 0 $?
ip netns delete "$h1"
"$cluster" up 2 >"$out" 2>&1
check "up over the leftovers of a half-removed cluster" 0 $?
expect_output "... after removing them" "$out" "removing what a previous run left"

# ------------------------------------------------------------- shape and isolation
for h in 0 1; do
    ip -n "${p}h$h" -4 -o addr show dev rail0 >"$out" 2>&1
    expect_output "host $h has 198.18.0.$((h + 1))/24 on rail0" "$out" " 198\.18\.0\.$((h + 1))/24 "
    ip -n "${p}h$h" -o link show dev rail0 >"$out" 2>&1
    expect_output "host $h's rail0 has MTU 9000" "$out" " mtu 9000 "
    ip -n "${p}h$h" -o link show dev lo >"$out" 2>&1
    expect_output "host $h's lo is up" "$out" "<LOOPBACK,UP"
    ip -n "${p}h$h" route show >"$out" 2>&1
    expect_no_output "host $h has no default route" "$out" "^default"
done
ip -o addr show dev "${p}rail0" >"$out" 2>&1
expect_no_output "the bridge has no address in the root namespace" "$out" "inet"
verify "IP forwarding of the root namespace unchanged" test "$(cat /proc/sys/net/ipv4/ip_forward)" = "$forwarding"

verify "host 0 reaches host 1 (198.18.0.2) over rail0" reach "$h0" 198.18.0.2
verify "host 1 reaches host 0 (198.18.0.1) over rail0" reach "$h1" 198.18.0.1
refute "no one else answers on rail0 (198.18.0.9)" reach "$h0" 198.18.0.9

"$cluster" status >"$out" 2>&1
check "status" 0 $?
expect_output "status shows host 1's rail0" "$out" "$h1 +rail0 +198\.18\.0\.2/24 +UP +9000"

# ------------------------------------------------------------- cutting a link
"$cluster" link 1 0 down >/dev/null 2>&1
check "cut host 1's rail0" 0 $?
refute "a cut link cuts host 1 off" reach "$h0" 198.18.0.2
"$cluster" link 1 0 up >/dev/null 2>&1
check "restore host 1's rail0" 0 $?
verify "host 1 is reachable again" reach_soon "$h0" 198.18.0.2
"$cluster" link 7 0 down >/dev/null 2>&1
check "cutting a host that does not exist fails" 1 $?

# ------------------------------------------------------------- tutti-run --hosts
# Each rank says where it runs; $PPID is tutti-run's pid when `ip netns exec` exec'ed the shell.
"$run" --hosts "$h0,$h1" -n 2 --timeout 20 /bin/sh -c \
    'echo "rank $RANK/$WORLD_SIZE local $LOCAL_RANK/$LOCAL_WORLD_SIZE ns $(ip netns identify $$) parent $PPID addr $TUTTI_ADDR master $MASTER_ADDR:$MASTER_PORT"' \
    >"$out" 2>&1 &
launcher=$!
wait $launcher
check "tutti-run --hosts runs 2 ranks on each of 2 hosts" 0 $?
port=$(sed -n 's/.* master 198\.18\.0\.1:\([0-9]*\)$/\1/p' "$out" | head -1)
for r in 0 1 2 3; do
    expect_output "rank $r runs in ${p}h$((r / 2)) as local rank $((r % 2)), watched directly" "$out" \
        "^\[$r\] rank $r/4 local $((r % 2))/2 ns ${p}h$((r / 2)) parent $launcher "
    expect_output "rank $r's rendezvous is host 0's rail0" "$out" \
        "^\[$r\] .* addr 198\.18\.0\.1:${port:-none} master 198\.18\.0\.1:${port:-none}$"
done

# A real rank program across the namespaces. With a transport between hosts (UCX)
# it must run its allreduce. Without one, init fails after the rendezvous saying
# no transport reaches the other host: that still proves the ranks met at host
# 0's address, and that ranks in different namespaces count as different hosts.
TUTTI_BOOTSTRAP_TIMEOUT=10s "$run" --hosts "$h0,$h1" -n 1 --timeout 30 "$prog" >"$out" 2>&1
status=$?
if grep -q '^#define HAVE_UCX 1' "$build/config.h" 2>/dev/null; then
    check "an allreduce across 2 hosts (over UCX)" 0 "$status"
    expect_output "... gets the sum" "$out" "^\[1\] rank 1 of 2: sum 3$"
else
    expect_output "a job across 2 hosts meets at the rendezvous (no UCX transport: exit $status)" "$out" \
        "transport ucx, needed .*(is not built in|cannot run here)"
fi

"$run" --hosts "$h1,$h0" -n 1 /bin/sh -c '[ "$RANK" = 1 ] && exit 7; exec sleep 30' >"$out" 2>&1
check "a failing rank's code is returned with --hosts" 7 $?
expect_output "... and it is named" "$out" "rank 1 exited with status 7"
"$run" --hosts "$h0,$h1" -n 1 --timeout 1 sleep 30 >"$out" 2>&1
check "--timeout with --hosts" 124 $?
"$run" --hosts "$h0,$h1" -n 1 /nonexistent/program >"$out" 2>&1
check "a missing program gives 127 with --hosts" 127 $?
"$run" --hosts "$h0,${p}h9" -n 1 true >"$out" 2>&1
check "an unknown host fails before anything starts" 1 $?
expect_output "... naming it" "$out" "host ${p}h9: no such network namespace"

# ------------------------------------------------------------- two rails, another MTU
"$cluster" up 2 --rails 2 --mtu 1500 >"$out" 2>&1
check "up 2 hosts x 2 rails at MTU 1500 over the running cluster" 0 $?
expect_output "up says which MTU" "$out" "MTU 1500"
ip -n "$h1" -4 -o addr show dev rail1 >"$out" 2>&1
expect_output "host 1 has 198.18.1.2/24 on rail1" "$out" " 198\.18\.1\.2/24 "
ip -n "$h1" -o link show dev rail1 >"$out" 2>&1
expect_output "host 1's rail1 has MTU 1500" "$out" " mtu 1500 "
verify "host 0 reaches host 1 (198.18.1.2) over rail1" reach "$h0" 198.18.1.2
"$cluster" link 1 0 down >/dev/null 2>&1
verify "rail1 works with rail0 cut" reach "$h0" 198.18.1.2

# ------------------------------------------------------------- down, twice
"$cluster" down >"$out" 2>&1
check "down" 0 $?
leftovers >"$out"
verify "down leaves no namespace, bridge or veth" test ! -s "$out"
[ ! -s "$out" ] || sed 's/^/    left: /' "$out"
"$cluster" down >"$out" 2>&1
check "down again" 0 $?
"$cluster" status >"$out" 2>&1
check "status without a cluster fails" 1 $?

[ "$failures" -eq 0 ]
