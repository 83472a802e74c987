/* Wiring transports between test ranks; see links.h. */
#include "config.h"

#include "tests/lib/links.h"
#include "util/time.h"

#include <stdlib.h>
#include <string.h>

static int64_t deadline_s(int s)
{
    return tt_deadline_after((int64_t)s * TT_NS_PER_S);
}

tutti_status_t tt_test_links_open(int rank, int n, const tutti_unique_id_t *uid,
                                  const tt_transport_ops_t *ops, const char *const (*settings)[2],
                                  tt_test_links_t *ls, void **address_p)
{
    tt_bootstrap_settings_t bs_settings = {20 * TT_NS_PER_S, "127.0.0.1:0"};
    tt_transport_params_t params = {.rank = rank, .nranks = n, .npeers = n, .comm_ctx = 0x1234};
    tt_bootstrap_id_t id;
    int *peers = malloc((size_t)n * sizeof(int));
    char *mine = NULL, *all = NULL;
    size_t size;
    tutti_status_t status = TUTTI_ERR_NO_MEMORY;

    memcpy(&id, uid->bytes, sizeof(id));
    memset(ls, 0, sizeof(*ls));
    if (peers == NULL)
        return status;
    for (int i = 0; settings != NULL && settings[i][0] != NULL; i++)
        tt_config_overrides_set(&ls->overrides, settings[i][0], settings[i][1]);
    for (int r = 0; r < n; r++)
        peers[r] = r;
    params.peers = peers;
    params.overrides = &ls->overrides;
    TT_CHECK_GOTO(tt_bootstrap_open(&id, rank, n, &bs_settings, 5 * TT_NS_PER_S, &ls->bs), status,
                  out);
    size = ops->address_size(&params);
    mine = calloc(1, size);
    all = calloc((size_t)n, size);
    if (mine == NULL || all == NULL)
        goto out;
    TT_CHECK_GOTO(ops->create(&params, mine, &ls->tl), status, out);
    TT_CHECK_GOTO(tt_bootstrap_allgather(ls->bs, 1, rank, n, NULL, mine, size, all, deadline_s(20)),
                  status, out);
    TT_CHECK_GOTO(ops->connect(ls->tl, all), status, out);
    TT_CHECK_GOTO(tt_bootstrap_allgather(ls->bs, 1, rank, n, NULL, NULL, 0, NULL, deadline_s(20)),
                  status, out);
    status = ops->ready(ls->tl);
    if (status == TUTTI_OK && address_p != NULL) {
        *address_p = mine;
        mine = NULL;
    }
out:
    free(mine);
    free(all);
    free(peers);
    return status;
}

void tt_test_links_close(tt_test_links_t *ls, int rank, int n)
{
    tt_bootstrap_allgather(ls->bs, 1, rank, n, NULL, NULL, 0, NULL, deadline_s(20));
    ls->tl->ops->destroy(ls->tl);
    tt_bootstrap_release(ls->bs, 0, deadline_s(20));
    tt_config_overrides_clear(&ls->overrides);
}

tutti_status_t tt_test_drive(tt_transport_t *tl, int count, int timeout_s)
{
    int64_t deadline = deadline_s(timeout_s);
    tutti_status_t first = TUTTI_OK;

    while (count > 0) {
        tt_xfer_t *done = NULL;
        tl->ops->progress(tl, &done);
        for (; done != NULL; done = done->next) {
            count--;
            if (done->status != TUTTI_OK && first == TUTTI_OK)
                first = done->status;
        }
        if (tt_time_ns() > deadline)
            return TUTTI_ERR_TIMEOUT;
    }
    return first;
}
