#!/usr/bin/env bash
# An emulated cluster on this machine: H hosts as network namespaces, joined
# by one Linux bridge per rail (as root).
#
#   scripts/cluster.sh up H [--rails 1|2] [--mtu BYTES]   make hosts 0..H-1 (removes leftovers first)
#   scripts/cluster.sh down                              remove everything up made (safe to repeat)
#   scripts/cluster.sh status                            hosts, addresses, link states, MTU
#   scripts/cluster.sh link HOST RAIL down|up            cut or restore one host's rail
#   scripts/cluster.sh hosts                             the host (namespace) names, one per line
#
# Names, with PREFIX from TT_CLUSTER_PREFIX (default "tt-"):
#   host h         namespace PREFIXh<h>        (tt-h0, tt-h1, ...)
#   rail r         bridge PREFIXrail<r>        in the root namespace, no address
#   host h, rail r interface rail<r> inside the namespace, 198.18.<r>.<h+1>/24;
#                  its veth peer PREFIXh<h>r<r> is a port of the rail's bridge
# Each host has lo and its rails, and only the routes of its rails' subnets: no
# default route, nothing reaches the outside. The root namespace has no address
# (and no IPv6) on the bridges or their ports, so traffic stays between the
# hosts. The MTU defaults to 9000 (jumbo frames, as a real cluster would use).
set -eEuo pipefail

prefix=${TT_CLUSTER_PREFIX:-tt-}
me=${0##*/}

die() {
    echo "$me: $*" >&2
    exit 1
}

usage() {
    sed -n 's/^#   scripts\/cluster.sh /usage: cluster.sh /p' "$0"
}

need_ip() {
    command -v ip >/dev/null 2>&1 || die "the 'ip' command (iproute2) is missing; install it: apt-get install iproute2"
}

need_root() {
    [ "$(id -u)" -eq 0 ] || die "must run as root (it creates network namespaces, bridges and veth pairs)"
    need_ip
}

check_prefix() {
    [[ $prefix =~ ^[A-Za-z0-9_-]{1,10}$ ]] ||
        die "TT_CLUSTER_PREFIX='$prefix': use 1 to 10 letters, digits, '_' or '-'"
}

# The namespaces of this prefix's hosts, in host order.
list_hosts() {
    local name
    [ -d /run/netns ] || return 0
    for name in /run/netns/"$prefix"h*; do
        name=${name##*/}
        if [[ $name =~ ^${prefix}h([0-9]+)$ ]]; then
            echo "${BASH_REMATCH[1]} $name"
        fi
    done | sort -n | cut -d ' ' -f 2
}

# Root-namespace links of this prefix: bridges (PREFIXrail<r>) and veth ends (PREFIXh<h>r<r>).
list_links() { # REGEX
    local name
    for name in /sys/class/net/"$prefix"*; do
        name=${name##*/}
        if [[ $name =~ ^${prefix}$1$ ]]; then
            echo "$name"
        fi
    done
}

cmd_down() {
    local name failed=0
    need_root
    # Deleting a namespace deletes its veth ends, and with them their peers on the bridges.
    for name in $(list_hosts); do
        ip netns delete "$name" || failed=1
    done
    # A namespace still holding a process outlives its name, and so do its veth pairs.
    for name in $(list_links 'h[0-9]+r[0-9]+') $(list_links 'rail[0-9]+'); do
        ip link delete "$name" 2>/dev/null || [ ! -e "/sys/class/net/$name" ] || failed=1
    done
    [ "$failed" -eq 0 ] || die "down: could not remove everything; see above"
    echo "cluster ${prefix}: down"
}

# Settles the root namespace's side of a link: no IPv6 (so no link-local address,
# router solicitations or DAD from the root namespace), then up.
quiet_root_link() { # NAME
    if [ -w "/proc/sys/net/ipv6/conf/$1/disable_ipv6" ]; then
        echo 1 >"/proc/sys/net/ipv6/conf/$1/disable_ipv6"
    fi
    ip link set dev "$1" up
}

# Bridged IPv4 passes through the root namespace's iptables when br_netfilter
# is loaded and enabled; a FORWARD policy of DROP (Docker sets one) then cuts
# the hosts off from each other. That is the machine's policy: say so, change nothing.
note_br_netfilter() {
    local f=/proc/sys/net/bridge/bridge-nf-call-iptables
    if [ -r "$f" ] && [ "$(cat "$f")" = 1 ]; then
        echo "note: br_netfilter is loaded and bridge-nf-call-iptables=1: traffic between hosts"
        echo "      passes the root namespace's iptables FORWARD chain. If hosts cannot reach"
        echo "      each other, allow it, e.g. for rail 0:"
        echo "      iptables -I FORWARD -i ${prefix}rail0 -o ${prefix}rail0 -j ACCEPT"
    fi
}

cmd_up() {
    local hosts=${1:-} rails=1 mtu=9000 h r ns br veth
    [[ $hosts =~ ^[0-9]+$ ]] && [ "$hosts" -ge 1 ] && [ "$hosts" -le 254 ] ||
        die "up: the number of hosts must be 1 to 254 (got '${hosts}')"
    shift
    while [ $# -gt 0 ]; do
        case $1 in
        --rails) rails=${2:-} ;;
        --mtu) mtu=${2:-} ;;
        *) die "up: unknown option '$1' (usage: up H [--rails 1|2] [--mtu BYTES])" ;;
        esac
        [ $# -ge 2 ] || die "up: $1 needs a value"
        shift 2
    done
    [[ $rails =~ ^[12]$ ]] || die "up: --rails must be 1 or 2 (got '$rails')"
    [[ $mtu =~ ^[0-9]+$ ]] && [ "$mtu" -ge 1280 ] && [ "$mtu" -le 65535 ] ||
        die "up: --mtu must be 1280 to 65535 (got '$mtu')"
    # Interface names have at most 15 characters.
    veth="${prefix}h$((hosts - 1))r$((rails - 1))"
    [ ${#veth} -le 15 ] && [ ${#prefix} -le 10 ] ||
        die "up: TT_CLUSTER_PREFIX '$prefix' is too long for interface names such as '$veth' (15 characters at most)"
    need_root
    if [ -n "$(list_hosts)$(list_links '(h[0-9]+r[0-9]+|rail[0-9]+)')" ]; then
        echo "cluster ${prefix}: removing what a previous run left"
        cmd_down >/dev/null
    fi
    # Whatever fails half-way, leave nothing behind.
    trap 'echo "$me: up failed; removing what was made" >&2; cmd_down >/dev/null 2>&1' ERR

    for ((r = 0; r < rails; r++)); do
        br="${prefix}rail$r"
        ip link add name "$br" mtu "$mtu" type bridge stp_state 0
        quiet_root_link "$br"
    done
    for ((h = 0; h < hosts; h++)); do
        ns="${prefix}h$h"
        ip netns add "$ns"
        ip -n "$ns" link set dev lo up
        for ((r = 0; r < rails; r++)); do
            veth="${prefix}h${h}r$r"
            # The inner end is made inside the namespace, so no "rail0" ever exists in
            # the root namespace (two clusters with different prefixes can coexist).
            ip link add name "$veth" mtu "$mtu" type veth peer name "rail$r" mtu "$mtu" netns "$ns"
            ip link set dev "$veth" master "${prefix}rail$r"
            quiet_root_link "$veth"
            ip -n "$ns" addr add "198.18.$r.$((h + 1))/24" dev "rail$r"
            ip -n "$ns" link set dev "rail$r" up
        done
    done
    trap - ERR
    echo "cluster ${prefix}: $hosts hosts x $rails rail(s), MTU $mtu; host h, rail r = 198.18.r.(h+1)/24"
    echo "hosts: $(list_hosts | paste -sd ' ')"
    note_br_netfilter
}

# A field of `ip -o link` output: "mtu" gives the MTU, "state" the operational state.
link_field() { # FIELD LINE
    local line=" $2 "
    line=${line#* "$1" }
    echo "${line%% *}"
}

cmd_status() {
    local ns dev addr line bridges=0 hosts=0
    need_root
    echo "cluster ${prefix}"
    for dev in $(list_links 'rail[0-9]+'); do
        line=$(ip -o link show dev "$dev")
        printf '  bridge %-16s state %-8s mtu %s\n' "$dev" "$(link_field state "$line")" "$(link_field mtu "$line")"
        bridges=$((bridges + 1))
    done
    for ns in $(list_hosts); do
        hosts=$((hosts + 1))
        if [ "$hosts" -eq 1 ]; then
            printf '  %-14s %-9s %-18s %-16s %-6s %s\n' host interface address state mtu "bridge port"
        fi
        for dev in $(ip -n "$ns" -o link show | sed -n 's/^[0-9]*: \(rail[0-9]*\)@.*/\1/p'); do
            line=$(ip -n "$ns" -o link show dev "$dev")
            addr=$(ip -n "$ns" -4 -o addr show dev "$dev" | awk '{print $4}' | paste -sd ,)
            # A cut link (its bridge port down) shows as DOWN or LOWERLAYERDOWN inside.
            printf '  %-14s %-9s %-18s %-16s %-6s %s %s\n' "$ns" "$dev" "${addr:--}" \
                "$(link_field state "$line")" "$(link_field mtu "$line")" "${ns}r${dev#rail}" \
                "$(link_field state "$(ip -o link show dev "${ns}r${dev#rail}" 2>/dev/null)")"
        done
    done
    if [ "$hosts" -eq 0 ] && [ "$bridges" -eq 0 ]; then
        echo "  no hosts (make them with: $me up H)"
        return 1
    fi
    return 0
}

cmd_link() {
    local host=${1:-} rail=${2:-} state=${3:-} veth
    [[ $host =~ ^[0-9]+$ ]] && [[ $rail =~ ^[0-9]+$ ]] && [[ $state =~ ^(up|down)$ ]] ||
        die "usage: link HOST RAIL down|up (e.g. link 1 0 down)"
    need_root
    veth="${prefix}h${host}r$rail"
    [ -e "/sys/class/net/$veth" ] || die "link: host $host has no rail $rail (no interface $veth)"
    # The bridge's end, like a switch port or a cable: the host sees its carrier go.
    ip link set dev "$veth" "$state"
    echo "cluster ${prefix}: host $host rail $rail $state"
}

check_prefix
cmd=${1:-}
[ $# -gt 0 ] && shift
case $cmd in
up) cmd_up "$@" ;;
down) cmd_down ;;
status) cmd_status ;;
link) cmd_link "$@" ;;
hosts) list_hosts ;;
-h | --help | help) usage ;;
*)
    usage >&2
    exit 2
    ;;
esac
