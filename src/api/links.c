/*
 * Which transport carries each peer: shared memory to the ranks on this
 * host and UCX to the others (TUTTI_TRANSPORTS=auto), or one transport for
 * every peer (ucx: UCX inside the host too, for testing; shm: one host
 * only). Each transport chosen is created over its peers, its addresses
 * exchanged through the bootstrap, connected, and entered in the route
 * table the executor uses.
 */
#include "config.h"

#include "api/links.h"

#include "bootstrap/bootstrap.h"
#include "util/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { LINKS_AUTO, LINKS_SHM, LINKS_UCX };

static const char *const links_choices[] = {"auto", "shm", "ucx", NULL};

typedef struct links_settings {
    int transports;
} links_settings_t;

static const tt_config_field_t links_fields[] = {
    {"TRANSPORTS", "auto",
     "auto: shared memory inside a host, UCX between hosts; ucx: UCX for every peer (inside a "
     "host too); shm: shared memory only (all ranks on one host)",
     TT_CFG_ENUM, offsetof(links_settings_t, transports), links_choices},
};

const tt_config_table_t tt_links_config_table = {"links", links_fields, TT_ARRAY_SIZE(links_fields),
                                                 sizeof(links_settings_t)};

enum { VIA_NONE, VIA_SHM, VIA_UCX };

/* What settings @p s choose for a peer on this host or another (see tt_links_choice). */
static int via(const links_settings_t *s, int same_host)
{
    if (s->transports == LINKS_UCX || (s->transports == LINKS_AUTO && !same_host))
        return VIA_UCX;
    return same_host ? VIA_SHM : VIA_NONE;
}

const char *tt_links_choice(const tt_config_overrides_t *overrides, int same_host)
{
    static const char *const names[] = {[VIA_NONE] = NULL, [VIA_SHM] = "shm", [VIA_UCX] = "ucx"};
    links_settings_t settings;

    if (tt_config_load(&tt_links_config_table, overrides, &settings) != TUTTI_OK)
        return NULL;
    return names[via(&settings, same_host)];
}

/* The registered transport called @p name that can run here, or NULL (logged). */
static const tt_transport_ops_t *usable_transport(const char *name, const char *needed_for)
{
    char why[160] = "";

    for (size_t t = 0; tt_transports[t] != NULL; t++) {
        const tt_transport_ops_t *ops = tt_transports[t];
        if (strcmp(ops->name, name) != 0)
            continue;
        if (ops->size == sizeof(tt_transport_ops_t) && ops->available(why, sizeof(why)))
            return ops;
        tt_error("transport %s, needed %s, cannot run here: %s", name, needed_for, why);
        return NULL;
    }
    tt_error("transport %s, needed %s, is not built in (configure found no %s)", name, needed_for,
             name);
    return NULL;
}

/* Create, exchange addresses, connect, barrier, ready: one transport over @p peers. */
static tutti_status_t wire_up(tutti_comm_t comm, const tt_transport_ops_t *ops, const int *peers,
                              int npeers, int64_t deadline)
{
    tt_transport_params_t params = {comm->rank, comm->nranks,     peers,       npeers,
                                    comm->ctx,  &comm->overrides, comm->rails, comm->nrails};
    size_t size = ops->address_size;
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
    /* Everyone UCX serves (and this rank, whose address the others need). */
    for (int r = 0; r < comm->nranks; r++)
        if (via(&settings, c->places[r].host == host) == VIA_UCX || r == comm->rank)
            net_peers[nnet++] = r;
    if (inside == VIA_SHM) {
        if ((ops = usable_transport("shm", "inside a host")) == NULL)
            goto out;
        TT_CHECK_GOTO(wire_up(comm, ops, local, comm->local_ranks, deadline), status, out);
        log_route(comm, ops->name, local, comm->local_ranks);
    }
    /* Every rank takes part in wiring UCX when any rank needs it. */
    if (inside == VIA_UCX || c->nhosts > 1) {
        if ((ops = usable_transport("ucx", c->nhosts > 1 ? "between hosts"
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
