/*
 * The transport interface. A transport moves bytes between this rank and
 * some of its peers and reports when a peer or link fails; it knows nothing
 * about collectives (it includes nothing from src/plan, src/coll or src/api).
 *
 * Semantics every transport provides:
 * - Messages, ordered per (peer, channel, direction): the n-th receive
 *   posted for a peer on a channel matches the n-th send that peer posted to
 *   us on that channel. Plans pair each send with a receive on its channel,
 *   so a transport may also carry every channel on one ordered link (the
 *   in-memory test transport fails a pair whose channels differ). No tags
 *   are needed for matching; each message carries a 64-bit tag that the
 *   receiver checks against the one it expects, so ranks that disagree about which
 *   collective they are in get TUTTI_ERR_PROTOCOL, not corrupt data.
 * - The length of a receive equals the length of the matching send; a
 *   mismatch is TUTTI_ERR_PROTOCOL. Zero-length messages are valid.
 * - Nothing blocks: send and recv post, progress moves and completes.
 * - A send's buffer may be reused once the send completes.
 * - Failures complete the affected transfers with a failure-range status
 *   and are reported by check_peers; policy (retry, reroute, abort) is the
 *   caller's.
 *
 * Lifecycle (per communicator): create -> exchange the address blob through
 * the bootstrap -> connect -> bootstrap barrier -> ready -> ... -> destroy.
 */
#ifndef TT_TRANSPORTS_TRANSPORT_H
#define TT_TRANSPORTS_TRANSPORT_H

#include "util/config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

/* Send flag: the receiver will combine this data, not store it (protocol hint). */
#define TT_XFER_TO_REDUCE 1u

struct tt_xfer;

/*
 * Receives only: instead of copying arriving data to buf, the transport may
 * hand it over piece by piece (pieces in order, each a multiple of 64 bytes
 * but the last). The data is valid during the call only.
 */
typedef void (*tt_xfer_consume_fn_t)(struct tt_xfer *x, const void *data, size_t offset,
                                     size_t len);

/* One message in flight. The caller owns the memory; the transport links it. */
typedef struct tt_xfer {
    void *buf;                    /* data to send, or where to receive */
    size_t len;                   /* bytes */
    int peer;                     /* communicator rank of the other side */
    int channel;                  /* the plan's channel: a transport may give each its own link */
    unsigned flags;               /* TT_XFER_* */
    uint64_t tag;                 /* checked by the receiver (see above) */
    tt_xfer_consume_fn_t consume; /* receives: NULL, or who takes the data */
    void *owner;                  /* the caller's object */
    uint64_t user;                /* the caller's cookie */
    tutti_status_t status;        /* TUTTI_IN_PROGRESS until complete */
    /* transport-private */
    struct tt_xfer *next;
    size_t offset;
    uint64_t ordinal;
} tt_xfer_t;

/* A FIFO of transfers linked through their next field, for transports' queues. */
typedef struct tt_xfer_queue {
    tt_xfer_t *head, *tail;
} tt_xfer_queue_t;

static inline void tt_xfer_queue_push(tt_xfer_queue_t *q, tt_xfer_t *x)
{
    x->next = NULL;
    if (q->tail != NULL)
        q->tail->next = x;
    else
        q->head = x;
    q->tail = x;
}

/* Remove and return the oldest transfer; the queue must not be empty. */
static inline tt_xfer_t *tt_xfer_queue_pop(tt_xfer_queue_t *q)
{
    tt_xfer_t *x = q->head;
    q->head = x->next;
    if (q->head == NULL)
        q->tail = NULL;
    return x;
}

/* Mark @p x complete with @p status and push it on the @p done list. */
static inline void tt_xfer_complete(tt_xfer_t *x, tutti_status_t status, tt_xfer_t **done)
{
    x->status = status;
    x->next = *done;
    *done = x;
}

#define TT_LINK_REASON_MAX 160

/* A peer or link that went bad. */
typedef struct tt_link_event {
    int peer;
    tutti_status_t status; /* TUTTI_ERR_PEER_FAILED or TUTTI_ERR_LINK_FAILED */
    char reason[TT_LINK_REASON_MAX];
} tt_link_event_t;

#define TT_TRANSPORT_MAX_RAILS 8

/* One of the host's rails: a NIC the communicator's channels spread over. */
typedef struct tt_rail {
    char device[32]; /* RDMA device (mlx5_0), "" if none */
    char netdev[32]; /* network interface (eth2, rail0), "" if none */
} tt_rail_t;

typedef struct tt_transport_params {
    int rank;         /* this rank in the communicator */
    int nranks;       /* size of the communicator */
    const int *peers; /* ranks this instance serves, ascending, this rank included */
    int npeers;
    uint64_t comm_ctx; /* unique per communicator (names, tags) */
    const tt_config_overrides_t *overrides;
    /* This host's rails, as many as every host of the communicator has (0 if
     * unknown): a plan's channel c travels on rail c mod nrails. */
    const tt_rail_t *rails;
    int nrails;
} tt_transport_params_t;

/*
 * Where each communicator rank stands in @p params->peers: an array of
 * params->nranks entries, the index or -1 for ranks this instance does not
 * serve (free() it). NULL if memory ran out.
 */
static inline int *tt_peer_index_build(const tt_transport_params_t *params)
{
    int *index = malloc((size_t)params->nranks * sizeof(int));

    if (index == NULL)
        return NULL;
    for (int r = 0; r < params->nranks; r++)
        index[r] = -1;
    for (int i = 0; i < params->npeers; i++)
        index[params->peers[i]] = i;
    return index;
}

/* @p rank's entry in @p index (of @p nranks entries); -1 also for a rank out of range. */
static inline int tt_peer_index_of(const int *index, int nranks, int rank)
{
    return rank >= 0 && rank < nranks ? index[rank] : -1;
}

/* Base of every transport instance; private state embeds it first. */
typedef struct tt_transport {
    const struct tt_transport_ops *ops;
} tt_transport_t;

typedef struct tt_transport_ops {
    size_t size;      /* sizeof(tt_transport_ops_t) the transport was built with */
    const char *name; /* "shm", ... */
    const tt_config_table_t *config;
    /* Bytes of the address blob create() writes; the same on every rank of a communicator. */
    size_t (*address_size)(const struct tt_transport_params *params);

    /* Whether the transport can run on this machine; if not, why (one line). */
    int (*available)(char *why, size_t why_size);

    /* Make an instance for one communicator and write this rank's address blob. */
    tutti_status_t (*create)(const tt_transport_params_t *params, void *address,
                             tt_transport_t **tl_p);

    /* Attach to every peer: @p addresses holds npeers blobs in params->peers order. */
    tutti_status_t (*connect)(tt_transport_t *tl, const void *addresses);

    /* Every peer has connected (a barrier passed): drop set-up state such as names. */
    tutti_status_t (*ready)(tt_transport_t *tl);

    void (*destroy)(tt_transport_t *tl);

    /* Post a transfer; the status turns final in progress(). */
    tutti_status_t (*send)(tt_transport_t *tl, tt_xfer_t *x);
    tutti_status_t (*recv)(tt_transport_t *tl, tt_xfer_t *x);

    /*
     * Move posted transfers. Completed ones are pushed onto *done (linked by
     * next). Returns how many made progress (0: nothing happened).
     */
    int (*progress)(tt_transport_t *tl, tt_xfer_t **done);

    /* Look for failed peers; fill up to @p max events, return how many. */
    int (*check_peers)(tt_transport_t *tl, tt_link_event_t *events, int max);

    /* Fail every posted transfer with @p status (the communicator is giving up). */
    void (*cancel_all)(tt_transport_t *tl, tutti_status_t status, tt_xfer_t **done);
} tt_transport_ops_t;

/* The registered transports, in preference order, NULL-terminated. */
extern const tt_transport_ops_t *const tt_transports[];

/* The registered transport called @p name, or NULL (not built in). */
const tt_transport_ops_t *tt_transport_find(const char *name);

/*
 * The registered transport called @p name if it can run on this machine;
 * else NULL, with the reason (not built in, no device, ...) in @p why.
 */
const tt_transport_ops_t *tt_transport_runnable(const char *name, char *why, size_t why_size);

#endif
