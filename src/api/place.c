/*
 * Where a communicator's ranks run, worked out at creation:
 *   1. every rank says which host it is on (host identity, pid);
 *   2. every rank describes its host with hwloc, knowing now its index among
 *      the host's ranks, and says where it sits (NUMA node, nearest NIC) and
 *      how many NICs the host has;
 *   3. these make the physical view (which ranks can share memory) and the
 *      planning view the algorithms read: the same, or the cluster
 *      described by TUTTI_CLUSTER_FILE (to plan as if the ranks were spread
 *      over hosts, e.g. to run hierarchical plans on one machine).
 */
#include "config.h"

#include "api/place.h"

#include "topo/topo.h"
#include "util/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct place_settings {
    char cluster_file[TT_CONFIG_STRING_MAX];
} place_settings_t;

static const tt_config_field_t place_fields[] = {
    {"CLUSTER_FILE", "",
     "plan collectives for this cluster description (hosts, ranks per host, NICs, link costs) "
     "instead of the discovered one; its rank count must match",
     TT_CFG_STRING, offsetof(place_settings_t, cluster_file), NULL},
};

const tt_config_table_t tt_place_config_table = {"place", place_fields, TT_ARRAY_SIZE(place_fields),
                                                 sizeof(place_settings_t)};

/* Step 1: what a rank says about its host. */
typedef struct host_card {
    tt_host_id_t host;
    int32_t pid;
} host_card_t;

/* Step 2: what a rank says about its place on the host. */
typedef struct place_card {
    int32_t numa;
    int32_t nic;   /* its rail: index among the host's rail NICs, -1 if none */
    int32_t nnics; /* the host's rails */
} place_card_t;

/*
 * Number hosts in order of their first rank (first[h]), ranks within a host
 * in rank order (size[h] counts them).
 */
static void number_hosts(const host_card_t *cards, int n, tt_rank_place_t *places, int *nhosts_p,
                         int *first, int *size)
{
    int nhosts = 0;
    for (int r = 0; r < n; r++) {
        int h = 0;
        while (h < nhosts && !tt_host_same(&cards[first[h]].host, &cards[r].host))
            h++;
        if (h == nhosts) {
            first[nhosts++] = r;
            size[h] = 0;
        }
        places[r] = (tt_rank_place_t){h, size[h]++, -1, -1};
    }
    *nhosts_p = nhosts;
}

static int is_rdma(const tt_nic_t *nic)
{
    return nic->kind == TT_NIC_INFINIBAND || nic->kind == TT_NIC_ROCE;
}

/*
 * Rails are the NICs collectives spread over: the RDMA ones when the host has
 * any (a management Ethernet port is not a rail), else all of them. Returns
 * how many there are, writes the first TT_TRANSPORT_MAX_RAILS to @p rails
 * (for the transports) and, in @p rail_p, the rail of NIC @p nic (-1 if none).
 */
static int count_rails(const tt_host_topo_t *topo, int nic, tt_rail_t *rails, int *rail_p)
{
    int rdma = 0, n = 0;
    for (int i = 0; i < topo->nnics; i++)
        rdma += is_rdma(&topo->nics[i]);
    *rail_p = -1;
    for (int i = 0; i < topo->nnics; i++) {
        const tt_nic_t *x = &topo->nics[i];
        if (rdma > 0 && !is_rdma(x))
            continue;
        if (i == nic)
            *rail_p = n;
        if (n < TT_TRANSPORT_MAX_RAILS) {
            tt_rail_t *rail = &rails[n];
            memset(rail, 0, sizeof(*rail));
            if (strcmp(x->name, x->netdev) != 0) /* the name is the RDMA device's */
                snprintf(rail->device, sizeof(rail->device), "%s", x->name);
            snprintf(rail->netdev, sizeof(rail->netdev), "%s", x->netdev);
        }
        n++;
    }
    return n;
}

static tutti_status_t discover_place(tutti_comm_t comm, const tt_rank_place_t *mine,
                                     int local_ranks, place_card_t *card)
{
    tt_topo_settings_t settings;
    tt_host_topo_t *topo = malloc(sizeof(*topo));
    tutti_status_t status;

    if (topo == NULL)
        return TUTTI_ERR_NO_MEMORY;
    status = tt_config_load(&tt_topo_config_table, &comm->overrides, &settings);
    if (status == TUTTI_OK)
        status = tt_topo_discover(&settings, mine->local, local_ranks, topo);
    if (status == TUTTI_OK) {
        card->numa = topo->my_numa;
        card->nnics = count_rails(topo, topo->my_nic, comm->rails, &card->nic);
        tt_debug("place: NUMA %d, NIC %s of %d on host %s", topo->my_numa,
                 topo->my_nic >= 0 ? topo->nics[topo->my_nic].name : "none", topo->nnics,
                 topo->id.hostname);
    }
    free(topo);
    return status;
}

static tutti_status_t planning_view(tutti_comm_t comm)
{
    place_settings_t settings;
    FILE *f;
    tutti_status_t status;

    TT_CHECK(tt_config_load(&tt_place_config_table, &comm->overrides, &settings));
    if (settings.cluster_file[0] == '\0')
        return tt_cluster_copy(&comm->cluster, &comm->hosts);
    comm->cluster_from_file = 1;
    f = fopen(settings.cluster_file, "r");
    if (f == NULL) {
        tt_error("TUTTI_CLUSTER_FILE=%s cannot be opened", settings.cluster_file);
        return TUTTI_ERR_INVALID_ARG;
    }
    status = tt_cluster_parse(&comm->cluster, f, settings.cluster_file);
    fclose(f);
    if (status == TUTTI_OK && comm->cluster.nranks != comm->nranks) {
        tt_error("TUTTI_CLUSTER_FILE=%s describes %d ranks, the communicator has %d",
                 settings.cluster_file, comm->cluster.nranks, comm->nranks);
        tt_cluster_fini(&comm->cluster);
        status = TUTTI_ERR_INVALID_ARG;
    }
    return status;
}

tutti_status_t tt_comm_place(tutti_comm_t comm, int64_t deadline)
{
    int n = comm->nranks, nhosts, rails = 0;
    host_card_t mine = {0}, *hosts = malloc((size_t)n * sizeof(*hosts));
    place_card_t *cards = malloc((size_t)n * sizeof(*cards)), my_card = {-1, -1, 0};
    tt_rank_place_t *places = malloc((size_t)n * sizeof(*places));
    int *first = malloc((size_t)n * sizeof(int)), *size = calloc((size_t)n, sizeof(int));
    tutti_status_t status = TUTTI_ERR_NO_MEMORY;

    if (hosts == NULL || cards == NULL || places == NULL || first == NULL || size == NULL)
        goto out;
    TT_CHECK_GOTO(tt_host_identify(&mine.host), status, out);
    mine.pid = (int32_t)getpid();
    TT_CHECK_GOTO(tt_bootstrap_allgather(comm->bs, comm->ctx, comm->rank, n, comm->session_ranks,
                                         &mine, sizeof(mine), hosts, deadline),
                  status, out);
    number_hosts(hosts, n, places, &nhosts, first, size);
    comm->local_ranks = size[places[comm->rank].host];
    comm->machine_ranks = 0;
    for (int r = 0; r < n; r++)
        comm->machine_ranks += tt_host_same_machine(&hosts[r].host, &mine.host);
    TT_CHECK_GOTO(discover_place(comm, &places[comm->rank], comm->local_ranks, &my_card), status,
                  out);
    TT_CHECK_GOTO(tt_bootstrap_allgather(comm->bs, comm->ctx, comm->rank, n, comm->session_ranks,
                                         &my_card, sizeof(my_card), cards, deadline),
                  status, out);
    for (int r = 0; r < n; r++) {
        places[r].numa = cards[r].numa;
        places[r].nic = cards[r].nic;
        /* Rails: the NICs every host has. */
        if (r == 0 || cards[r].nnics < rails)
            rails = cards[r].nnics;
    }
    comm->nrails = TT_MIN(rails, TT_TRANSPORT_MAX_RAILS);
    TT_CHECK_GOTO(tt_cluster_init(&comm->hosts, n, places, rails, NULL), status, out);
    status = planning_view(comm);
out:
    free(hosts);
    free(cards);
    free(places);
    free(first);
    free(size);
    return status;
}
