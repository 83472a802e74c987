#!/usr/bin/env bash
# Soft-RoCE test bed: boots Debian's kernel under QEMU and runs commands in it
# with a real verbs stack (rdma_rxe, ib_uverbs, this machine's libibverbs).
# Why a VM: the host kernel has no InfiniBand support and there is no RDMA
# NIC, but the stock Debian kernel loads rdma_rxe, and then real RC queue
# pairs, completions and completion errors can be tested for real.
#
# The VM sees this machine's whole file system: "/" is shared read-only over
# virtio-9p and mounted under a tmpfs overlay, so every host binary, library
# and build tree (under /work, /tmp, ...) works unchanged in the VM, and
# writes stay inside the VM. The initramfs holds only busybox and modules.
# See usage() for the interface.
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache=${RDMA_VM_CACHE:-$repo_root/build/rdma-vm}
timeout_s=${RDMA_VM_TIMEOUT:-300}
mem_mb=${RDMA_VM_MEM:-2048}
accel=${RDMA_VM_ACCEL:-tcg}
keep_rundir=${RDMA_VM_KEEP:-0}
# Addresses for the VMs' RoCE links: 198.18.0.0/15 is reserved for
# benchmarking, so it cannot clash with a real network.
readonly subnet=198.18.0
readonly host_packages=(qemu-system-x86 busybox-static cpio kmod gzip xz-utils iproute2
    rdma-core ibverbs-utils ibverbs-providers libibverbs-dev perftest)
# Loaded in the VM in this order, with their dependencies first: virtio for
# the 9p share and the NIC, overlay for a writable root, the RDMA stack
# (crc32_generic by hand: rxe asks the crypto API for "crc32", which would need
# modprobe, and fails with "failed to init crc32 algorithm" without it), the
# RDMA CM for librdmacm users, and veth/netem for one-VM links and faults.
readonly vm_modules=(virtio_pci virtio_net 9pnet_virtio 9p overlay
    crc32_generic rdma_rxe ib_uverbs rdma_ucm veth sch_netem)

usage() {
    cat <<EOF
usage: scripts/rdma-vm.sh prepare
       scripts/rdma-vm.sh run [--vms 1|2] [--rails 1|2] [--vm1[-server] 'SHELL COMMAND'] [--timeout S] -- COMMAND...
       scripts/rdma-vm.sh clean

prepare  Installs what is missing (apt-get: ${host_packages[*]}),
         downloads the kernel that linux-image-amd64 depends on, extracts it
         and builds an initramfs, all under the cache folder. Run again, it
         reuses the cache.
run      Boots the VMs (preparing first if needed), brings up Soft-RoCE and
         runs COMMAND (no shell: use sh -c '...' for one) in VM 0, in the
         current directory, with its output on stdout. Exits with COMMAND's
         status (with --vm1 and two VMs: VM 0's if non-zero, else VM 1's).
  --vms 1   one VM: device rxe0 on a veth end with $subnet.1; two processes
            connect through that one device (two rxe devices in one VM do
            not connect: the kernel routes local addresses through lo).
  --vms 2   two VMs (one CPU each) joined by a QEMU datagram link over unix
            sockets: VM 0 has $subnet.1, VM 1 has $subnet.2, each with rxe0
            on its virtio NIC (a real two-host RoCE v2 link).
  --rails 2 two VMs joined by two wires, one per rail: each VM also has
            rxe1 on a second NIC, with $subnet.1/.2 on rail 0 and
            ${subnet%.*}.$((${subnet##*.} + 1)).1/.2 on rail 1 (multi-rail runs).
  --vm1 CMD shell command for VM 1 (implies --vms 2); the run waits for it
            too. Without one, VM 1 idles until VM 0's command is done.
  --vm1-server CMD  the same, but VM 1 is stopped when VM 0's command is
            done and its status does not count (servers, peers that may hang).
  --timeout S  kills the VMs after S seconds (default $timeout_s): exit 124.
clean    Removes the cache folder.

Inside, the command sees (besides PATH, HOME, cwd):
  RDMA_VM_ID (0/1)  RDMA_VM_ADDR  RDMA_VM_PEER (other VM's address, 2 VMs)
  RDMA_VM_DEV=rxe0  RDMA_VM_NETDEV  RDMA_VM_GID_INDEX (RoCE v2, IPv4-mapped)
  RDMA_VM_DEVS, RDMA_VM_NETDEVS: every rail's device and interface (rxe0 rxe1)
  RDMA_VM_DIR: a host folder shared read-write by both VMs (for files and
  handshakes between them); host names rdma-vm0, rdma-vm1 in /etc/hosts;
  modprobe works for any module of the guest kernel.
Exit status: COMMAND's, 124 on timeout, 125 when the test bed itself failed
(boot, module, mount, rxe), with the VM's console shown.

Environment: RDMA_VM_CACHE (default build/rdma-vm), RDMA_VM_TIMEOUT (300),
RDMA_VM_MEM (MB per VM, 2048), RDMA_VM_ACCEL (tcg; kvm where it works),
RDMA_VM_KEEP=1 keeps the run folder (consoles, outputs), RDMA_VM_APPEND
(extra kernel command line).
EOF
}

log() { echo "rdma-vm: $*" >&2; }
die() {
    log "$*"
    exit 125
}

# ---------------------------------------------------------------- prepare

package_installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

# Installs only what is missing; apt-get update only when an install fails
# (the package lists may be absent or stale on a fresh machine).
install_packages() {
    local missing=() p
    for p in "${host_packages[@]}"; do
        package_installed "$p" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    [ "$(id -u)" -eq 0 ] || die "missing packages (${missing[*]}) and not root to install them"
    log "installing ${missing[*]}"
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >&2; then
        apt-get update -q >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >&2 ||
            die "apt-get install ${missing[*]} failed"
    fi
}

# Prints the kernel package that linux-image-amd64 names (RDMA_VM_KERNEL_PKG
# overrides), e.g. linux-image-6.1.0-57-amd64.
kernel_package() {
    local pkg=${RDMA_VM_KERNEL_PKG:-}
    [ -n "$pkg" ] || pkg=$(kernel_named_by_apt)
    if [ -z "$pkg" ]; then
        apt-get update -q >&2 || true
        pkg=$(kernel_named_by_apt)
    fi
    [ -n "$pkg" ] || die "apt-cache cannot say which kernel linux-image-amd64 depends on"
    echo "$pkg"
}

kernel_named_by_apt() {
    apt-cache depends linux-image-amd64 2>/dev/null |
        awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ { print $2; exit }'
}

# Removes kernels and packages of other versions (left by a Debian kernel
# update): each extracted kernel takes about 400 MB.
remove_other_kernels() {
    local kver=$1 d
    for d in "$cache"/kernel-*/; do
        [ -d "$d" ] && [ "$d" != "$cache/kernel-$kver/" ] && rm -rf "$d"
    done
    find "$cache/debs" -name 'linux-image-*.deb' ! -name "linux-image-${kver}_*" -delete 2>/dev/null || true
}

# Downloads and extracts the kernel package into $1 (kept: the VM loads
# further modules from its lib/modules through the 9p share).
fetch_kernel() {
    local pkg=$1 kdir=$2 deb
    [ -f "$kdir/.extracted" ] && return 0
    mkdir -p "$cache/debs"
    deb=$(find "$cache/debs" -name "${pkg}_*.deb" | head -n 1)
    if [ -z "$deb" ]; then
        log "downloading $pkg"
        # apt's sandbox user cannot write into root's folders: download as root.
        (cd "$cache/debs" && apt-get download -q -o APT::Sandbox::User=root "$pkg" >&2) ||
            die "apt-get download $pkg failed"
        deb=$(find "$cache/debs" -name "${pkg}_*.deb" | head -n 1)
    fi
    log "extracting $(basename "$deb")"
    rm -rf "$kdir"
    mkdir -p "$kdir"
    dpkg -x "$deb" "$kdir" || die "dpkg -x $deb failed"
    depmod -b "$kdir" "${pkg#linux-image-}" || die "depmod failed"
    extract_vmlinux "$kdir/boot/vmlinuz-${pkg#linux-image-}" "$kdir/vmlinux"
    touch "$kdir/.extracted"
}

# Decompresses the kernel image (an xz stream inside the bzImage) into an ELF
# that QEMU boots directly (PVH entry): under software emulation that saves
# about 6 s of every boot, spent by the firmware and the decompressor.
# Without it, VMs boot the vmlinuz.
extract_vmlinux() {
    local vmlinuz=$1 out=$2 offset
    offset=$(LC_ALL=C grep -obUaP '\xfd7zXZ\x00' "$vmlinuz" | head -n 1 | cut -d: -f1)
    # xz stops at the end of its stream: no pipe from tail, which would then
    # die of SIGPIPE and fail the pipeline.
    if [ -z "$offset" ] || ! tail -c +$((offset + 1)) "$vmlinuz" > "$out.xz" ||
        ! xz -dqc --single-stream "$out.xz" > "$out.tmp" ||
        [ "$(head -c 4 "$out.tmp" | tail -c 3)" != ELF ]; then
        log "could not decompress $vmlinuz: booting it as it is (slower)"
        rm -f "$out.tmp" "$out.xz"
        return 0
    fi
    rm -f "$out.xz"
    mv "$out.tmp" "$out"
}

# Prints the kernel file QEMU boots.
kernel_image() {
    local kdir=$1 kver=$2
    if [ -f "$kdir/vmlinux" ]; then
        echo "$kdir/vmlinux"
    else
        echo "$kdir/boot/vmlinuz-$kver"
    fi
}

# Prints the module files to load for vm_modules, dependencies first, once each.
module_files() {
    local kdir=$1 kver=$2 m
    for m in "${vm_modules[@]}"; do
        modprobe -C /dev/null -d "$kdir" -S "$kver" --show-depends "$m" ||
            die "module $m not found in $kver"
    done | awk '$1 == "insmod" && !seen[$2]++ { print $2 }'
}

# The initramfs's /init (busybox sh, PID 1). Everything that can fail is
# checked: a failure prints "rdma-vm[N]: FAILED ..." on the console, writes
# status 125 when it can and powers off.
init_script() {
    cat <<'INIT'
#!/bin/sh
export PATH=/bin
SUBNET=@SUBNET@
id=0 vms=1 rails=1 run= kroot= status=125 run_mounted=
say() { echo "rdma-vm[$id]: $*"; }
finish() {
    [ -n "$run_mounted" ] && echo "$status" > "/newroot$run/status.$id"
    sync
    poweroff -f
}
fail() {
    say "FAILED: $*"
    finish
}
in_root() { chroot /newroot "$@"; }

mount_basics() {
    mount -t proc proc /proc && mount -t sysfs sys /sys && mount -t devtmpfs dev /dev ||
        fail "mounting /proc, /sys, /dev"
    exec </dev/null >/dev/console 2>&1
}

read_cmdline() {
    for arg in $(cat /proc/cmdline); do
        case $arg in
        rdmavm.id=*) id=${arg#*=} ;;
        rdmavm.vms=*) vms=${arg#*=} ;;
        rdmavm.rails=*) rails=${arg#*=} ;;
        rdmavm.run=*) run=${arg#*=} ;;
        rdmavm.kroot=*) kroot=${arg#*=} ;;
        esac
    done
    [ -n "$run" ] && [ -n "$kroot" ] || fail "rdmavm.run= or rdmavm.kroot= missing"
}

load_modules() {
    while read -r mod; do
        insmod "/modules/$mod" || fail "insmod $mod"
    done < /modules.list
}

# The host's / read-only over 9p, a tmpfs overlay on top for writes, fresh
# kernel file systems, and the run folder shared read-write with the host.
# The root is cached (cache=loose: programs start faster; files the host
# changes during a run may be seen late); the run folder is not, so the two
# VMs and the host see each other's writes at once.
mount_root() {
    mkdir -p /host /up /newroot
    mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=262144,cache=loose hostroot /host ||
        fail "mounting the host's / over 9p"
    mount -t tmpfs -o mode=755 upper /up && mkdir /up/data /up/work ||
        fail "mounting tmpfs for the overlay"
    mount -t overlay -o lowerdir=/host,upperdir=/up/data,workdir=/up/work overlay /newroot ||
        fail "mounting the overlay root"
    mount -t proc proc /newroot/proc && mount -t sysfs sys /newroot/sys &&
        mount -t devtmpfs dev /newroot/dev || fail "mounting /proc /sys /dev in the new root"
    mkdir -p /newroot/dev/pts /newroot/dev/shm
    mount -t devpts devpts /newroot/dev/pts && mount -t tmpfs shm /newroot/dev/shm &&
        mount -t tmpfs run /newroot/run || fail "mounting /dev/pts /dev/shm /run"
    mkdir -p "/newroot$run" &&
        mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 rundir "/newroot$run" ||
        fail "mounting the run folder over 9p"
    run_mounted=1
}

# modprobe in the VM finds the guest kernel's modules in the cache.
link_modules() {
    kver=$(uname -r)
    rm -rf "/newroot/lib/modules/$kver"
    mkdir -p /newroot/lib/modules && ln -s "$kroot/lib/modules/$kver" "/newroot/lib/modules/$kver" ||
        fail "linking /lib/modules/$kver"
}

name_host() {
    hostname "rdma-vm$id"
    echo "rdma-vm$id" > /newroot/etc/hostname
    printf '127.0.0.1 localhost\n%s.1 rdma-vm0\n%s.2 rdma-vm1\n' "$SUBNET" "$SUBNET" > /newroot/etc/hosts ||
        fail "writing /etc/hosts"
}

# Gives interface $1 address $2 and brings it up.
configure_netdev() {
    in_root /usr/sbin/ip addr add "$2/24" dev "$1" &&
        in_root /usr/sbin/ip link set "$1" up || fail "configuring $1 with $2"
}

# One VM: rxe on one end of a veth pair. Two VMs: rxe on each virtio NIC,
# rail r's with MAC 52:54:00:00:0r:0<id> and address <subnet of rail r>.<id+1>
# (rail 0's subnet is SUBNET, rail 1's the next /24).
bring_up_netdev() {
    in_root /usr/sbin/ip link set lo up || fail "ip link set lo up"
    addr=$SUBNET.$((id + 1))
    peer=$SUBNET.$((2 - id))
    netdevs= addrs=
    if [ "$vms" = 1 ]; then
        peer=
        in_root /usr/sbin/ip link add rv0 type veth peer name rv1 &&
            in_root /usr/sbin/ip link set rv1 up || fail "creating veth rv0/rv1"
        configure_netdev rv0 "$addr"
        netdevs=rv0 addrs=$addr
    else
        r=0
        while [ $r -lt "$rails" ]; do
            mac=52:54:00:00:0$r:0$id nic=
            for dev in /sys/class/net/*; do
                [ "$(cat "$dev/address" 2>/dev/null)" = "$mac" ] && nic=${dev##*/}
            done
            [ -n "$nic" ] || fail "no virtio NIC with MAC $mac"
            a=${SUBNET%.*}.$((${SUBNET##*.} + r)).$((id + 1))
            configure_netdev "$nic" "$a"
            netdevs="$netdevs${netdevs:+ }$nic" addrs="$addrs${addrs:+ }$a"
            r=$((r + 1))
        done
    fi
    netdev=${netdevs%% *}
}

# Prints the GID index of device $1 whose GID is address $2 IPv4-mapped with type RoCE v2.
find_gid_index() {
    want=$(echo "$2" | awk -F. '{ printf "0000:0000:0000:0000:0000:ffff:%02x%02x:%02x%02x", $1, $2, $3, $4 }')
    for g in /sys/class/infiniband/$1/ports/1/gids/*; do
        i=${g##*/}
        [ "$(cat "$g" 2>/dev/null)" = "$want" ] || continue
        [ "$(cat "/sys/class/infiniband/$1/ports/1/gid_attrs/types/$i" 2>/dev/null)" = "RoCE v2" ] || continue
        echo "$i"
        return
    done
}

# rxe<r> on the r-th interface, waited for until active with its GID.
bring_up_rxe() {
    r=0 devs=
    for nic in $netdevs; do
        dev=rxe$r a=$(echo "$addrs" | awk -v i=$((r + 1)) '{ print $i }')
        in_root /usr/bin/rdma link add "$dev" type rxe netdev "$nic" || fail "rdma link add $dev on $nic"
        g= tries=0
        while [ $tries -lt 100 ]; do
            state=$(cat "/sys/class/infiniband/$dev/ports/1/state" 2>/dev/null)
            g=$(find_gid_index "$dev" "$a")
            case $state in *ACTIVE*) [ -n "$g" ] && break ;; esac
            sleep 0.1
            tries=$((tries + 1))
        done
        case $state in *ACTIVE*) ;; *) fail "$dev port state is '$state', not ACTIVE" ;; esac
        [ -n "$g" ] || fail "no RoCE v2 GID for $a on $dev"
        say "$dev on $nic, $a, GID index $g"
        [ $r = 0 ] && gid_index=$g
        devs="$devs${devs:+ }$dev"
        r=$((r + 1))
    done
}

run_command() {
    in_root /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        HOME=/root TERM=dumb LANG=C.UTF-8 RDMA_VM_ID="$id" RDMA_VM_ADDR="$addr" \
        RDMA_VM_PEER="$peer" RDMA_VM_DEV=rxe0 RDMA_VM_NETDEV="$netdev" \
        RDMA_VM_GID_INDEX="$gid_index" RDMA_VM_DIR="$run" \
        RDMA_VM_DEVS="$devs" RDMA_VM_NETDEVS="$netdevs" \
        /bin/bash "$run/cmd.$id" > "/newroot$run/out.$id" 2>&1 < /dev/null
    status=$?
    say "command exited with $status"
}

mount_basics
read_cmdline
load_modules
mount_root
link_modules
name_host
bring_up_netdev
bring_up_rxe
run_command
finish
INIT
}

# /init as installed: init_script with the subnet filled in.
render_init() { init_script | sed "s/@SUBNET@/$subnet/"; }

# Builds $kdir/initrd.img: busybox, the modules and /init; rebuilt only when
# the init script or the module list changed.
build_initramfs() {
    local kdir=$1 kver=$2 stage f
    stage=$(mktemp -d "$cache/initramfs.XXXXXX")
    mkdir -p "$stage/bin" "$stage/modules" "$stage/proc" "$stage/sys" "$stage/dev"
    render_init > "$stage/init"
    chmod 755 "$stage/init"
    module_files "$kdir" "$kver" > "$stage/files.list"
    while read -r f; do
        cp "$f" "$stage/modules/"
        basename "$f"
    done < "$stage/files.list" > "$stage/modules.list"
    rm "$stage/files.list"
    if [ -f "$kdir/initrd.img" ] && cmp -s "$stage/init" "$kdir/init" &&
        cmp -s "$stage/modules.list" "$kdir/modules.list"; then
        rm -rf "$stage"
        return 0
    fi
    log "building the initramfs"
    cp /bin/busybox "$stage/bin/busybox"
    for f in sh mount insmod chroot mkdir ln rm cat sleep sync poweroff hostname echo awk printf; do
        ln -s busybox "$stage/bin/$f"
    done
    (cd "$stage" && find . | cpio -o -H newc --quiet | gzip -9) > "$kdir/initrd.img.tmp"
    mv "$kdir/initrd.img.tmp" "$kdir/initrd.img"
    cp "$stage/init" "$stage/modules.list" "$kdir/"
    rm -rf "$stage"
}

prepare() {
    local pkg kver kdir
    install_packages
    mkdir -p "$cache"
    pkg=$(kernel_package)
    kver=${pkg#linux-image-}
    kdir=$cache/kernel-$kver
    fetch_kernel "$pkg" "$kdir"
    build_initramfs "$kdir" "$kver"
    echo "$kver" > "$cache/kernel-version"
    remove_other_kernels "$kver"
    log "ready: $kdir ($(du -sh "$kdir/initrd.img" | cut -f1) initramfs)"
}

# Prepares only when the cache is not ready (or the init script changed).
ensure_prepared() {
    local kdir
    if [ -f "$cache/kernel-version" ]; then
        kdir=$cache/kernel-$(cat "$cache/kernel-version")
        if [ -f "$kdir/initrd.img" ] && [ -f "$kdir/init" ] &&
            cmp -s "$kdir/init" <(render_init); then
            return 0
        fi
    fi
    prepare
}

# -------------------------------------------------------------------- run

vms=1
vms_given=
rails=1
vm1_command=
vm1_wait=0 # whether the run waits for VM 1's command and counts its status
rundir=
qemu_pids=()
tail_pids=()

cleanup() {
    local pid
    for pid in "${qemu_pids[@]}" "${tail_pids[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${qemu_pids[@]}" "${tail_pids[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    if [ -n "$rundir" ] && [ "$keep_rundir" != 1 ]; then
        rm -rf "$rundir"
    elif [ -n "$rundir" ]; then
        log "run folder kept: $rundir"
    fi
}

# Writes the script VM $1 runs: cd to the caller's folder, then the command.
write_command() {
    local id=$1
    shift
    {
        printf 'cd %q 2>/dev/null || cd /\n' "$PWD"
        if [ "$id" = 0 ]; then
            printf 'exec'
            printf ' %q' "$@"
            printf '\n'
        elif [ -n "$vm1_command" ]; then
            printf '%s\n' "$vm1_command"
        else
            # No command for VM 1: it serves as a peer until VM 0 is done.
            printf 'exec sleep infinity\n'
        fi
    } > "$rundir/cmd.$id"
}

accel_args() {
    if [ "$accel" = kvm ]; then
        echo "-accel kvm -cpu host"
    else
        echo "-accel tcg,thread=multi -cpu max"
    fi
}

# Starts VM $1 in the background; its console goes to console.$1.
start_vm() {
    local id=$1 kver kdir smp net=() r
    kver=$(cat "$cache/kernel-version")
    kdir=$cache/kernel-$kver
    smp=$((3 - vms)) # two cores: two for one VM, one each for two
    if [ "$vms" = 2 ]; then
        # A point-to-point Ethernet wire per rail: each end sends datagrams
        # to the other's unix socket (no ports to pick, no traffic off this host).
        for ((r = 0; r < rails; r++)); do
            net+=(-netdev "dgram,id=n$r,local.type=unix,local.path=$rundir/wire$r.$id,remote.type=unix,remote.path=$rundir/wire$r.$((1 - id))"
                -device "virtio-net-pci,netdev=n$r,mac=52:54:00:00:0$r:0$id")
        done
    fi
    # shellcheck disable=SC2046 # accel_args is meant to split
    qemu-system-x86_64 $(accel_args) -smp "$smp" -m "$mem_mb" \
        -nodefaults -no-user-config -display none -no-reboot \
        -kernel "$(kernel_image "$kdir" "$kver")" -initrd "$kdir/initrd.img" \
        -append "console=ttyS0 panic=-1 quiet rdmavm.id=$id rdmavm.vms=$vms rdmavm.rails=$rails rdmavm.run=$rundir rdmavm.kroot=$kdir ${RDMA_VM_APPEND:-}" \
        -serial "file:$rundir/console.$id" \
        -virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap \
        -virtfs "local,path=$rundir,mount_tag=rundir,security_model=none,multidevs=remap" \
        "${net[@]}" </dev/null >"$rundir/qemu.$id" 2>&1 &
    qemu_pids[id]=$!
}

# Streams VM $1's command output live (VM 1's lines prefixed).
follow_output() {
    local id=$1
    touch "$rundir/out.$id"
    if [ "$id" = 0 ]; then
        tail -n +1 -F --pid="${qemu_pids[id]}" "$rundir/out.$id" 2>/dev/null &
    else
        tail -n +1 -F --pid="${qemu_pids[id]}" "$rundir/out.$id" 2>/dev/null | sed -u 's/^/[vm1] /' &
    fi
    tail_pids+=($!)
}

alive() { kill -0 "$1" 2>/dev/null; }

# Waits for the VMs that must finish (VM 0, and VM 1 with --vm1) until the
# deadline; returns 1 on timeout.
wait_vms() {
    local deadline=$((SECONDS + timeout_s))
    while [ $SECONDS -lt "$deadline" ]; do
        if ! alive "${qemu_pids[0]}" && { [ "$vm1_wait" = 0 ] || ! alive "${qemu_pids[1]}"; }; then
            return 0
        fi
        sleep 0.2
    done
    return 1
}

show_console() {
    local id=$1
    log "VM $id console ($rundir/console.$id), last lines:"
    tail -n 30 "$rundir/console.$id" >&2 2>/dev/null || true
    [ -s "$rundir/qemu.$id" ] && { log "QEMU $id said:"; cat "$rundir/qemu.$id" >&2; }
    return 0
}

# Prints the status VM $1 reported, or 125 with its console when it reported
# none (it crashed or never got as far as running the command).
vm_status() {
    local id=$1 st
    st=$(cat "$rundir/status.$id" 2>/dev/null || true)
    if [ -z "$st" ]; then
        log "VM $id reported no status"
        show_console "$id"
        st=125
    elif [ "$st" = 125 ] && grep -q 'rdma-vm\[.*FAILED' "$rundir/console.$id"; then
        show_console "$id"
    fi
    echo "$st"
}

run_vms() {
    local id st0 st1=0
    rundir=$(mktemp -d "${TMPDIR:-/tmp}/rdma-vm.XXXXXX")
    trap cleanup EXIT
    trap 'exit 130' INT TERM
    for ((id = 0; id < vms; id++)); do
        write_command "$id" "$@"
        start_vm "$id"
        follow_output "$id"
    done
    if ! wait_vms; then
        log "timed out after ${timeout_s}s: killing QEMU"
        for ((id = 0; id < vms; id++)); do show_console "$id"; done
        exit 124
    fi
    # VM 1 idles or serves (--vm1-server) once VM 0 is done: stop it.
    [ "$vms" = 1 ] || [ "$vm1_wait" = 1 ] || kill "${qemu_pids[1]}" 2>/dev/null || true
    for pid in "${tail_pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    st0=$(vm_status 0)
    [ "$vm1_wait" = 0 ] || st1=$(vm_status 1)
    [ "$st0" != 0 ] && exit "$st0"
    exit "$st1"
}

run() {
    while [ $# -gt 0 ]; do
        case $1 in
        --vms) vms=${2:?--vms needs 1 or 2}; vms_given=$vms; shift 2 ;;
        --rails) rails=${2:?--rails needs 1 or 2}; shift 2 ;;
        --vm1) vm1_command=${2:?--vm1 needs a command}; vm1_wait=1; shift 2 ;;
        --vm1-server) vm1_command=${2:?--vm1-server needs a command}; vm1_wait=0; shift 2 ;;
        --timeout) timeout_s=${2:?--timeout needs seconds}; shift 2 ;;
        --) shift; break ;;
        *) usage >&2; exit 2 ;;
        esac
    done
    [ "$vms" = 1 ] || [ "$vms" = 2 ] || { usage >&2; exit 2; }
    [ "$rails" = 1 ] || [ "$rails" = 2 ] || { usage >&2; exit 2; }
    [[ $timeout_s =~ ^[0-9]+$ ]] || die "--timeout (RDMA_VM_TIMEOUT) must be whole seconds"
    [ $# -gt 0 ] || { usage >&2; exit 2; }
    if [ -n "$vm1_command" ] || [ "$rails" = 2 ]; then
        [ "$vms_given" != 1 ] || die "--vm1, --vm1-server and --rails 2 need two VMs"
        vms=2
    fi
    ensure_prepared
    run_vms "$@"
}

main() {
    case ${1:-} in
    prepare) prepare ;;
    run) shift; run "$@" ;;
    clean) rm -rf "$cache" ;;
    -h | --help | help) usage ;;
    *) usage >&2; exit 2 ;;
    esac
}

main "$@"
