/*
 * Bootstrap: how ranks find each other and agree on setup data.
 *
 * Rank 0 serves a rendezvous (root.c) on the address of the job's unique id;
 * every rank, rank 0 included, keeps one authenticated TCP connection to it
 * for the life of its communicators (a session). Over it run:
 *   - all-gathers of setup data (transport addresses, host identity), per
 *     context: every communicator has its own 64-bit context id;
 *   - the failure notices: when a rank's connection drops (or a rank reports
 *     a dead peer, or aborts) the root tells every survivor.
 * The data plane never depends on this connection; it is the control channel
 * that outlives failed data links.
 */
#ifndef TT_BOOTSTRAP_BOOTSTRAP_H
#define TT_BOOTSTRAP_BOOTSTRAP_H

#include "bootstrap/sock.h"
#include "bootstrap/wire.h"
#include "util/config.h"

#include <stdint.h>

typedef struct tt_bootstrap_settings {
    int64_t timeout_ns;                 /* every rank must arrive within this */
    char address[TT_CONFIG_STRING_MAX]; /* where tutti_get_unique_id listens */
} tt_bootstrap_settings_t;

extern const tt_config_table_t tt_bootstrap_config_table;

#define TT_BOOTSTRAP_ID_MAGIC 0x74747469u /* "ttti" */

/* The contents of a tutti_unique_id_t. */
typedef struct tt_bootstrap_id {
    uint32_t magic;
    uint32_t version;
    char address[TT_ADDR_TEXT_MAX];
    unsigned char secret[TT_WIRE_SECRET_BYTES];
} tt_bootstrap_id_t;

/*
 * Make an id with a random secret, listening on @p listen_address (port 0:
 * any). The listening socket is kept for rank 0's tt_bootstrap_open() in
 * this process or in a child forked from it.
 */
tutti_status_t tt_bootstrap_id_create(const char *listen_address, tt_bootstrap_id_t *id);

/* Make an id for a known address and secret (launchers, environment). */
tutti_status_t tt_bootstrap_id_init(const char *address, const void *secret, size_t secret_len,
                                    tt_bootstrap_id_t *id);

typedef struct tt_bootstrap tt_bootstrap_t;

/*
 * Join the job as @p rank of @p nranks: rank 0 starts the root first. Returns
 * once this rank is authenticated; arrival of the others is awaited by the
 * first all-gather. @p failure_timeout_ns tunes keep-alive on the connection.
 */
tutti_status_t tt_bootstrap_open(const tt_bootstrap_id_t *id, int rank, int nranks,
                                 const tt_bootstrap_settings_t *settings,
                                 int64_t failure_timeout_ns, tt_bootstrap_t **bs_p);

/* Another communicator shares this session. */
void tt_bootstrap_retain(tt_bootstrap_t *bs);

/*
 * Drop a reference; the last one says goodbye (or, with @p abort, tells the
 * root this rank abandons the job), closes the connection, and on rank 0
 * waits until @p deadline for the other ranks to leave before stopping the root.
 */
void tt_bootstrap_release(tt_bootstrap_t *bs, int abort, int64_t deadline);

/* This rank's number and the number of ranks in the session (the world). */
int tt_bootstrap_rank(const tt_bootstrap_t *bs);
int tt_bootstrap_nranks(const tt_bootstrap_t *bs);

/*
 * All-gather @p len bytes from each of @p nmembers members of context
 * @p ctx into @p all (member order). @p session_ranks maps members to session
 * ranks (NULL: member i is rank i), so that a notice about a failed member
 * ends the wait at once with TUTTI_ERR_PEER_FAILED. Other errors:
 * TUTTI_ERR_TIMEOUT (deadline or missing ranks at start-up), TUTTI_ERR_BOOTSTRAP.
 */
tutti_status_t tt_bootstrap_allgather(tt_bootstrap_t *bs, uint64_t ctx, int member, int nmembers,
                                      const int *session_ranks, const void *mine, size_t len,
                                      void *all, int64_t deadline);

/* Read pending notices without blocking; does nothing if another thread is reading. */
void tt_bootstrap_poll(tt_bootstrap_t *bs);

/*
 * The first member of @p session_ranks (NULL: identity over @p nmembers)
 * known to have failed, or -1. @p reason_p (optional) receives why.
 */
int tt_bootstrap_failed_member(tt_bootstrap_t *bs, const int *session_ranks, int nmembers,
                               const char **reason_p);

/* Tell the root (and through it everyone) that @p session_rank failed. */
void tt_bootstrap_report_failure(tt_bootstrap_t *bs, int session_rank, const char *reason);

/* The root's half, started by rank 0 inside tt_bootstrap_open(). */
typedef struct tt_bootstrap_root tt_bootstrap_root_t;

tutti_status_t tt_bootstrap_root_start(int listen_fd, int nranks,
                                       const unsigned char secret[TT_WIRE_SECRET_BYTES],
                                       int64_t arrival_timeout_ns, int64_t failure_timeout_ns,
                                       tt_bootstrap_root_t **root_p);

/* Wait until every rank has left or @p deadline passes, then stop and free the root. */
void tt_bootstrap_root_stop(tt_bootstrap_root_t *root, int64_t deadline);

#endif
