# Sourced by the Soft-RoCE VM scripts (tests/scripts/test_rdma_transport.sh,
# perf/rdma-vm-bench.sh), inside a VM: use_transport makes tutti reach every
# peer through $transport on the VM's rxe0.
#  - rdma: the transport finds rxe0 and its IPv4-mapped RoCE v2 GID itself;
#  - ucx: UCX over rxe0 (rc_verbs for data, TCP on the VM's interface for
#    UCX's wire-up and keep-alive: rc_verbs alone has no wire-up transport,
#    and ud_verbs' wire-up stalls on one rxe device).
use_transport() {
    export TUTTI_TRANSPORTS=$transport
    if [ "$transport" = ucx ]; then
        export UCX_NET_DEVICES=${UCX_NET_DEVICES:-$RDMA_VM_DEV:1,$RDMA_VM_NETDEV}
        export UCX_TLS=${UCX_TLS:-rc_verbs,tcp,self}
    fi
}
