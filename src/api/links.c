/*
 * Which transport carries each peer: shared memory to the ranks on this
 * host and the network transport (RDMA where every rank has it, else UCX)
 * to the others (TUTTI_TRANSPORTS=auto), or one transport for every peer
 * (ucx or rdma: inside the host too, for testing; shm: one host only). Each transport chosen is
 * created over its peers, its addresses exchanged through the bootstrap, connected, and entered in
 * the route table the executor uses.
 */
#include "config.h"

#include "api/links.h"

#include "bootstrap/bootstrap.h"
#include "util/log.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { LINKS_AUTO, LINKS_SHM, LINKS_UCX, LINKS_RDMA };

static const char *const links_choices[] = {"auto", "shm", "ucx", "rdma", NULL};

typedef struct links_settings {
    int transports;
} links_settings_t;

static const tt_config_field_t links_fields[] = {
    {"TRANSPORTS", "auto",
     "auto: shared memory inside a host; between hosts RDMA (libibverbs) when every rank has an "
     "active RDMA port, else UCX; ucx or rdma: that transport for every peer (inside a host "
     "too, for testing); shm: shared memory only (all ranks on one host)",
     TT_CFG_ENUM, offsetof(links_settings_t, transports), links_choices},
};

const tt_config_table_t tt_links_config_table = {"links", links_fields, TT_ARRAY_SIZE(links_fields),
                                                 sizeof(links_settings_t)};

enum { VIA_NONE, VIA_SHM, VIA_NET };

/* What settings @p s choose for a peer on this host or another (see tt_links_choice). */
static int via(const links_settings_t *s, int same_host)
{
    if (s->transports == LINKS_UCX || s->transports == LINKS_RDMA ||
        (s->transports == LINKS_AUTO && !same_host))
        return VIA_NET;
    return same_host ? VIA_SHM : VIA_NONE;
}

const char *tt_links_choice(const tt_config_overrides_t *overrides, int same_host)
{
    links_settings_t settings;

    if (tt_config_load(&tt_links_config_table, overrides, &settings) != TUTTI_OK)
        return NULL;
    switch (via(&settings, same_host)) {
    case VIA_SHM: return "shm";
    case VIA_NET:
        if (settings.transports != LINKS_AUTO)
            return links_choices[settings.transports];
        return tt_transport_find("rdma") != NULL ? "rdma, else ucx" : "ucx";
    default: return NULL;
    }
}

/* The registered transport called @p name that can run here, or NULL (logged). */
static const tt_transport_ops_t *usable_transport(const char *name, const char *needed_for)
{
    char why[160] = "";
    const tt_transport_ops_t *ops = tt_transport_runnable(name, why, sizeof(why));

    if (ops == NULL)
        tt_error("transport %s, needed %s, cannot run: %s", name, needed_for, why);
    return ops;
}

/*
 * TUTTI_TRANSPORTS=auto between hosts: RDMA if it runs on every rank, else
 * UCX. Every rank must choose the same, so the ranks tell each other
 * whether RDMA runs on theirs (one bootstrap all-gather).
 */
static tutti_status_t agree_on_network(tutti_comm_t comm, int64_t deadline, const char **name_p)
{
    static atomic_int told; /* why RDMA is off, said once per process */
    char why[160] = "", mine, *all = malloc((size_t)comm->nranks);
    int with = 0;
    tutti_status_t status;

    if (all == NULL)
        return TUTTI_ERR_NO_MEMORY;
    mine = tt_transport_runnable("rdma", why, sizeof(why)) != NULL;
    if (!mine && atomic_exchange(&told, 1) == 0)
        tt_info("transport rdma is off: %s", why);
    status = tt_bootstrap_allgather(comm->bs, comm->ctx, comm->rank, comm->nranks,
                                    comm->session_ranks, &mine, 1, all, deadline);
    for (int r = 0; status == TUTTI_OK && r < comm->nranks; r++)
        with += all[r] != 0;
    free(all);
    if (status != TUTTI_OK)
        return status;
    if (with > 0 && with < comm->nranks && comm->rank == 0)
        tt_info("transport rdma runs on %d of %d ranks: using ucx between hosts", with,
                comm->nranks);
    *name_p = with == comm->nranks || tt_transport_find("ucx") == NULL ? "rdma" : "ucx";
    return TUTTI_OK;
}

/* Create, exchange addresses, connect, barrier, ready: one transport over @p peers. */
static tutti_status_t wire_up(tutti_comm_t comm, const tt_transport_ops_t *ops, const int *peers,
                              int npeers, int64_t deadline)
{
    tt_transport_params_t params = {comm->rank, comm->nranks,     peers,       npeers,
                                    comm->ctx,  &comm->overrides, comm->rails, comm->nrails};
    size_t size = ops->address_size(&params);
    char *mine = calloc(1, size), *all = malloc(size * (size_t)comm->nranks),
         *theirs = malloc(size * (size_t)npeers);
    tt_transport_t *tl = NULL;
    tutti_status_t status = TUTTI_ERR_NO_MEMORY;

    if (mine == NULL || all == NULL || theirs == NULL)
        goto out;
    TT_CHECK_GOTO(ops->create(&params, mine, &tl), status, out);
    comm->transports[comm->ntransports++] = tl;
    TT_CHECK_GOTO(tt_bootstrap_allgather(comm->bs, comm->ctx, comm->rank, comm->nranks,
                                         comm->session_ranks, mine, size, all, deadline),
                  status, out);
    for (int i = 0; i < npeers; i++)
        memcpy(theirs + (size_t)i * size, all + (size_t)peers[i] * size, size);
    TT_CHECK_GOTO(ops->connect(tl, theirs), status, out);
    TT_CHECK_GOTO(tt_bootstrap_allgather(comm->bs, comm->ctx, comm->rank, comm->nranks,
                                         comm->session_ranks, NULL, 0, NULL, deadline),
                  status, out);
    TT_CHECK_GOTO(ops->ready(tl), status, out);
    for (int i = 0; i < npeers; i++)
        comm->route[peers[i]] = tl;
out:
    free(mine);
    free(all);
    free(theirs);
    return status;
}

/* "0-3,8,10-11": the @p n ascending ranks in @p ranks, as ranges. */
static void format_ranks(const int *ranks, int n, char *buf, size_t len)
{
    size_t used = 0;

    buf[0] = '\0';
    for (int i = 0; i < n && used < len; i++) {
        int last = i;
        while (last + 1 < n && ranks[last + 1] == ranks[last] + 1)
            last++;
        used += (size_t)snprintf(buf + used, len - used, "%s%d", i > 0 ? "," : "", ranks[i]);
        if (last > i && used < len)
            used += (size_t)snprintf(buf + used, len - used, "-%d", ranks[last]);
        i = last;
    }
}

/* Log which ranks @p tl's transport reaches (this rank excluded). */
static void log_route(tutti_comm_t comm, const char *name, const int *peers, int npeers)
{
    char ranks[200];
    int *others = malloc((size_t)npeers * sizeof(int)), n = 0;

    if (others == NULL)
        return;
    for (int i = 0; i < npeers; i++)
        if (peers[i] != comm->rank)
            others[n++] = peers[i];
    format_ranks(others, n, ranks, sizeof(ranks));
    tt_info("communicator %#llx: rank %d of %d reaches %d ranks over %s%s%s",
            (unsigned long long)comm->ctx, comm->rank, comm->nranks, n, name, n > 0 ? ": " : "",
            ranks);
    free(others);
}

tutti_status_t tt_comm_connect(tutti_comm_t comm, int64_t deadline)
{
    const tt_cluster_t *c = &comm->hosts;
    int host = c->places[comm->rank].host, nnet = 0;
    const int *local = c->host_ranks + c->host_start[host];
    const tt_transport_ops_t *ops;
    links_settings_t settings;
    int inside, *net_peers;
    tutti_status_t status = TUTTI_ERR_NO_TRANSPORT;

    TT_CHECK(tt_config_load(&tt_links_config_table, &comm->overrides, &settings));
    inside = via(&settings, 1);
    if (c->nhosts > 1 && via(&settings, 0) == VIA_NONE) {
        tt_error("TUTTI_TRANSPORTS=shm, but the ranks run on %d hosts", c->nhosts);
        return TUTTI_ERR_NO_TRANSPORT;
    }
    comm->route = calloc((size_t)comm->nranks, sizeof(*comm->route));
    net_peers = malloc((size_t)comm->nranks * sizeof(int));
    if (comm->route == NULL || net_peers == NULL) {
        free(net_peers);
        return TUTTI_ERR_NO_MEMORY;
    }
    /* Everyone the network transport serves (and this rank, whose address the others need). */
    for (int r = 0; r < comm->nranks; r++)
        if (via(&settings, c->places[r].host == host) == VIA_NET || r == comm->rank)
            net_peers[nnet++] = r;
    if (inside == VIA_SHM) {
        if ((ops = usable_transport("shm", "inside a host")) == NULL)
            goto out;
        TT_CHECK_GOTO(wire_up(comm, ops, local, comm->local_ranks, deadline), status, out);
        log_route(comm, ops->name, local, comm->local_ranks);
    }
    /* Every rank takes part in wiring the network when any rank needs it. */
    if (inside == VIA_NET || c->nhosts > 1) {
        const char *name = links_choices[settings.transports];
        if (settings.transports == LINKS_AUTO)
            TT_CHECK_GOTO(agree_on_network(comm, deadline, &name), status, out);
        if ((ops = usable_transport(name, c->nhosts > 1 ? "between hosts"
                                                        : "by TUTTI_TRANSPORTS")) == NULL)
            goto out;
        TT_CHECK_GOTO(wire_up(comm, ops, net_peers, nnet, deadline), status, out);
        log_route(comm, ops->name, net_peers, nnet);
    }
    status = TUTTI_OK;
out:
    free(net_peers);
    return status;
}
