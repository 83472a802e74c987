/* Failure detection and propagation for one communicator; see health.h. */
#include "config.h"

#include "health/health.h"

#include "util/log.h"
#include "util/time.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void tt_health_init(tt_health_t *h, tt_bootstrap_t *bs, const int *session_ranks, int rank,
                    int nranks, tt_transport_t *const *transports, int ntransports,
                    int64_t interval_ns)
{
    memset(h, 0, sizeof(*h));
    h->bs = bs;
    h->session_ranks = session_ranks;
    h->rank = rank;
    h->nranks = nranks;
    h->transports = transports;
    h->ntransports = ntransports;
    h->interval_ns = interval_ns;
    h->status = TUTTI_OK;
    h->culprit = -1;
}

static void record(tt_health_t *h, tutti_status_t status, int peer, const char *reason)
{
    if (h->status != TUTTI_OK)
        return;
    h->status = status;
    h->culprit = peer;
    snprintf(h->reason, sizeof(h->reason), "%s", reason);
    if (peer >= 0)
        tt_error("rank %d: %s (%s)", peer, reason, tutti_status_string(status));
    else
        tt_error("%s (%s)", reason, tutti_status_string(status));
}

void tt_health_fail(tt_health_t *h, tutti_status_t status, int peer, const char *fmt, ...)
{
    char reason[256];
    va_list ap;

    if (h->status != TUTTI_OK)
        return;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    record(h, status, peer, reason);
    tt_bootstrap_report_failure(h->bs, h->session_ranks[peer >= 0 ? peer : h->rank], reason);
}

tutti_status_t tt_health_check(tt_health_t *h, int force)
{
    tt_link_event_t events[8];
    const char *reason;
    int64_t now;
    int member;

    if (h->status != TUTTI_OK)
        return h->status;
    now = tt_time_ns();
    if (!force && now < h->next_check)
        return TUTTI_OK;
    h->next_check = now + h->interval_ns;

    for (int t = 0; t < h->ntransports && h->status == TUTTI_OK; t++) {
        int n = h->transports[t]->ops->check_peers(h->transports[t], events, 8);
        if (n > 0)
            tt_health_fail(h, events[0].status, events[0].peer, "%s link: %s",
                           h->transports[t]->ops->name, events[0].reason);
    }
    if (h->status != TUTTI_OK)
        return h->status;
    tt_bootstrap_poll(h->bs);
    member = tt_bootstrap_failed_member(h->bs, h->session_ranks, h->nranks, &reason);
    if (member >= 0)
        record(h, TUTTI_ERR_PEER_FAILED, member, reason);
    return h->status;
}
