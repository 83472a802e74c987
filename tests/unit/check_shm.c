/*
 * The shared-memory transport on its own, between forked processes: every
 * message size around the slot and single-copy boundaries, both protocols,
 * receives that consume data piece by piece, ordering with many messages in
 * flight, mismatched messages, a dying peer, and the segments' privacy and
 * clean-up.
 */
#include "config.h"

#include "bootstrap/bootstrap.h"
#include "tests/lib/ranks.h"
#include "tests/lib/unit.h"
#include "transports/shm/segment.h"
#include "transports/shm/shm.h"
#include "util/time.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct shm_case {
    const char *cma; /* TUTTI_SHM_CMA */
    const char *slot_size;
    const char *slots;
} shm_case_t;

static const shm_case_t cases[] = {
    {"on", "32K", "16"},
    {"off", "32K", "16"},
    {"on", "64", "2"}, /* tiny FIFO: every message wraps around it many times */
};

typedef struct link_set {
    tt_bootstrap_t *bs;
    tt_transport_t *tl;
    tt_config_overrides_t overrides;
} link_set_t;

static int64_t deadline_s(int s)
{
    return tt_deadline_after((int64_t)s * TT_NS_PER_S);
}

/* Join the job and wire a shm transport to every rank (all on this host). */
static tutti_status_t open_links(int rank, int n, const tutti_unique_id_t *uid, const shm_case_t *c,
                                 link_set_t *ls)
{
    tt_bootstrap_settings_t bs_settings = {20 * TT_NS_PER_S, "127.0.0.1:0"};
    tt_bootstrap_id_t id;
    const tt_transport_ops_t *ops = &tt_shm_transport_ops;
    int peers[16];
    char *mine, *all;
    struct stat st;
    char path[80];

    memcpy(&id, uid->bytes, sizeof(id));
    memset(ls, 0, sizeof(*ls));
    tt_config_overrides_set(&ls->overrides, "SHM_CMA", c->cma);
    tt_config_overrides_set(&ls->overrides, "SHM_SLOT_SIZE", c->slot_size);
    tt_config_overrides_set(&ls->overrides, "SHM_SLOTS", c->slots);
    for (int r = 0; r < n; r++)
        peers[r] = r;
    TT_CHECK(tt_bootstrap_open(&id, rank, n, &bs_settings, 5 * TT_NS_PER_S, &ls->bs));
    {
        tt_transport_params_t params = {rank, n, peers, n, 0x1234, &ls->overrides};
        mine = calloc(1, ops->address_size);
        all = calloc((size_t)n, ops->address_size);
        TT_CHECK(ops->create(&params, mine, &ls->tl));
    }
    /* The segment exists now, private to us; after ready() its name is gone. */
    snprintf(path, sizeof(path), "/dev/shm/%s", mine);
    if (stat(path, &st) != 0 || (st.st_mode & 0777) != 0600) {
        tt_fail(rank, "segment %s missing or not mode 0600", path);
        return TUTTI_ERR_INTERNAL;
    }
    TT_CHECK(tt_bootstrap_allgather(ls->bs, 1, rank, n, NULL, mine, ops->address_size, all,
                                    deadline_s(20)));
    TT_CHECK(ops->connect(ls->tl, all));
    TT_CHECK(tt_bootstrap_allgather(ls->bs, 1, rank, n, NULL, NULL, 0, NULL, deadline_s(20)));
    TT_CHECK(ops->ready(ls->tl));
    if (stat(path, &st) == 0) {
        tt_fail(rank, "segment %s still has a name after ready()", path);
        return TUTTI_ERR_INTERNAL;
    }
    free(mine);
    free(all);
    return TUTTI_OK;
}

/* Wait for every rank (nobody frees memory a peer still reads), then tear down. */
static void close_links(link_set_t *ls, int rank, int n)
{
    tt_bootstrap_allgather(ls->bs, 1, rank, n, NULL, NULL, 0, NULL, deadline_s(20));
    ls->tl->ops->destroy(ls->tl);
    tt_bootstrap_release(ls->bs, 0, deadline_s(20));
    tt_config_overrides_clear(&ls->overrides);
}

/* Progress until every transfer in @p xs is complete; returns the first bad status. */
static tutti_status_t drive(tt_transport_t *tl, tt_xfer_t *xs, int count)
{
    int64_t deadline = deadline_s(30);
    int left = count;
    tutti_status_t first = TUTTI_OK;

    while (left > 0) {
        tt_xfer_t *done = NULL;
        tl->ops->progress(tl, &done);
        for (; done != NULL; done = done->next) {
            left--;
            if (done->status != TUTTI_OK && first == TUTTI_OK)
                first = done->status;
        }
        if (tt_time_ns() > deadline)
            return TUTTI_ERR_TIMEOUT;
    }
    (void)xs;
    return first;
}

static unsigned char pattern(int from, int to, size_t msg, size_t i)
{
    return (unsigned char)(from * 131 + to * 31 + msg * 7 + i * 13 + (i >> 9));
}

/* A consumer that copies pieces into buf and checks they arrive in order, 64-byte multiples. */
static void copy_consumer(tt_xfer_t *x, const void *data, size_t offset, size_t len)
{
    size_t *expected_offset = x->owner;
    if (offset != *expected_offset || (len % 64 != 0 && offset + len != x->len))
        x->user = 1; /* flag a broken piece */
    memcpy((char *)x->buf + offset, data, len);
    *expected_offset = offset + len;
}

static const size_t sizes[] = {
    0, 1, 63, 64, 65, 2047, 32767, 32768, 32769, 64 * 1024 - 1, 64 * 1024, 3 * 32768 + 5, 1000003};

/* Every rank sends every size to every other rank, all posted at once, both ways. */
static int exchange_rank(int rank, int n, const tutti_unique_id_t *uid, void *arg)
{
    const shm_case_t *c = arg;
    size_t nsizes = TT_ARRAY_SIZE(sizes), per_peer = 2 * nsizes;
    size_t nx = per_peer * (size_t)(n - 1) * 2;
    tt_xfer_t *xs = calloc(nx, sizeof(*xs));
    size_t *offsets = calloc(nx, sizeof(size_t));
    unsigned char **bufs = calloc(nx, sizeof(*bufs));
    link_set_t ls;
    size_t k = 0;
    tutti_status_t status;

    if (open_links(rank, n, uid, c, &ls) != TUTTI_OK)
        return tt_fail(rank, "cannot open the links");
    for (int peer = 0; peer < n; peer++) {
        if (peer == rank)
            continue;
        /* Each size twice: once received plainly, once through a consumer. */
        for (size_t m = 0; m < per_peer; m++) {
            size_t len = sizes[m % nsizes];
            tt_xfer_t *s = &xs[k], *r = &xs[k + 1];
            bufs[k] = malloc(len + 1);
            bufs[k + 1] = malloc(len + 1);
            for (size_t i = 0; i < len; i++)
                bufs[k][i] = pattern(rank, peer, m, i);
            *s = (tt_xfer_t){.buf = bufs[k], .len = len, .peer = peer, .tag = m};
            *r = (tt_xfer_t){.buf = bufs[k + 1], .len = len, .peer = peer, .tag = m};
            if (m >= nsizes) {
                r->consume = copy_consumer;
                r->owner = &offsets[k + 1];
            }
            if (ls.tl->ops->send(ls.tl, s) != TUTTI_OK || ls.tl->ops->recv(ls.tl, r) != TUTTI_OK)
                return tt_fail(rank, "posting failed");
            k += 2;
        }
    }
    status = drive(ls.tl, xs, (int)nx);
    if (status != TUTTI_OK)
        return tt_fail(rank, "transfers ended with %s", tutti_status_string(status));
    k = 0;
    for (int peer = 0; peer < n; peer++) {
        if (peer == rank)
            continue;
        for (size_t m = 0; m < per_peer; m++, k += 2) {
            if (xs[k + 1].user != 0)
                return tt_fail(rank, "message %zu from %d came in broken pieces", m, peer);
            for (size_t i = 0; i < xs[k + 1].len; i++)
                if (bufs[k + 1][i] != pattern(peer, rank, m, i))
                    return tt_fail(rank, "message %zu (%zu bytes) from %d: byte %zu wrong", m,
                                   xs[k + 1].len, peer, i);
        }
    }
    for (size_t i = 0; i < nx; i++)
        free(bufs[i]);
    free(bufs);
    free(offsets);
    free(xs);
    close_links(&ls, rank, n);
    return 0;
}

START_TEST(every_size_both_protocols)
{
    for (int n = 2; n <= 3; n++)
        ck_assert_int_eq(tt_run_ranks(n, exchange_rank, (void *)&cases[_i], 120), 0);
}
END_TEST

/* Rank 1 sends a message rank 0 does not expect (tag, then length): a protocol error. */
static int mismatch_rank(int rank, int n, const tutti_unique_id_t *uid, void *arg)
{
    int by_length = *(int *)arg;
    char buf[4096] = {0};
    tt_xfer_t x = {.buf = buf, .len = 100, .peer = 1 - rank, .tag = 7};
    link_set_t ls;
    tutti_status_t status;

    if (open_links(rank, n, uid, &cases[0], &ls) != TUTTI_OK)
        return tt_fail(rank, "cannot open the links");
    if (rank == 1) {
        if (by_length)
            x.len = 4000;
        else
            x.tag = 8;
        ls.tl->ops->send(ls.tl, &x);
    } else {
        ls.tl->ops->recv(ls.tl, &x);
    }
    status = drive(ls.tl, &x, 1);
    if (rank == 0 && status != TUTTI_ERR_PROTOCOL)
        return tt_fail(rank, "a mismatched message gave %s", tutti_status_string(status));
    close_links(&ls, rank, n);
    return 0;
}

START_TEST(mismatched_message_is_a_protocol_error)
{
    int by_length = _i;
    ck_assert_int_eq(tt_run_ranks(2, mismatch_rank, &by_length, 60), 0);
}
END_TEST

/* Rank 1 dies; rank 0's pending receive fails and check_peers names rank 1. */
static int death_rank(int rank, int n, const tutti_unique_id_t *uid, void *arg)
{
    char buf[64];
    tt_xfer_t x = {.buf = buf, .len = sizeof(buf), .peer = 1, .tag = 1};
    tt_link_event_t ev;
    link_set_t ls;
    int64_t deadline;
    int events = 0;
    tutti_status_t status;

    (void)arg;
    if (open_links(rank, n, uid, &cases[0], &ls) != TUTTI_OK)
        return tt_fail(rank, "cannot open the links");
    if (rank == 1)
        _exit(0);
    ls.tl->ops->recv(ls.tl, &x);
    deadline = deadline_s(5);
    while (events == 0 && tt_time_ns() < deadline)
        events = ls.tl->ops->check_peers(ls.tl, &ev, 1);
    if (events != 1 || ev.peer != 1 || ev.status != TUTTI_ERR_PEER_FAILED)
        return tt_fail(rank, "no event naming the dead peer");
    status = drive(ls.tl, &x, 1);
    if (status != TUTTI_ERR_PEER_FAILED)
        return tt_fail(rank, "the receive from the dead peer ended with %s",
                       tutti_status_string(status));
    if (ls.tl->ops->check_peers(ls.tl, &ev, 1) != 0)
        return tt_fail(rank, "the same death was reported twice");
    ls.tl->ops->destroy(ls.tl);
    tt_bootstrap_release(ls.bs, 1, tt_time_ns());
    tt_config_overrides_clear(&ls.overrides);
    return 0;
}

START_TEST(dead_peer_is_reported)
{
    int statuses[2];
    tt_run_ranks_status(2, death_rank, NULL, 60, statuses);
    ck_assert(WIFEXITED(statuses[0]) && WEXITSTATUS(statuses[0]) == 0);
}
END_TEST

START_TEST(stale_segments_are_swept)
{
    char name[TT_SHM_NAME_MAX], from[96], stale[96], live[96];
    void *base;
    struct stat st;
    pid_t child = fork();

    if (child == 0)
        _exit(0);
    waitpid(child, NULL, 0);
    /* One segment renamed as if the (now dead) child had made it, one of ours. */
    ck_assert_int_eq(tt_shm_segment_create(99, 0, 4096, name, &base), TUTTI_OK);
    tt_shm_segment_unmap(base, 4096);
    snprintf(from, sizeof(from), "/dev/shm/%s", name);
    snprintf(stale, sizeof(stale), "/dev/shm/" TT_SHM_NAME_PREFIX "%d-fake", (int)child);
    ck_assert_int_eq(rename(from, stale), 0);
    ck_assert_int_eq(tt_shm_segment_create(99, 1, 4096, name, &base), TUTTI_OK);
    tt_shm_segment_unmap(base, 4096);
    snprintf(live, sizeof(live), "/dev/shm/%s", name);

    tt_shm_segment_sweep();
    ck_assert_int_ne(stat(stale, &st), 0);
    ck_assert_int_eq(stat(live, &st), 0);
    tt_shm_segment_unlink(name);
}
END_TEST

static Suite *shm_suite(void)
{
    Suite *s = suite_create("shm");
    TCase *tc = tcase_create("shm");
    tcase_set_timeout(tc, 180);
    tcase_add_loop_test(tc, every_size_both_protocols, 0, (int)TT_ARRAY_SIZE(cases));
    tcase_add_loop_test(tc, mismatched_message_is_a_protocol_error, 0, 2);
    tcase_add_test(tc, dead_peer_is_reported);
    tcase_add_test(tc, stale_segments_are_swept);
    suite_add_tcase(s, tc);
    return s;
}

TT_UNIT_MAIN(shm_suite)
