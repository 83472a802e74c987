/* Opening RDMA device ports and choosing GIDs; see device.h. */
#include "config.h"

#include "transports/rdma/device.h"
#include "util/log.h"

#include <stdio.h>
#include <string.h>

/* Ports are numbered from 1; devices have few. */
#define PORTS_MAX 8

static int gid_is_set(const union ibv_gid *gid)
{
    static const union ibv_gid zero;
    return memcmp(gid, &zero, sizeof(zero)) != 0;
}

/* ::ffff:a.b.c.d, the form RoCE v2 gives an interface's IPv4 address. */
static int gid_is_ipv4(const union ibv_gid *gid)
{
    static const unsigned char prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    return memcmp(gid->raw, prefix, sizeof(prefix)) == 0;
}

/* Whether GID @p index of @p p is RoCE v2 (the kernel says so in sysfs). */
static int gid_is_roce_v2(const tt_rdma_port_t *p, const char *device, int index)
{
    char path[192], type[32] = "";
    FILE *f;

    snprintf(path, sizeof(path), "/sys/class/infiniband/%s/ports/%u/gid_attrs/types/%d", device,
             p->port, index);
    f = fopen(path, "r");
    if (f == NULL)
        return 0;
    if (fgets(type, sizeof(type), f) == NULL)
        type[0] = '\0';
    fclose(f);
    return strncmp(type, "RoCE v2", 7) == 0;
}

/* Choose p->gid_index as device.h says, and read the GID. */
static tutti_status_t choose_gid(const tt_verbs_t *v, tt_rdma_port_t *p, const char *device,
                                 int wanted, int table_len)
{
    int best = -1, best_rank = 0;

    if (wanted >= 0) {
        if (wanted >= table_len || v->query_gid(p->context, p->port, wanted, &p->gid) != 0 ||
            !gid_is_set(&p->gid)) {
            tt_error("rdma: %s has no GID at index %d (TUTTI_RDMA_GID_INDEX)", p->name, wanted);
            return TUTTI_ERR_INVALID_ARG;
        }
        p->gid_index = wanted;
        return TUTTI_OK;
    }
    if (p->link_layer != IBV_LINK_LAYER_ETHERNET) {
        p->gid_index = v->query_gid(p->context, p->port, 0, &p->gid) == 0 ? 0 : -1;
        return TUTTI_OK;
    }
    for (int i = 0; i < table_len; i++) {
        union ibv_gid gid;
        int rank;

        if (v->query_gid(p->context, p->port, i, &gid) != 0 || !gid_is_set(&gid))
            continue;
        rank = 1 + (gid_is_roce_v2(p, device, i) ? 2 + gid_is_ipv4(&gid) : 0);
        if (rank > best_rank) {
            best = i;
            best_rank = rank;
        }
    }
    if (best < 0) {
        tt_error("rdma: %s has no GID set (is its network interface up, with an address?)",
                 p->name);
        return TUTTI_ERR_NO_TRANSPORT;
    }
    p->gid_index = best;
    v->query_gid(p->context, p->port, best, &p->gid);
    return TUTTI_OK;
}

/* The first active port of @p context from @p first (or exactly @p first if @p only). */
static int active_port(const tt_verbs_t *v, struct ibv_context *context, int ports, int first,
                       int only, struct ibv_port_attr *attr)
{
    for (int port = first; port <= ports && port <= PORTS_MAX; port++) {
        if (tt_verbs_query_port(v, context, (uint8_t)port, attr) == 0 &&
            attr->state == IBV_PORT_ACTIVE)
            return port;
        if (only)
            break;
    }
    return 0;
}

/* Fill @p p from the opened @p context's port @p port (active, described by @p attr). */
static tutti_status_t describe_port(const tt_verbs_t *v, struct ibv_context *context,
                                    const char *device, int port, const struct ibv_device_attr *dev,
                                    const struct ibv_port_attr *attr, int gid_index,
                                    tt_rdma_port_t *p)
{
    snprintf(p->name, sizeof(p->name), "%s:%d", device, port);
    p->context = context;
    p->port = (uint8_t)port;
    p->link_layer = attr->link_layer == IBV_LINK_LAYER_ETHERNET ? IBV_LINK_LAYER_ETHERNET
                                                                : IBV_LINK_LAYER_INFINIBAND;
    p->lid = attr->lid;
    p->mtu = attr->active_mtu;
    p->max_msg_size = attr->max_msg_sz;
    p->max_qp_wr = (uint32_t)dev->max_qp_wr;
    p->max_cqe = (uint32_t)dev->max_cqe;
    p->max_qp_rd_atom = (uint32_t)dev->max_qp_rd_atom;
    TT_CHECK(choose_gid(v, p, device, gid_index, attr->gid_tbl_len));
    p->pd = v->alloc_pd(context);
    if (p->pd == NULL) {
        tt_error("rdma: cannot allocate a protection domain on %s", p->name);
        return TUTTI_ERR_NO_TRANSPORT;
    }
    return TUTTI_OK;
}

tutti_status_t tt_rdma_port_open(const tt_verbs_t *v, const char *device, int port, int gid_index,
                                 tt_rdma_port_t *p)
{
    int n = 0;
    struct ibv_device **list = v->get_device_list(&n);
    tutti_status_t status = TUTTI_ERR_NO_TRANSPORT;

    memset(p, 0, sizeof(*p));
    if (list == NULL) {
        tt_error("rdma: cannot list RDMA devices");
        return TUTTI_ERR_NO_TRANSPORT;
    }
    for (int i = 0; i < n && status == TUTTI_ERR_NO_TRANSPORT; i++) {
        const char *name = v->get_device_name(list[i]);
        struct ibv_device_attr dev;
        struct ibv_port_attr attr;
        struct ibv_context *context;
        int found;

        if (device != NULL && device[0] != '\0' && strcmp(name, device) != 0)
            continue;
        context = v->open_device(list[i]);
        if (context == NULL)
            continue;
        found =
            v->query_device(context, &dev) == 0
                ? active_port(v, context, dev.phys_port_cnt, port > 0 ? port : 1, port > 0, &attr)
                : 0;
        if (found > 0)
            status = describe_port(v, context, name, found, &dev, &attr, gid_index, p);
        if (status != TUTTI_OK) {
            p->context = NULL;
            v->close_device(context);
        }
        if (device != NULL && device[0] != '\0')
            break;
    }
    v->free_device_list(list);
    if (status == TUTTI_ERR_NO_TRANSPORT && p->name[0] == '\0')
        tt_error("rdma: no active port on %s%s", device != NULL && device[0] ? "device " : "",
                 device != NULL && device[0] ? device : "any RDMA device");
    return status;
}

void tt_rdma_port_close(const tt_verbs_t *v, tt_rdma_port_t *p)
{
    if (p->pd != NULL)
        v->dealloc_pd(p->pd);
    if (p->context != NULL)
        v->close_device(p->context);
    memset(p, 0, sizeof(*p));
}

int tt_rdma_any_active(const tt_verbs_t *v, char *why, size_t why_size)
{
    int n = 0, active = 0;
    struct ibv_device **list = v->get_device_list(&n);

    for (int i = 0; list != NULL && i < n && !active; i++) {
        struct ibv_context *context = v->open_device(list[i]);
        struct ibv_device_attr dev;
        struct ibv_port_attr attr;

        if (context == NULL)
            continue;
        active = v->query_device(context, &dev) == 0 &&
                 active_port(v, context, dev.phys_port_cnt, 1, 0, &attr) > 0;
        v->close_device(context);
    }
    if (list != NULL)
        v->free_device_list(list);
    if (!active)
        snprintf(why, why_size, n == 0 ? "no RDMA device found" : "no RDMA port is active");
    return active;
}
