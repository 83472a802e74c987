/*
 * Host topology discovery; see topo.h.
 *
 * What counts as a NIC. A collective library cares about the devices its
 * data can leave the host through, so a NIC here is a PCI function that
 * carries a network interface or an RDMA (OpenFabrics) device: the RDMA
 * device and the interfaces under the same PCI function are one NIC. With
 * its default I/O filter hwloc reports only network devices backed by
 * hardware (loopback, bridges, veth and other virtual interfaces have no
 * device and are never seen). Network devices that are not on PCI (a
 * platform NIC of a system-on-chip, a virtio-mmio NIC of a micro-VM) are
 * listed only when the host has no PCI NIC at all: they are then the only
 * way off the host, while next to PCI NICs they are at best another path to
 * the same wire.
 *
 * What counts as a GPU. A PCI device with a compute OS device (CUDA, OpenCL,
 * Level Zero, NVML, RSMI), or with only a DRM card when it is not a
 * VGA-class device. Data-centre GPUs are 3D or "other display" controllers;
 * the VGA-class devices that have nothing but a DRM card are the BMC's
 * display of a server and the integrated graphics of a laptop, which a
 * collective cannot use. One entry per PCI device, named after its most
 * useful OS device (cuda0 rather than card1).
 *
 * Locality. An I/O device sits under the first non-I/O object above it; its
 * NUMA node (package) is the one whose CPUs include all of that object's
 * CPUs, so a device attached above several NUMA nodes (packages) has none.
 */
#include "config.h"

#include "topo/topo.h"

#include "util/log.h"
#include "util/sha256.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef HAVE_HWLOC
#include <hwloc.h>
#endif

static const tt_config_field_t topo_fields[] = {
    {"TOPO_FILE", "",
     "describe the host from this hwloc XML file instead of discovering it (to test against "
     "machines we do not have); empty: the live machine",
     TT_CFG_STRING, offsetof(tt_topo_settings_t, file), NULL},
    {"TOPO_DUMP_FILE", "",
     "write the host's topology to this hwloc XML file, which TUTTI_TOPO_FILE reads back (local "
     "rank 0 writes it; %h stands for the host name, '-' for standard output); empty: none",
     TT_CFG_STRING, offsetof(tt_topo_settings_t, dump_file), NULL},
    {"RAILS", "",
     "the host's rails, in order: network interfaces or RDMA devices, comma-separated (rail0,rail1 "
     "in the namespace test cluster, whose virtual interfaces hwloc does not list); empty: the "
     "NICs hwloc finds",
     TT_CFG_STRING, offsetof(tt_topo_settings_t, rails), NULL},
};

const tt_config_table_t tt_topo_config_table = {"topo", topo_fields, TT_ARRAY_SIZE(topo_fields),
                                                sizeof(tt_topo_settings_t)};

/* Files larger than this are not topologies (a 4-socket host with a full
 * PCI tree takes about 100 KB). */
#define TOPO_FILE_MAX (64u << 20)

/* ------------------------------------------------------------ the slice rule */

/* Local rank @p l of @p nranks takes units [first, first + count) of @p nunits:
 * the l-th of nranks equal slices, at least one unit when ranks outnumber units. */
static void slice_of(int nunits, int l, int nranks, int *first_p, int *count_p)
{
    long first = (long)l * nunits / nranks;
    long end = (long)(l + 1) * nunits / nranks;

    if (end <= first)
        end = first + 1;
    *first_p = (int)first;
    *count_p = (int)(end - first);
}

static tutti_status_t check_ranks(int local_rank, int local_ranks)
{
    if (local_ranks < 1 || local_rank < 0 || local_rank >= local_ranks) {
        tt_error("topo: local rank %d of %d is not a valid place on the host", local_rank,
                 local_ranks);
        return TUTTI_ERR_INVALID_ARG;
    }
    return TUTTI_OK;
}

/* ------------------------------------------------------------ nearest NIC */

static int nic_is_rdma(const tt_nic_t *nic)
{
    return nic->kind == TT_NIC_INFINIBAND || nic->kind == TT_NIC_ROCE;
}

/*
 * The package of NUMA node @p numa. The description does not carry a map of
 * NUMA nodes to packages, so it is read off the devices and this rank's own
 * place, and otherwise taken from the symmetric layout hwloc numbers NUMA
 * nodes in (k consecutive logical NUMA nodes per package). -1 if unknown.
 */
static int numa_package(const tt_host_topo_t *topo, int numa)
{
    if (numa < 0)
        return -1;
    if (numa == topo->my_numa && topo->my_package >= 0)
        return topo->my_package;
    for (int i = 0; i < topo->nnics && i < TT_TOPO_MAX_NICS; i++)
        if (topo->nics[i].numa == numa && topo->nics[i].package >= 0)
            return topo->nics[i].package;
    for (int i = 0; i < topo->ngpus && i < TT_TOPO_MAX_GPUS; i++)
        if (topo->gpus[i].numa == numa && topo->gpus[i].package >= 0)
            return topo->gpus[i].package;
    if (topo->npackages >= 1 && topo->nnumas >= topo->npackages &&
        topo->nnumas % topo->npackages == 0)
        return numa / (topo->nnumas / topo->npackages);
    return -1;
}

int tt_topo_nearest_nic(const tt_host_topo_t *topo, int numa, int index)
{
    int candidates[TT_TOPO_MAX_NICS];
    int nnics = TT_MIN(topo->nnics, TT_TOPO_MAX_NICS);
    int package = numa_package(topo, numa);
    int only_rdma = 0, n = 0;

    /* A management Ethernet port next to RDMA NICs carries no collective
     * data: when the host has RDMA NICs, only they are candidates. */
    for (int i = 0; i < nnics; i++)
        only_rdma |= nic_is_rdma(&topo->nics[i]);
    for (int tier = 0; tier < 3 && n == 0; tier++) {
        for (int i = 0; i < nnics; i++) {
            const tt_nic_t *nic = &topo->nics[i];
            if (only_rdma && !nic_is_rdma(nic))
                continue;
            if ((tier == 0 && (numa < 0 || nic->numa != numa)) ||
                (tier == 1 && (package < 0 || nic->package != package)))
                continue;
            candidates[n++] = i;
        }
    }
    if (n == 0)
        return -1;
    return candidates[(index < 0 ? 0 : index) % n];
}

/* ------------------------------------------------------------ printing */

static const char *nic_kind_name(int kind)
{
    switch (kind) {
    case TT_NIC_ETHERNET: return "Ethernet";
    case TT_NIC_INFINIBAND: return "InfiniBand";
    case TT_NIC_ROCE: return "RoCE";
    default: return "other";
    }
}

static const char *format_bytes(uint64_t bytes, char *buf, size_t size)
{
    if (bytes == 0)
        snprintf(buf, size, "none");
    else if (bytes % (1u << 20) == 0)
        snprintf(buf, size, "%llu MiB", (unsigned long long)(bytes >> 20));
    else if (bytes % 1024 == 0)
        snprintf(buf, size, "%llu KiB", (unsigned long long)(bytes >> 10));
    else
        snprintf(buf, size, "%llu B", (unsigned long long)bytes);
    return buf;
}

static const char *format_place(int numa, int package, char *buf, size_t size)
{
    char numa_text[16] = "?", package_text[16] = "?";
    if (numa >= 0)
        snprintf(numa_text, sizeof(numa_text), "%d", numa);
    if (package >= 0)
        snprintf(package_text, sizeof(package_text), "%d", package);
    snprintf(buf, size, "NUMA %s, package %s", numa_text, package_text);
    return buf;
}

void tt_topo_print(const tt_host_topo_t *topo, void *out)
{
    FILE *f = out;
    char a[32], b[32], c[32], place[48];
    int nnics = TT_MIN(topo->nnics, TT_TOPO_MAX_NICS);
    int ngpus = TT_MIN(topo->ngpus, TT_TOPO_MAX_GPUS);

    fprintf(f, "host %s (id ", topo->id.hostname);
    for (int i = 0; i < 6; i++)
        fprintf(f, "%02x", topo->id.digest[i]);
    fprintf(f, ")\n");
    fprintf(f, "  %d package%s, %d NUMA node%s, %d core%s, %d PU%s\n", topo->npackages,
            topo->npackages == 1 ? "" : "s", topo->nnumas, topo->nnumas == 1 ? "" : "s",
            topo->ncores, topo->ncores == 1 ? "" : "s", topo->npus, topo->npus == 1 ? "" : "s");
    fprintf(f, "  caches (one of each): L1d %s, L2 %s, L3 %s\n",
            format_bytes(topo->cache_bytes[1], a, sizeof(a)),
            format_bytes(topo->cache_bytes[2], b, sizeof(b)),
            format_bytes(topo->cache_bytes[3], c, sizeof(c)));
    fprintf(f, "  NICs: %d\n", nnics);
    for (int i = 0; i < nnics; i++) {
        const tt_nic_t *nic = &topo->nics[i];
        char speed[32] = "speed unknown";
        if (nic->gbps > 0)
            snprintf(speed, sizeof(speed), "PCI link %.4g Gbit/s", nic->gbps);
        fprintf(f, "    %2d %-10s %-10s %-10s %-12s  %s, %s\n", i, nic->name,
                nic->netdev[0] ? nic->netdev : "-", nic_kind_name(nic->kind),
                nic->pci_busid[0] ? nic->pci_busid : "(not PCI)",
                format_place(nic->numa, nic->package, place, sizeof(place)), speed);
    }
    fprintf(f, "  GPUs: %d\n", ngpus);
    for (int i = 0; i < ngpus; i++) {
        const tt_gpu_t *gpu = &topo->gpus[i];
        fprintf(f, "    %2d %-10s %-12s  %s\n", i, gpu->name, gpu->pci_busid,
                format_place(gpu->numa, gpu->package, place, sizeof(place)));
    }
    fprintf(f, "  this rank: %s, ",
            format_place(topo->my_numa, topo->my_package, place, sizeof(place)));
    if (topo->my_npus > 1 && !topo->bound)
        fprintf(f, "PUs L#%d-%d", topo->my_first_pu, topo->my_first_pu + topo->my_npus - 1);
    else
        fprintf(f, "%d PU%s from L#%d", topo->my_npus, topo->my_npus == 1 ? "" : "s",
                topo->my_first_pu);
    fprintf(f, " (%s), nearest NIC %s\n",
            topo->bound ? "from its CPU binding" : "its slice of the host: not bound",
            topo->my_nic >= 0 && topo->my_nic < nnics ? topo->nics[topo->my_nic].name : "none");
}

/* ------------------------------------------------------------ without hwloc */

static uint64_t sysconf_bytes(int name)
{
    long value = sysconf(name);
    return value > 0 ? (uint64_t)value : 0;
}

/* One package, one NUMA node, sysconf's processors as cores, no devices. */
static void describe_fallback(int local_rank, int local_ranks, tt_host_topo_t *topo)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    int first, count;

    topo->npackages = 1;
    topo->nnumas = 1;
    topo->ncores = topo->npus = n >= 1 ? (int)n : 1;
#ifdef _SC_LEVEL1_DCACHE_SIZE
    topo->cache_bytes[1] = sysconf_bytes(_SC_LEVEL1_DCACHE_SIZE);
    topo->cache_bytes[2] = sysconf_bytes(_SC_LEVEL2_CACHE_SIZE);
    topo->cache_bytes[3] = sysconf_bytes(_SC_LEVEL3_CACHE_SIZE);
#else
    (void)sysconf_bytes;
#endif
    slice_of(topo->ncores, local_rank, local_ranks, &first, &count);
    topo->my_numa = 0;
    topo->my_package = 0;
    topo->my_first_pu = first;
    topo->my_npus = count;
    topo->my_nic = -1;
    topo->bound = 0;
}

/* A host described without hwloc, with the rails @p settings name. */
static tutti_status_t describe_without_hwloc(const tt_topo_settings_t *settings, int local_rank,
                                             int local_ranks, tt_host_topo_t *topo)
{
    TT_CHECK(tt_host_identify(&topo->id));
    describe_fallback(local_rank, local_ranks, topo);
    if (settings != NULL)
        TT_CHECK(tt_topo_set_rails(topo, settings->rails, 1));
    topo->my_nic = tt_topo_nearest_nic(topo, topo->my_numa, local_rank);
    return TUTTI_OK;
}

#ifndef HAVE_HWLOC

tutti_status_t tt_topo_discover(const tt_topo_settings_t *settings, int local_rank, int local_ranks,
                                tt_host_topo_t *topo)
{
    tt_host_topo_t result;

    if (topo == NULL)
        return TUTTI_ERR_INVALID_ARG;
    TT_CHECK(check_ranks(local_rank, local_ranks));
    if (settings != NULL && settings->file[0] != '\0') {
        tt_error("topo: TUTTI_TOPO_FILE=%s needs hwloc, and tutti was built without it",
                 settings->file);
        return TUTTI_ERR_UNSUPPORTED;
    }
    if (settings != NULL && settings->dump_file[0] != '\0')
        tt_warn("topo: TUTTI_TOPO_DUMP_FILE ignored: tutti was built without hwloc");
    memset(&result, 0, sizeof(result));
    tt_info("topo: built without hwloc: describing the host as one package of %ld processors",
            sysconf(_SC_NPROCESSORS_ONLN));
    TT_CHECK(describe_without_hwloc(settings, local_rank, local_ranks, &result));
    *topo = result;
    return TUTTI_OK;
}

#else /* HAVE_HWLOC */

/* ------------------------------------------------------------ locality */

/* Logical index of the first object of @p type whose CPUs include all of
 * @p set, -1 if none does. */
static int covering_index(hwloc_topology_t hw, hwloc_obj_type_t type, hwloc_const_cpuset_t set)
{
    hwloc_obj_t obj = NULL;

    if (set == NULL || hwloc_bitmap_iszero(set))
        return -1;
    while ((obj = hwloc_get_next_obj_by_type(hw, type, obj)) != NULL)
        if (obj->cpuset != NULL && !hwloc_bitmap_iszero(obj->cpuset) &&
            hwloc_bitmap_isincluded(set, obj->cpuset))
            return (int)obj->logical_index;
    return -1;
}

/* Logical index of the first object of @p type with a CPU in @p set, -1 if none. */
static int intersecting_index(hwloc_topology_t hw, hwloc_obj_type_t type, hwloc_const_cpuset_t set)
{
    hwloc_obj_t obj = NULL;

    while ((obj = hwloc_get_next_obj_by_type(hw, type, obj)) != NULL)
        if (obj->cpuset != NULL && hwloc_bitmap_intersects(set, obj->cpuset))
            return (int)obj->logical_index;
    return -1;
}

static void io_locality(hwloc_topology_t hw, hwloc_obj_t io, int *numa_p, int *package_p)
{
    hwloc_obj_t host = hwloc_get_non_io_ancestor_obj(hw, io);
    hwloc_const_cpuset_t set = host != NULL ? host->cpuset : NULL;

    *numa_p = covering_index(hw, HWLOC_OBJ_NUMANODE, set);
    *package_p = covering_index(hw, HWLOC_OBJ_PACKAGE, set);
}

/* ------------------------------------------------------------ devices */

/* Copy @p src into @p dst of @p size bytes, cut short if need be. */
static void copy_name(char *dst, size_t size, const char *src)
{
    size_t len = src != NULL ? strnlen(src, size - 1) : 0;
    memcpy(dst, src != NULL ? src : "", len);
    dst[len] = '\0';
}

static void format_busid(const hwloc_obj_t pci, char *buf, size_t size)
{
    const struct hwloc_pcidev_attr_s *a = &pci->attr->pcidev;
    snprintf(buf, size, "%04x:%02x:%02x.%01x", (unsigned)a->domain, (unsigned)a->bus,
             (unsigned)a->dev, (unsigned)a->func);
}

static int has_prefix(const char *text, const char *prefix)
{
    return text != NULL && strncmp(text, prefix, strlen(prefix)) == 0;
}

/* An IP-over-InfiniBand interface: its hardware address is 20 bytes long
 * (an Ethernet one 6); without an address, its name says it. */
static int netdev_is_ipoib(hwloc_obj_t os)
{
    const char *address = hwloc_obj_get_info_by_name(os, "Address");
    int colons = 0;

    if (address == NULL || address[0] == '\0')
        return has_prefix(os->name, "ib");
    for (const char *p = address; *p != '\0'; p++)
        colons += *p == ':';
    return colons == 19;
}

/* 1 if an RDMA device reports a port with a LID: only InfiniBand assigns them. */
static int rdma_has_lid(hwloc_obj_t os)
{
    for (unsigned i = 0; i < os->infos_count; i++) {
        const char *name = os->infos[i].name, *value = os->infos[i].value;
        size_t len = name != NULL ? strlen(name) : 0;
        if (has_prefix(name, "Port") && len > 3 && strcmp(name + len - 3, "LID") == 0 &&
            value != NULL && strtoul(value, NULL, 0) != 0)
            return 1;
    }
    return 0;
}

/* What the network OS devices under one PCI function (or one alone) say. */
typedef struct nic_evidence {
    hwloc_obj_t rdma;   /* the OpenFabrics device, if any */
    hwloc_obj_t netdev; /* the chosen network interface, if any */
    int netdev_ipoib;
} nic_evidence_t;

static void nic_evidence_add(nic_evidence_t *ev, hwloc_obj_t os)
{
    if (os->attr->osdev.type == HWLOC_OBJ_OSDEV_OPENFABRICS) {
        if (ev->rdma == NULL)
            ev->rdma = os;
        return;
    }
    /* An adapter with one InfiniBand and one Ethernet port on a single PCI
     * function (ConnectX-3) shows both interfaces: the InfiniBand one names
     * the NIC, as the RDMA device is mostly used through it. */
    if (ev->netdev == NULL || (!ev->netdev_ipoib && netdev_is_ipoib(os))) {
        ev->netdev = os;
        ev->netdev_ipoib = netdev_is_ipoib(os);
    }
}

static int nic_kind(const nic_evidence_t *ev, hwloc_obj_t pci)
{
    unsigned class_id = pci != NULL ? pci->attr->pcidev.class_id : 0;

    if (ev->rdma == NULL) /* a plain interface; IPoIB without its RDMA device is odd */
        return ev->netdev_ipoib ? TT_NIC_OTHER : TT_NIC_ETHERNET;
    if (ev->netdev != NULL) /* RoCE or iWARP, which hwloc cannot tell apart */
        return ev->netdev_ipoib ? TT_NIC_INFINIBAND : TT_NIC_ROCE;
    /* No interface (IPoIB not loaded): the port's LID or the PCI class. */
    if (rdma_has_lid(ev->rdma) || class_id == 0x0207 || class_id == 0x0c06)
        return TT_NIC_INFINIBAND;
    if (class_id == 0x0200)
        return TT_NIC_ROCE;
    return TT_NIC_OTHER;
}

static int is_network_osdev(hwloc_obj_t os)
{
    return os->type == HWLOC_OBJ_OS_DEVICE && (os->attr->osdev.type == HWLOC_OBJ_OSDEV_NETWORK ||
                                               os->attr->osdev.type == HWLOC_OBJ_OSDEV_OPENFABRICS);
}

static void add_nic(hwloc_topology_t hw, tt_host_topo_t *topo, const nic_evidence_t *ev,
                    hwloc_obj_t pci, int *dropped_p)
{
    tt_nic_t *nic;
    hwloc_obj_t any = ev->rdma != NULL ? ev->rdma : ev->netdev;

    if (topo->nnics == TT_TOPO_MAX_NICS) {
        (*dropped_p)++;
        return;
    }
    nic = &topo->nics[topo->nnics++];
    copy_name(nic->name, sizeof(nic->name), any->name);
    if (ev->netdev != NULL)
        copy_name(nic->netdev, sizeof(nic->netdev), ev->netdev->name);
    if (pci != NULL) {
        float speed = pci->attr->pcidev.linkspeed; /* GB/s */
        format_busid(pci, nic->pci_busid, sizeof(nic->pci_busid));
        nic->gbps = speed > 0 ? (double)speed * 8.0 : 0.0;
    }
    nic->kind = nic_kind(ev, pci);
    io_locality(hw, pci != NULL ? pci : any, &nic->numa, &nic->package);
}

static void collect_nics(hwloc_topology_t hw, tt_host_topo_t *topo)
{
    hwloc_obj_t pci = NULL, os = NULL;
    int dropped = 0;

    while ((pci = hwloc_get_next_pcidev(hw, pci)) != NULL) {
        nic_evidence_t ev = {0};
        for (hwloc_obj_t child = pci->io_first_child; child != NULL; child = child->next_sibling)
            if (is_network_osdev(child))
                nic_evidence_add(&ev, child);
        if (ev.rdma != NULL || ev.netdev != NULL)
            add_nic(hw, topo, &ev, pci, &dropped);
    }
    if (topo->nnics == 0) {
        while ((os = hwloc_get_next_osdev(hw, os)) != NULL) {
            nic_evidence_t ev = {0};
            if (!is_network_osdev(os) ||
                (os->parent != NULL && os->parent->type == HWLOC_OBJ_PCI_DEVICE) ||
                strcmp(os->name != NULL ? os->name : "", "lo") == 0)
                continue;
            nic_evidence_add(&ev, os);
            add_nic(hw, topo, &ev, NULL, &dropped);
        }
    }
    if (dropped > 0)
        tt_warn("topo: %d NICs beyond the first %d are not described", dropped, TT_TOPO_MAX_NICS);
}

/* How useful an OS device's name is for a GPU; 0: not a GPU device. */
static int gpu_name_rank(hwloc_obj_t os)
{
    if (os->type != HWLOC_OBJ_OS_DEVICE)
        return 0;
    if (os->attr->osdev.type == HWLOC_OBJ_OSDEV_COPROC) {
        if ((os->subtype != NULL && strcmp(os->subtype, "CUDA") == 0) ||
            has_prefix(os->name, "cuda"))
            return 4;
        return 3; /* OpenCL, Level Zero */
    }
    if (os->attr->osdev.type != HWLOC_OBJ_OSDEV_GPU)
        return 0;
    if (has_prefix(os->name, "card") || has_prefix(os->name, "renderD") ||
        has_prefix(os->name, "controlD"))
        return 1; /* a DRM device: any display has one */
    return 2;     /* NVML, RSMI, Level Zero management */
}

static void collect_gpus(hwloc_topology_t hw, tt_host_topo_t *topo)
{
    hwloc_obj_t pci = NULL;
    int dropped = 0;

    while ((pci = hwloc_get_next_pcidev(hw, pci)) != NULL) {
        hwloc_obj_t best = NULL;
        int best_rank = 0;
        tt_gpu_t *gpu;

        for (hwloc_obj_t child = pci->io_first_child; child != NULL; child = child->next_sibling) {
            int rank = gpu_name_rank(child);
            if (rank > best_rank) {
                best = child;
                best_rank = rank;
            }
        }
        if (best == NULL || (best_rank == 1 && pci->attr->pcidev.class_id == 0x0300))
            continue;
        if (topo->ngpus == TT_TOPO_MAX_GPUS) {
            dropped++;
            continue;
        }
        gpu = &topo->gpus[topo->ngpus++];
        copy_name(gpu->name, sizeof(gpu->name), best->name);
        format_busid(pci, gpu->pci_busid, sizeof(gpu->pci_busid));
        io_locality(hw, pci, &gpu->numa, &gpu->package);
    }
    if (dropped > 0)
        tt_warn("topo: %d GPUs beyond the first %d are not described", dropped, TT_TOPO_MAX_GPUS);
}

/* ------------------------------------------------------------ processors */

static uint64_t cache_size(hwloc_topology_t hw, hwloc_obj_type_t type)
{
    hwloc_obj_t cache = hwloc_get_next_obj_by_type(hw, type, NULL);
    return cache != NULL && cache->attr != NULL ? cache->attr->cache.size : 0;
}

static void describe_processors(hwloc_topology_t hw, tt_host_topo_t *topo)
{
    topo->npackages = TT_MAX(hwloc_get_nbobjs_by_type(hw, HWLOC_OBJ_PACKAGE), 1);
    topo->nnumas = TT_MAX(hwloc_get_nbobjs_by_type(hw, HWLOC_OBJ_NUMANODE), 1);
    topo->npus = TT_MAX(hwloc_get_nbobjs_by_type(hw, HWLOC_OBJ_PU), 1);
    topo->ncores = hwloc_get_nbobjs_by_type(hw, HWLOC_OBJ_CORE);
    if (topo->ncores <= 0) /* some files and platforms have no core objects */
        topo->ncores = topo->npus;
    topo->cache_bytes[1] = cache_size(hw, HWLOC_OBJ_L1CACHE);
    topo->cache_bytes[2] = cache_size(hw, HWLOC_OBJ_L2CACHE);
    topo->cache_bytes[3] = cache_size(hw, HWLOC_OBJ_L3CACHE);
}

/* A host without package objects (some virtual machines and files) is one
 * package: everything on it is in package 0. */
static void no_package_objects(tt_host_topo_t *topo)
{
    for (int i = 0; i < topo->nnics; i++)
        topo->nics[i].package = 0;
    for (int i = 0; i < topo->ngpus; i++)
        topo->gpus[i].package = 0;
    topo->my_package = 0;
}

/* The units the slice rule divides: cores, or PUs where there are none. */
static hwloc_obj_type_t slice_unit_type(hwloc_topology_t hw)
{
    return hwloc_get_nbobjs_by_type(hw, HWLOC_OBJ_CORE) > 0 ? HWLOC_OBJ_CORE : HWLOC_OBJ_PU;
}

/* The NUMA node local rank @p l of @p nranks gets under the slice rule. */
static int slice_numa(hwloc_topology_t hw, int l, int nranks)
{
    hwloc_obj_type_t unit = slice_unit_type(hw);
    int first, count;
    hwloc_obj_t obj;

    slice_of(hwloc_get_nbobjs_by_type(hw, unit), l, nranks, &first, &count);
    obj = hwloc_get_obj_by_type(hw, unit, (unsigned)first);
    return obj != NULL ? intersecting_index(hw, HWLOC_OBJ_NUMANODE, obj->cpuset) : -1;
}

/* Place the rank on its slice of the host; returns its index among the
 * local ranks that the rule puts on the same NUMA node. */
static int place_by_slice(hwloc_topology_t hw, int local_rank, int local_ranks,
                          tt_host_topo_t *topo)
{
    hwloc_obj_type_t unit = slice_unit_type(hw);
    int first, count, index = 0;
    hwloc_obj_t obj, pu;

    slice_of(hwloc_get_nbobjs_by_type(hw, unit), local_rank, local_ranks, &first, &count);
    topo->my_npus = 0;
    topo->my_first_pu = 0;
    for (int u = first; u < first + count; u++) {
        obj = hwloc_get_obj_by_type(hw, unit, (unsigned)u);
        if (obj == NULL)
            break;
        if (u == first) {
            pu = hwloc_get_obj_inside_cpuset_by_type(hw, obj->cpuset, HWLOC_OBJ_PU, 0);
            topo->my_first_pu = pu != NULL ? (int)pu->logical_index : 0;
            topo->my_numa = intersecting_index(hw, HWLOC_OBJ_NUMANODE, obj->cpuset);
            topo->my_package = intersecting_index(hw, HWLOC_OBJ_PACKAGE, obj->cpuset);
        }
        topo->my_npus += hwloc_get_nbobjs_inside_cpuset_by_type(hw, obj->cpuset, HWLOC_OBJ_PU);
    }
    topo->bound = 0;
    for (int l = 0; l < local_rank; l++)
        index += slice_numa(hw, l, local_ranks) == topo->my_numa;
    return index;
}

/* Place the rank from its CPU binding; 0 if it is not bound to a part of the host. */
static int place_by_binding(hwloc_topology_t hw, tt_host_topo_t *topo)
{
    hwloc_bitmap_t set = hwloc_bitmap_alloc();
    hwloc_const_cpuset_t all = hwloc_topology_get_topology_cpuset(hw);
    hwloc_obj_t pu;
    int bound = 0;

    if (set == NULL)
        return 0;
    if (hwloc_get_cpubind(hw, set, 0) != 0 && hwloc_get_cpubind(hw, set, HWLOC_CPUBIND_THREAD))
        goto out_free;
    hwloc_bitmap_and(set, set, all);
    if (hwloc_bitmap_iszero(set) || hwloc_bitmap_isincluded(all, set))
        goto out_free;
    pu = hwloc_get_obj_inside_cpuset_by_type(hw, set, HWLOC_OBJ_PU, 0);
    topo->my_first_pu = pu != NULL ? (int)pu->logical_index : 0;
    topo->my_npus = hwloc_get_nbobjs_inside_cpuset_by_type(hw, set, HWLOC_OBJ_PU);
    topo->my_numa = intersecting_index(hw, HWLOC_OBJ_NUMANODE, set);
    topo->my_package = intersecting_index(hw, HWLOC_OBJ_PACKAGE, set);
    topo->bound = bound = 1;
out_free:
    hwloc_bitmap_free(set);
    return bound;
}

/* ------------------------------------------------------------ files */

static tutti_status_t read_whole_file(const char *path, char **data_p, size_t *size_p)
{
    FILE *f = fopen(path, "rb");
    char *data = NULL;
    size_t size = 0, capacity = 0, n;

    if (f == NULL) {
        tt_error("topo: cannot open TUTTI_TOPO_FILE %s: %s", path, strerror(errno));
        return TUTTI_ERR_INVALID_ARG;
    }
    do {
        if (size == capacity) {
            char *bigger;
            capacity = capacity != 0 ? 2 * capacity : 64 * 1024;
            if (capacity > TOPO_FILE_MAX)
                break;
            bigger = realloc(data, capacity);
            if (bigger == NULL) {
                fclose(f);
                free(data);
                return TUTTI_ERR_NO_MEMORY;
            }
            data = bigger;
        }
        n = fread(data + size, 1, capacity - size, f);
        size += n;
    } while (n > 0);
    if (ferror(f) || size == 0 || capacity > TOPO_FILE_MAX) {
        const char *why = "larger than 64 MiB";
        if (ferror(f))
            why = strerror(errno);
        else if (size == 0)
            why = "empty file";
        tt_error("topo: cannot use TUTTI_TOPO_FILE %s: %s", path, why);
        fclose(f);
        free(data);
        return TUTTI_ERR_INVALID_ARG;
    }
    fclose(f);
    *data_p = data;
    *size_p = size;
    return TUTTI_OK;
}

/* A described host is named by its content (so that every rank reading the
 * same file is on the same host) and by the host name the file records,
 * else by the file's name without ".xml". */
static void identify_file_host(hwloc_topology_t hw, const char *path, const char *data, size_t size,
                               tt_host_id_t *id)
{
    tt_sha256_t hash;
    const char *hostname = hwloc_obj_get_info_by_name(hwloc_get_root_obj(hw), "HostName");
    const char *base = strrchr(path, '/');
    size_t len;

    memset(id, 0, sizeof(*id));
    tt_sha256_init(&hash);
    tt_sha256_update(&hash, data, size);
    tt_sha256_final(&hash, id->digest);
    if (hostname != NULL && hostname[0] != '\0') {
        copy_name(id->hostname, sizeof(id->hostname), hostname);
        return;
    }
    copy_name(id->hostname, sizeof(id->hostname), base != NULL ? base + 1 : path);
    len = strlen(id->hostname);
    if (len > 4 && strcmp(id->hostname + len - 4, ".xml") == 0)
        id->hostname[len - 4] = '\0';
}

/* Write the topology to @p pattern with %h replaced by the host name,
 * through a temporary file so that a reader never sees half a file. */
static void dump_topology(hwloc_topology_t hw, const char *pattern, const char *hostname)
{
    char path[2 * TT_CONFIG_STRING_MAX], tmp[2 * TT_CONFIG_STRING_MAX + 32];
    size_t used = 0;

    for (const char *p = pattern; *p != '\0' && used + 1 < sizeof(path); p++) {
        if (p[0] == '%' && p[1] == 'h') {
            used += (size_t)snprintf(path + used, sizeof(path) - used, "%s", hostname);
            used = TT_MIN(used, sizeof(path) - 1);
            p++;
        } else {
            path[used++] = *p;
        }
    }
    path[used] = '\0';
    if (strcmp(path, "-") == 0) {
        if (hwloc_topology_export_xml(hw, path, 0) != 0)
            tt_warn("topo: cannot write the topology to standard output");
        return;
    }
    snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
    if (hwloc_topology_export_xml(hw, tmp, 0) != 0 || rename(tmp, path) != 0) {
        tt_warn("topo: cannot write TUTTI_TOPO_DUMP_FILE %s: %s", path, strerror(errno));
        unlink(tmp);
        return;
    }
    tt_info("topo: wrote the topology to %s", path);
}

/* ------------------------------------------------------------ discovery */

static tutti_status_t load_topology(hwloc_topology_t *hw_p, const char *file)
{
    hwloc_topology_t hw;

    if (hwloc_topology_init(&hw) != 0) {
        tt_warn("topo: hwloc_topology_init failed: %s", strerror(errno));
        return TUTTI_ERR_SYSTEM;
    }
    /* Keep PCI devices, bridges with children and the OS devices of
     * networks, RDMA, GPUs and storage; leave out the rest of the I/O tree. */
    hwloc_topology_set_io_types_filter(hw, HWLOC_TYPE_FILTER_KEEP_IMPORTANT);
#if defined(__linux__) && HWLOC_API_VERSION >= 0x00020100
    /* On Linux hwloc reads the PCI tree from sysfs by itself; its libpciaccess
     * plugin only adds vendor and device names, and leaks the name table on
     * every load. */
    if (file == NULL)
        hwloc_topology_set_components(hw, HWLOC_TOPOLOGY_COMPONENTS_FLAG_BLACKLIST, "pci");
#endif
    if ((file != NULL && hwloc_topology_set_xml(hw, file) != 0) || hwloc_topology_load(hw) != 0) {
        int err = errno;
        hwloc_topology_destroy(hw);
        if (file != NULL) {
            tt_error("topo: TUTTI_TOPO_FILE %s is not an XML topology hwloc can read "
                     "(HWLOC_XML_VERBOSE=1 says why)",
                     file);
            return TUTTI_ERR_INVALID_ARG;
        }
        tt_warn("topo: hwloc could not discover this host (%s): describing it without hwloc",
                strerror(err));
        return TUTTI_ERR_SYSTEM;
    }
    *hw_p = hw;
    return TUTTI_OK;
}

tutti_status_t tt_topo_discover(const tt_topo_settings_t *settings, int local_rank, int local_ranks,
                                tt_host_topo_t *topo)
{
    const char *file = settings != NULL && settings->file[0] != '\0' ? settings->file : NULL;
    tt_host_topo_t result;
    hwloc_topology_t hw;
    char *data = NULL;
    size_t size = 0;
    int index;
    tutti_status_t status;

    if (topo == NULL)
        return TUTTI_ERR_INVALID_ARG;
    TT_CHECK(check_ranks(local_rank, local_ranks));
    memset(&result, 0, sizeof(result));
    if (file != NULL)
        TT_CHECK(read_whole_file(file, &data, &size));
    status = load_topology(&hw, file);
    if (status != TUTTI_OK && file == NULL) {
        /* The live host without hwloc's view: still a usable description. */
        if (settings != NULL && settings->dump_file[0] != '\0')
            tt_warn("topo: TUTTI_TOPO_DUMP_FILE %s not written: hwloc failed", settings->dump_file);
        TT_CHECK(describe_without_hwloc(settings, local_rank, local_ranks, &result));
        *topo = result;
        return TUTTI_OK;
    }
    if (status != TUTTI_OK)
        goto err_free;

    if (file != NULL)
        identify_file_host(hw, file, data, size, &result.id);
    else
        TT_CHECK_GOTO(tt_host_identify(&result.id), status, err_destroy);
    describe_processors(hw, &result);
    collect_nics(hw, &result);
    collect_gpus(hw, &result);
    if (settings != NULL)
        TT_CHECK_GOTO(tt_topo_set_rails(&result, settings->rails, file == NULL), status,
                      err_destroy);

    /* A described host is not the one this process runs on: its binding
     * says nothing about it. */
    if (file != NULL || !hwloc_topology_is_thissystem(hw) || !place_by_binding(hw, &result))
        index = place_by_slice(hw, local_rank, local_ranks, &result);
    else
        index = local_rank;
    if (hwloc_get_nbobjs_by_type(hw, HWLOC_OBJ_PACKAGE) == 0)
        no_package_objects(&result);
    result.my_nic = tt_topo_nearest_nic(&result, result.my_numa, index);

    if (settings != NULL && settings->dump_file[0] != '\0' && local_rank == 0)
        dump_topology(hw, settings->dump_file, result.id.hostname);
    hwloc_topology_destroy(hw);
    free(data);
    *topo = result;
    return TUTTI_OK;

err_destroy:
    hwloc_topology_destroy(hw);
err_free:
    free(data);
    return status;
}

#endif /* HAVE_HWLOC */
