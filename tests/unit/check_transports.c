/*
 * Every transport that can run here, on its own, between forked processes:
 * every message size around its protocol boundaries (slots, single-copy or
 * zero-copy thresholds, read pieces), receives that consume data piece by
 * piece, ordering with many messages in flight both ways, and mismatched
 * messages, and buffers whose memory is freed, remapped or dropped between
 * messages (what a registration cache must notice). One test case per
 * transport (CK_RUN_CASE=shm, ucx, rdma); a
 * transport not built in or not runnable here (rdma without a device) says
 * so and is skipped.
 */
#include "config.h"

#include "tests/lib/links.h"
#include "tests/lib/ranks.h"
#include "tests/lib/unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define MAX_SETTINGS 4

/* A transport with settings that steer it through one of its protocols. */
typedef struct transport_case {
    const char *transport;
    const char *settings[MAX_SETTINGS + 1][2]; /* ending at a NULL name */
} transport_case_t;

static const transport_case_t cases[] = {
    {"shm", {{"SHM_CMA", "on"}}},
    {"shm", {{"SHM_CMA", "off"}}},
    /* tiny FIFO: every message wraps around it many times */
    {"shm", {{"SHM_CMA", "on"}, {"SHM_SLOT_SIZE", "64"}, {"SHM_SLOTS", "2"}}},
    {"ucx", {{NULL}}},
    {"rdma", {{NULL}}},
    /* everything through the slots, four of them: credits run out all the time */
    {"rdma", {{"RDMA_RNDV_THRESHOLD", "1G"}, {"RDMA_SLOTS", "4"}, {"RDMA_SLOT_SIZE", "1K"}}},
    /* everything from a few bytes on read by the receiver, registered for each message */
    {"rdma", {{"RDMA_RNDV_THRESHOLD", "2"}, {"RDMA_REG_CACHE", "0"}}},
    /* a registration cache of two entries: it evicts all the time */
    {"rdma", {{"RDMA_REG_CACHE_ENTRIES", "2"}, {"RDMA_REG_CACHE", "3M"}}},
};

/* The transport called @p name if it is built in and can run here; else NULL, saying why. */
static const tt_transport_ops_t *runnable(const char *name)
{
    char why[160] = "";
    const tt_transport_ops_t *ops = tt_transport_runnable(name, why, sizeof(why));

    if (ops == NULL)
        printf("check_transports: %s skipped: %s\n", name, why);
    return ops;
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

/* Around shm's slots and single-copy threshold, RDMA's slots (8K), threshold (32K) and 1M pieces.
 */
static const size_t sizes[] = {
    0,    1,     63,    64,    65,        2047,          8127,    8128,
    8129, 32767, 32768, 32769, 64 * 1024, 3 * 32768 + 5, 1000003, (1 << 20) + 3};

/* Every rank sends every size to every other rank, all posted at once, both ways. */
static int exchange_rank(int rank, int n, const tutti_unique_id_t *uid, void *arg)
{
    const transport_case_t *c = arg;
    const tt_transport_ops_t *ops = runnable(c->transport);
    size_t nsizes = TT_ARRAY_SIZE(sizes), per_peer = 2 * nsizes;
    size_t nx = per_peer * (size_t)(n - 1) * 2;
    tt_xfer_t *xs = calloc(nx, sizeof(*xs));
    size_t *offsets = calloc(nx, sizeof(size_t));
    unsigned char **bufs = calloc(nx, sizeof(*bufs));
    tt_test_links_t ls;
    size_t k = 0;
    tutti_status_t status;

    if (ops == NULL || xs == NULL || offsets == NULL || bufs == NULL)
        return tt_fail(rank, "cannot run %s", c->transport);
    status = tt_test_links_open(rank, n, uid, ops, c->settings, &ls, NULL);
    if (status != TUTTI_OK)
        return tt_fail(rank, "cannot wire %s: %s", c->transport, tutti_status_string(status));
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
            if (ops->send(ls.tl, s) != TUTTI_OK || ops->recv(ls.tl, r) != TUTTI_OK)
                return tt_fail(rank, "posting failed");
            k += 2;
        }
    }
    status = tt_test_drive(ls.tl, (int)nx, 60);
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
    tt_test_links_close(&ls, rank, n);
    return 0;
}

/* How a buffer's memory changes between two messages sent from, or received into, it. */
enum reuse { REUSE_SAME, REUSE_REMAP, REUSE_DROP, REUSE_FREE };

static const char *const reuse_names[] = {"written again", "unmapped and mapped again",
                                          "dropped (MADV_DONTNEED)", "freed and allocated again"};

#define REUSE_LEN ((size_t)(1 << 20) + 3) /* read by the receiver on RDMA, single-copy on shm */
#define REUSE_MAP (2 * REUSE_LEN)

/*
 * Change the memory behind @p buf (5 bytes into a mapping of REUSE_MAP) as
 * @p how says, keeping the address (the case a stale registration gets
 * wrong); returns the buffer, NULL on failure.
 */
static unsigned char *reuse(unsigned char *buf, enum reuse how)
{
    unsigned char *base = buf - 5;

    switch (how) {
    case REUSE_SAME: return buf;
    case REUSE_REMAP:
        munmap(base, REUSE_MAP);
        base = mmap(base, REUSE_MAP, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
        return base == MAP_FAILED ? NULL : base + 5;
    case REUSE_DROP: return madvise(base, REUSE_MAP, MADV_DONTNEED) == 0 ? buf : NULL;
    default: return NULL;
    }
}

/* Ranks 0 and 1 swap a message from @p from into @p into; 0, or why not in @p why. */
static int swap_once(const tt_transport_ops_t *ops, tt_test_links_t *ls, int rank, int round,
                     unsigned char *from, unsigned char *into, const char **why)
{
    tt_xfer_t s = {.buf = from, .len = REUSE_LEN, .peer = 1 - rank, .tag = (uint64_t)round};
    tt_xfer_t r = {.buf = into, .len = REUSE_LEN, .peer = 1 - rank, .tag = (uint64_t)round};
    tutti_status_t status;

    for (size_t i = 0; i < REUSE_LEN; i++)
        from[i] = pattern(rank, 1 - rank, (size_t)round, i);
    memset(into, 0, REUSE_LEN);
    if (ops->send(ls->tl, &s) != TUTTI_OK || ops->recv(ls->tl, &r) != TUTTI_OK) {
        *why = "posting failed";
        return 1;
    }
    /* Both complete: the peer is done with our buffer, and we have its message. */
    status = tt_test_drive(ls->tl, 2, 60);
    if (status != TUTTI_OK) {
        *why = tutti_status_string(status);
        return 1;
    }
    for (size_t i = 0; i < REUSE_LEN; i++)
        if (into[i] != pattern(1 - rank, rank, (size_t)round, i)) {
            *why = "wrong data";
            return 1;
        }
    return 0;
}

/*
 * Ranks 0 and 1 swap messages from and into buffers at odd addresses,
 * changing each buffer's memory in every way between messages; every
 * message must carry its own contents.
 */
static int reuse_rank(int rank, int n, const tutti_unique_id_t *uid, void *arg)
{
    const transport_case_t *c = arg;
    const tt_transport_ops_t *ops = runnable(c->transport);
    unsigned char *bufs[2]; /* send, receive */
    const char *why = NULL;
    tt_test_links_t ls;
    int round = 0;

    if (ops == NULL || tt_test_links_open(rank, n, uid, ops, c->settings, &ls, NULL) != TUTTI_OK)
        return tt_fail(rank, "cannot wire %s", c->transport);
    for (int b = 0; b < 2; b++) {
        unsigned char *map =
            mmap(NULL, REUSE_MAP, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (map == MAP_FAILED)
            return tt_fail(rank, "cannot map buffers");
        bufs[b] = map + 5;
    }
    if (swap_once(ops, &ls, rank, round++, bufs[0], bufs[1], &why) != 0)
        return tt_fail(rank, "%s: new buffers: %s", c->transport, why);
    for (enum reuse how = REUSE_SAME; how < REUSE_FREE; how++) {
        if ((bufs[0] = reuse(bufs[0], how)) == NULL || (bufs[1] = reuse(bufs[1], how)) == NULL)
            return tt_fail(rank, "cannot change the buffers' memory (%s)", reuse_names[how]);
        if (swap_once(ops, &ls, rank, round++, bufs[0], bufs[1], &why) != 0)
            return tt_fail(rank, "%s: buffers %s: %s", c->transport, reuse_names[how], why);
    }
    /* malloc's own blocks, twice: the second pair is likely where the first was */
    for (int twice = 0; twice < 2; twice++) {
        unsigned char *from = malloc(REUSE_LEN), *into = malloc(REUSE_LEN);
        if (from == NULL || into == NULL)
            return tt_fail(rank, "out of memory");
        if (swap_once(ops, &ls, rank, round++, from, into, &why) != 0)
            return tt_fail(rank, "%s: buffers %s: %s", c->transport, reuse_names[REUSE_FREE], why);
        free(from);
        free(into);
    }
    munmap(bufs[0] - 5, REUSE_MAP);
    munmap(bufs[1] - 5, REUSE_MAP);
    tt_test_links_close(&ls, rank, n);
    return 0;
}

/* Rank 1 sends a message rank 0 does not expect (by tag, or by length): a protocol error. */
typedef struct mismatch {
    const transport_case_t *c;
    size_t expected, sent; /* lengths */
    uint64_t sent_tag;
} mismatch_t;

static int mismatch_rank(int rank, int n, const tutti_unique_id_t *uid, void *arg)
{
    const mismatch_t *m = arg;
    const tt_transport_ops_t *ops = runnable(m->c->transport);
    size_t len = TT_MAX(m->expected, m->sent);
    char *buf = calloc(1, len + 1);
    tt_xfer_t x = {.buf = buf, .len = m->expected, .peer = 1 - rank, .tag = 7};
    tt_test_links_t ls;
    tutti_status_t status;

    if (ops == NULL || buf == NULL ||
        tt_test_links_open(rank, n, uid, ops, m->c->settings, &ls, NULL) != TUTTI_OK)
        return tt_fail(rank, "cannot wire %s", m->c->transport);
    if (rank == 1) {
        x.len = m->sent;
        x.tag = m->sent_tag;
        ops->send(ls.tl, &x);
    } else {
        ops->recv(ls.tl, &x);
    }
    /* The sender of a message to be read waits for a reader that gave up: not for long. */
    status = tt_test_drive(ls.tl, 1, rank == 0 ? 30 : 3);
    if (rank == 0 && status != TUTTI_ERR_PROTOCOL)
        return tt_fail(rank,
                       "%s: a %zu-byte message tagged %llu where %zu bytes tagged 7 were "
                       "expected gave %s",
                       m->c->transport, m->sent, (unsigned long long)m->sent_tag, m->expected,
                       tutti_status_string(status));
    free(buf);
    tt_test_links_close(&ls, rank, n);
    return 0;
}

/* Run every test on the cases of transport @p name. */
static void run_transport(const char *name)
{
    if (runnable(name) == NULL)
        return;
    for (size_t i = 0; i < TT_ARRAY_SIZE(cases); i++) {
        const transport_case_t *c = &cases[i];
        if (strcmp(c->transport, name) != 0)
            continue;
        for (int n = 2; n <= 3; n++)
            ck_assert_msg(tt_run_ranks(n, exchange_rank, (void *)c, 180) == 0,
                          "%s case %zu on %d ranks failed", name, i, n);
        ck_assert_msg(tt_run_ranks(2, reuse_rank, (void *)c, 120) == 0,
                      "%s case %zu: reused buffers failed", name, i);
        /* a wrong tag; longer and shorter than expected, each side of every boundary */
        mismatch_t ms[] = {{c, 100, 100, 8},
                           {c, 100, 4000, 7},
                           {c, 100, 40000, 7},
                           {c, 40000, 100, 7},
                           {c, 40000, 40001, 7}};
        for (size_t k = 0; k < TT_ARRAY_SIZE(ms); k++)
            ck_assert_msg(tt_run_ranks(2, mismatch_rank, &ms[k], 60) == 0,
                          "%s case %zu: mismatch %zu was not caught", name, i, k);
    }
}

START_TEST(shm)
{
    run_transport("shm");
}
END_TEST

START_TEST(ucx)
{
    run_transport("ucx");
}
END_TEST

START_TEST(rdma)
{
    run_transport("rdma");
}
END_TEST

static Suite *transports_suite(void)
{
    Suite *s = suite_create("transports");
    const TTest *const tests[] = {shm, ucx, rdma};
    const char *const names[] = {"shm", "ucx", "rdma"};

    for (size_t i = 0; i < TT_ARRAY_SIZE(tests); i++) {
        TCase *tc = tcase_create(names[i]);
        tcase_set_timeout(tc, 600);
        tcase_add_test(tc, tests[i]);
        suite_add_tcase(s, tc);
    }
    return s;
}

TT_UNIT_MAIN(transports_suite)
