/* The communicator behind the public handle, and its internal lifecycle. */
#ifndef TT_API_COMM_H
#define TT_API_COMM_H

#include "bootstrap/bootstrap.h"
#include "coll/plan_cache.h"
#include "coll/select.h"
#include "exec/engine.h"
#include "health/health.h"
#include "reduce/reduce.h"

#include <pthread.h>
#include <stdatomic.h>

#define TT_MAX_TRANSPORTS 4

/* Sends and receives collected between tutti_group_start() and tutti_group_end(). */
typedef struct tt_p2p_group {
    pthread_mutex_t lock;
    int open;           /* a group is being collected */
    tt_p2p_msg_t *msgs; /* offsets hold the buffers' addresses until the group is posted */
    size_t n, cap;
} tt_p2p_group_t;

struct tutti_comm {
    int rank, nranks;
    int local_ranks;       /* ranks on this host, this one included */
    int machine_ranks;     /* ranks on this machine's cores (hosts can share one) */
    uint64_t ctx;          /* unique per communicator: bootstrap context, names, tags */
    atomic_uint split_seq; /* splits so far: part of children's contexts */
    atomic_int refs;       /* the handle, plus one per outstanding request */
    tt_bootstrap_t *bs;
    int *session_ranks; /* communicator rank -> rank in the bootstrap session */
    tt_config_overrides_t overrides;
    tt_cluster_t hosts;                      /* where every rank physically runs */
    tt_cluster_t cluster;                    /* the view plans are made for (usually the same) */
    int cluster_from_file;                   /* cluster is TUTTI_CLUSTER_FILE's, not hosts */
    tt_rail_t rails[TT_TRANSPORT_MAX_RAILS]; /* this host's rails, for the transports */
    int nrails;                              /* as many as every host has (hosts.rails) */
    tt_selector_t selector;                  /* how calls pick their algorithm */
    tt_engine_settings_t exec;
    tt_reduce_fn_t kernels[TUTTI_NUM_DATATYPES][TUTTI_NUM_OPS];
    tt_transport_t *transports[TT_MAX_TRANSPORTS];
    int ntransports;
    tt_transport_t **route; /* per communicator rank: the transport to reach it */
    tt_health_t health;
    tt_engine_t engine;
    tt_plan_cache_t plans;
    tt_p2p_group_t group;
};

/*
 * Build a communicator over an open bootstrap session (its reference moves
 * into the communicator, even on failure). Collective over the members.
 * @p session_ranks (malloc'd, ownership moves too) maps ranks to session ranks.
 */
tutti_status_t tt_comm_create(tt_bootstrap_t *bs, int rank, int nranks, int *session_ranks,
                              uint64_t ctx, const tt_config_overrides_t *overrides,
                              tutti_comm_t *comm_p);

/* 1 if @p comm is a live communicator of this process. */
int tt_comm_valid(tutti_comm_t comm);

/* Drop a reference; the last one frees the memory. */
void tt_comm_release(tutti_comm_t comm);

#endif
