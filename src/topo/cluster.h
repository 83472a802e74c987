/*
 * The cluster view: which ranks share a host, where each sits (NUMA node,
 * nearest NIC), how many rails (NICs usable side by side on every host), and
 * what a byte costs on each class of link. Algorithms (src/coll) read it to
 * order rings and trees; the cost model (src/plan/cost.h) prices plans with
 * it. It comes from the ranks' own discovery at communicator creation, or
 * from a small description of a cluster we do not have (tutti-topo, tests):
 *
 *   # 2048 hosts of 8 ranks and 8 NICs
 *   hosts 2048
 *   ranks_per_host 8
 *   nics_per_host 8
 *   link shm alpha=0.5us beta=40G      # within a host, per rank pair
 *   link net alpha=3us beta=25G        # between hosts, per NIC (bytes/s)
 *   reduce gamma=20G                   # bytes/s a rank combines
 */
#ifndef TT_TOPO_CLUSTER_H
#define TT_TOPO_CLUSTER_H

#include "util/compiler.h"

#include <stdint.h>
#include <stdio.h>

typedef enum tt_link_class {
    TT_LINK_SHM, /* two ranks on one host */
    TT_LINK_NET, /* two hosts, through one NIC each */
    TT_LINK_CLASSES,
} tt_link_class_t;

extern const char *const tt_link_class_names[TT_LINK_CLASSES];

/* Alpha-beta-gamma costs: a message of n bytes on a link takes alpha + n / beta. */
typedef struct tt_cost_model {
    double alpha[TT_LINK_CLASSES]; /* seconds per message */
    double beta[TT_LINK_CLASSES];  /* bytes per second per link */
    double gamma;                  /* bytes per second one rank combines */
} tt_cost_model_t;

/* Defaults: shared memory and a 200 Gbit/s-class NIC, as on a current training host. */
extern const tt_cost_model_t tt_cost_model_default;

typedef struct tt_rank_place {
    int32_t host;  /* index of the host, in order of the hosts' first ranks */
    int32_t local; /* index among the host's ranks, in rank order */
    int32_t numa;  /* NUMA node on that host, -1 unknown */
    int32_t nic;   /* its rail: index among its host's rail NICs, -1 none */
} tt_rank_place_t;

typedef struct tt_cluster {
    int nranks, nhosts;
    tt_rank_place_t *places; /* per rank */
    int *host_start;         /* ranks of host h: host_ranks[host_start[h] .. host_start[h+1]) */
    int *host_ranks;         /* in local order */
    int ranks_per_host;      /* when every host has the same number, else 0 */
    int rails;               /* NICs every host has (at least 1: a host without NICs counts as 1) */
    tt_cost_model_t cost;
} tt_cluster_t;

/*
 * Build the view from every rank's place. places[r].host must number hosts
 * 0.. in order of their first rank and places[r].local count within a host
 * in rank order; @p rails is the smallest NIC count over the hosts.
 */
tutti_status_t tt_cluster_init(tt_cluster_t *c, int nranks, const tt_rank_place_t *places,
                               int rails, const tt_cost_model_t *cost);

/* A cluster of @p nhosts identical hosts of @p per_host ranks and @p nics NICs (rank r on host r /
 * per_host). */
tutti_status_t tt_cluster_uniform(tt_cluster_t *c, int nhosts, int per_host, int nics,
                                  const tt_cost_model_t *cost);

/* Read a description (format above). Errors name the line. */
tutti_status_t tt_cluster_parse(tt_cluster_t *c, FILE *in, const char *name);

/* A deep copy of @p src into @p dst. */
tutti_status_t tt_cluster_copy(tt_cluster_t *dst, const tt_cluster_t *src);

void tt_cluster_fini(tt_cluster_t *c);

/* The class of the link between ranks @p a and @p b. */
static inline tt_link_class_t tt_cluster_link(const tt_cluster_t *c, int a, int b)
{
    return c->places[a].host == c->places[b].host ? TT_LINK_SHM : TT_LINK_NET;
}

/* Rank of the @p local-th rank of host @p host. */
static inline int tt_cluster_rank(const tt_cluster_t *c, int host, int local)
{
    return c->host_ranks[c->host_start[host] + local];
}

/* Number of ranks on host @p host. */
static inline int tt_cluster_host_size(const tt_cluster_t *c, int host)
{
    return c->host_start[host + 1] - c->host_start[host];
}

/* Print the view (hosts, ranks per host, rails, costs) to @p out. */
void tt_cluster_print(const tt_cluster_t *c, FILE *out);

#endif
