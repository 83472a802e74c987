/*
 * The health of a communicator: the one place that decides it has failed.
 * Sources: link events from the transports (a local peer process exited, a
 * link broke), failure notices from the bootstrap (a rank anywhere died,
 * aborted or was reported), and failures the engine finds itself (a failed
 * transfer, a passed deadline). The first failure sticks; it is reported to
 * the bootstrap root so that every other rank learns it at once instead of
 * waiting on a peer that will never answer.
 *
 * This is where link rerouting will hook in (FAULTS.md): today every failure
 * is fatal for the communicator.
 */
#ifndef TT_HEALTH_HEALTH_H
#define TT_HEALTH_HEALTH_H

#include "bootstrap/bootstrap.h"
#include "transports/transport.h"

typedef struct tt_health {
    tt_bootstrap_t *bs;
    const int *session_ranks; /* communicator rank -> session rank */
    int rank, nranks;
    tt_transport_t *const *transports;
    int ntransports;
    int64_t interval_ns, next_check;
    tutti_status_t status; /* TUTTI_OK until the first failure */
    int culprit;           /* communicator rank to blame, or -1 */
    char reason[256];
} tt_health_t;

void tt_health_init(tt_health_t *h, tt_bootstrap_t *bs, const int *session_ranks, int rank,
                    int nranks, tt_transport_t *const *transports, int ntransports,
                    int64_t interval_ns);

/*
 * Look for news (at most once per interval unless @p force) and return the
 * communicator's status: TUTTI_OK or its first failure.
 */
tutti_status_t tt_health_check(tt_health_t *h, int force);

/*
 * Record a failure found by the caller. @p peer is the communicator rank at
 * fault (it is reported as failed), or -1 when this rank gives up on its own
 * account (then this rank is reported, so the others stop waiting for it).
 */
void tt_health_fail(tt_health_t *h, tutti_status_t status, int peer, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
