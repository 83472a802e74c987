/*
 * What one host looks like, discovered with hwloc: packages, NUMA nodes,
 * cores, caches, network devices and GPUs with their locality, and where
 * this rank sits on it. TUTTI_TOPO_FILE reads an hwloc XML file instead of
 * the live machine (to test against machines we do not have), and
 * TUTTI_TOPO_DUMP_FILE writes what was discovered as hwloc XML (which
 * TUTTI_TOPO_FILE can read back).
 *
 * The description is plain data of fixed size, so that ranks can exchange
 * it through the bootstrap and merge it into a cluster view (cluster.h).
 */
#ifndef TT_TOPO_TOPO_H
#define TT_TOPO_TOPO_H

#include "topo/host.h"
#include "util/config.h"

#include <stdint.h>

#define TT_TOPO_MAX_NICS 32
#define TT_TOPO_MAX_GPUS 32
#define TT_TOPO_NAME_MAX 32
#define TT_TOPO_CACHE_LEVELS 4 /* index 1..3: L1d, L2, L3 (0 unused) */

typedef enum tt_nic_kind {
    TT_NIC_ETHERNET,   /* an IP network interface with no RDMA device behind it */
    TT_NIC_INFINIBAND, /* an RDMA device (OpenFabrics) on an InfiniBand port */
    TT_NIC_ROCE,       /* an RDMA device on Ethernet (RoCE, or iWARP: hwloc cannot tell) */
    TT_NIC_OTHER,      /* an RDMA device whose link is unknown, or an IP-over-InfiniBand
                          interface whose RDMA device is missing */
} tt_nic_kind_t;

/*
 * A network device data can leave the host through: a PCI function with a
 * network interface or an RDMA device (both under one function are one NIC).
 * Network devices that are not on PCI (a system-on-chip's, a micro-VM's)
 * count only when the host has no PCI NIC; loopback and virtual interfaces
 * never do. A device (NIC or GPU) attached above several NUMA nodes
 * (packages) is equally near to them: its numa (package) is -1.
 */
typedef struct tt_nic {
    char name[TT_TOPO_NAME_MAX];      /* RDMA device if any (mlx5_0), else interface (eth0) */
    char netdev[TT_TOPO_NAME_MAX];    /* network interface (ib0, eth0), "" if none */
    char pci_busid[TT_TOPO_NAME_MAX]; /* "0000:81:00.0", "" if not on PCI */
    int kind;                         /* tt_nic_kind_t */
    int numa;                         /* logical index of the nearest NUMA node, -1 unknown */
    int package;                      /* logical index of the nearest package, -1 unknown */
    double gbps;                      /* link speed in Gbit/s where known (PCI link), else 0 */
} tt_nic_t;

/*
 * A GPU: a PCI device with a compute OS device (CUDA, OpenCL, Level Zero,
 * NVML, RSMI), or with a DRM card only if it is not a VGA-class device (a
 * server BMC's display, a laptop's integrated graphics). One per PCI device,
 * named after its most useful OS device (cuda0 before card1).
 */
typedef struct tt_gpu {
    char name[TT_TOPO_NAME_MAX]; /* cuda0, card0, ... */
    char pci_busid[TT_TOPO_NAME_MAX];
    int numa, package;
} tt_gpu_t;

typedef struct tt_host_topo {
    tt_host_id_t id;
    int npackages, nnumas, ncores, npus;
    uint64_t cache_bytes[TT_TOPO_CACHE_LEVELS]; /* size of one cache of each level, 0 absent */
    int nnics;
    tt_nic_t nics[TT_TOPO_MAX_NICS];
    int ngpus;
    tt_gpu_t gpus[TT_TOPO_MAX_GPUS];
    /* This rank's place: from its CPU binding, or, when it is not bound (or
     * the topology comes from a file), from its local rank: local rank l of
     * L takes the l-th of L equal slices of the host's cores (cores
     * [l*C/L, (l+1)*C/L), at least one). Its NUMA node and package are those
     * of the slice's (binding's) first PU. A host without package objects
     * counts as one package, 0. */
    int my_numa, my_package;
    int my_first_pu, my_npus; /* the slice of PUs (logical indices); when bound, the
                                 binding's first PU and its number of PUs */
    int my_nic;               /* index in nics of the nearest NIC, -1 if none */
    int bound;                /* 1 if the place came from a real CPU binding */
} tt_host_topo_t;

typedef struct tt_topo_settings {
    char file[TT_CONFIG_STRING_MAX];      /* TUTTI_TOPO_FILE */
    char dump_file[TT_CONFIG_STRING_MAX]; /* TUTTI_TOPO_DUMP_FILE */
    char rails[TT_CONFIG_STRING_MAX];     /* TUTTI_RAILS */
} tt_topo_settings_t;

extern const tt_config_table_t tt_topo_config_table;

/*
 * Describe the host and this rank's place on it. @p local_rank and
 * @p local_ranks (this rank's index among the ranks on this host, and their
 * number) decide the place when the rank is not bound to a part of the host.
 * @p settings may be NULL (the live host, no dump). With settings->file the
 * host is the one that hwloc XML file describes: its id hashes the file's
 * content and takes the host name the file records (else the file's name).
 * With settings->dump_file, local rank 0 writes the topology there.
 * With settings->rails, the NICs are the ones it names (tt_topo_set_rails).
 * Without hwloc, or if hwloc fails on the live host, describes a host of one
 * package, one NUMA node and sysconf's number of cores, with no NICs (and
 * logs why).
 * @return TUTTI_OK; TUTTI_ERR_INVALID_ARG for a NULL @p topo, a local rank
 *         out of range, or a file that is missing or not a topology (logged
 *         with the file's name) or a malformed rails list;
 *         TUTTI_ERR_UNSUPPORTED for a file without hwloc. @p topo is written only on success.
 * Thread safe.
 */
tutti_status_t tt_topo_discover(const tt_topo_settings_t *settings, int local_rank, int local_ranks,
                                tt_host_topo_t *topo);

/*
 * The NIC nearest to @p numa for the @p index-th rank there: NICs on the same
 * NUMA node first, then the same package, then any; ranks that share a NUMA
 * node spread over its NICs (index modulo their number; a negative index
 * counts as 0). When the host has RDMA NICs (InfiniBand, RoCE) only they are
 * candidates: a management Ethernet port is not a data path next to them.
 * -1 if the host has none.
 */
int tt_topo_nearest_nic(const tt_host_topo_t *topo, int numa, int index);

/*
 * Make the NICs named in @p list (comma-separated network interfaces or RDMA
 * devices, in rail order) the host's only ones: a NIC hwloc found, matched by
 * either name, keeps its description; another name becomes an Ethernet NIC
 * of unknown locality (a virtual interface, which hwloc does not list, as in
 * the namespace test cluster). With @p live set (@p topo is this host), a
 * name that is neither an interface nor an RDMA device here is logged.
 * Does not choose my_nic. An empty @p list changes nothing.
 * @return TUTTI_OK, or TUTTI_ERR_INVALID_ARG (logged) for an empty name, a
 *         name too long, a name given twice or more than TT_TOPO_MAX_NICS.
 */
tutti_status_t tt_topo_set_rails(tt_host_topo_t *topo, const char *list, int live);

/* Print a human-readable summary to @p out, a FILE * (used by tutti-topo). */
void tt_topo_print(const tt_host_topo_t *topo, void *out /* FILE * */);

#endif
