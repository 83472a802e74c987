/*
 * The RDMA registration cache (transports/rdma/regcache.h) on a real
 * device: it serves a buffer used again from the cache, forgets memory that
 * went away (even while a message still uses it), keeps to its bounds, and
 * never evicts a registration in use. Runs where an RDMA device is (the
 * Soft-RoCE VM); elsewhere it says so and skips. Whether data travels right
 * through cached registrations is check_transports' reuse test.
 */
#include "config.h"

#include "tests/lib/unit.h"
#include "transports/rdma/device.h"
#include "transports/rdma/regcache.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static const tt_verbs_t *verbs;
static tt_rdma_port_t port;

/* Open the first active device; 0 (skipped, saying why) if there is none. */
static int open_device(void)
{
    char why[160] = "";

    verbs = tt_verbs_load(why, sizeof(why));
    if (verbs == NULL || !tt_rdma_any_active(verbs, why, sizeof(why))) {
        printf("check_regcache: skipped: %s\n", why);
        return 0;
    }
    ck_assert_int_eq(tt_rdma_port_open(verbs, "", 0, -1, &port), TUTTI_OK);
    return 1;
}

/* A cache of @p entries and @p bytes on the device; NULL (skipped) without one. */
static tt_rdma_regcache_t *open_cache(size_t entries, size_t bytes)
{
    tt_rdma_regcache_t *c;

    if (!open_device())
        return NULL;
    c = tt_rdma_regcache_create(verbs, port.pd, port.name, entries, bytes);
    ck_assert_ptr_nonnull(c);
    return c;
}

static void close_cache(tt_rdma_regcache_t *c)
{
    tt_rdma_regcache_destroy(c);
    tt_rdma_port_close(verbs, &port);
}

static size_t page(void)
{
    return (size_t)sysconf(_SC_PAGESIZE);
}

static unsigned char *map(size_t len)
{
    unsigned char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ck_assert(p != MAP_FAILED);
    memset(p, 1, len);
    return p;
}

static tt_rdma_regcache_stats_t stats(tt_rdma_regcache_t *c)
{
    tt_rdma_regcache_stats_t s;
    tt_rdma_regcache_stats(c, &s);
    return s;
}

/* Acquire [buf, buf + len) for remote reads, expecting success; returns the registration. */
static tt_rdma_reg_t acquire(tt_rdma_regcache_t *c, const void *buf, size_t len)
{
    tt_rdma_reg_t reg;
    ck_assert_int_eq(tt_rdma_reg_acquire(c, buf, len, IBV_ACCESS_REMOTE_READ, &reg), 0);
    ck_assert_ptr_nonnull(reg.mr);
    ck_assert((uintptr_t)reg.mr->addr <= (uintptr_t)buf &&
              (uintptr_t)buf + len <= (uintptr_t)reg.mr->addr + reg.mr->length);
    return reg;
}

START_TEST(serves_buffers_used_again)
{
    tt_rdma_regcache_t *c;
    unsigned char *p;
    tt_rdma_reg_t a, b;

    if ((c = open_cache(4, 64u << 20)) == NULL)
        return;
    p = map(16 * page());
    a = acquire(c, p + 5, 3 * page());
    ck_assert_int_ge(a.entry, 0);
    tt_rdma_reg_release(c, &a);
    ck_assert_ptr_null(a.mr);
    b = acquire(c, p + 5, 3 * page());
    ck_assert_int_eq(stats(c).hits, 1);
    /* A part of a cached range is served from it too. */
    a = acquire(c, p + page() + 1, page());
    ck_assert_int_eq(a.entry, b.entry);
    ck_assert_int_eq(stats(c).hits, 2);
    ck_assert_int_eq(stats(c).misses, 1);
    ck_assert_int_eq(stats(c).entries, 1);
    tt_rdma_reg_release(c, &a);
    tt_rdma_reg_release(c, &b);
    munmap(p, 16 * page());
    close_cache(c);
}
END_TEST

START_TEST(forgets_memory_that_went_away)
{
    tt_rdma_regcache_t *c;
    size_t len = 16 * page();
    unsigned char *p, *big;
    tt_rdma_reg_t a;

    if ((c = open_cache(4, 64u << 20)) == NULL)
        return;
    p = map(len);
    a = acquire(c, p, len);
    tt_rdma_reg_release(c, &a);
    /* New pages at the same address. */
    ck_assert(
        mmap(p, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == p);
    ck_assert_int_eq(stats(c).invalidated, 1);
    a = acquire(c, p, len);
    ck_assert_int_eq(stats(c).hits, 0);
    tt_rdma_reg_release(c, &a);
    /* Pages dropped: touched again, they are new ones. */
    ck_assert_int_eq(madvise(p + page(), page(), MADV_DONTNEED), 0);
    ck_assert_int_eq(stats(c).invalidated, 2);
    a = acquire(c, p, len);
    ck_assert_int_eq(stats(c).hits, 0);
    tt_rdma_reg_release(c, &a);
    /* A large block freed. */
    big = malloc(8u << 20);
    ck_assert_ptr_nonnull(big);
    memset(big, 1, 8u << 20);
    a = acquire(c, big, 8u << 20);
    tt_rdma_reg_release(c, &a);
    free(big);
    ck_assert_int_eq(stats(c).invalidated, 3);
    ck_assert_int_eq(stats(c).misses, 4);
    /* Stale entries are gone at the next use: one live entry (p's) is left. */
    a = acquire(c, p, len);
    ck_assert_int_eq(stats(c).hits, 1);
    ck_assert_int_eq(stats(c).entries, 1);
    tt_rdma_reg_release(c, &a);
    munmap(p, len);
    close_cache(c);
}
END_TEST

START_TEST(memory_gone_in_use_goes_after_use)
{
    tt_rdma_regcache_t *c;
    size_t len = 4 * page();
    unsigned char *p;
    tt_rdma_reg_t a;

    if ((c = open_cache(4, 64u << 20)) == NULL)
        return;
    p = map(len);
    a = acquire(c, p, len);
    munmap(p, len);
    ck_assert_int_eq(stats(c).invalidated, 1);
    /* Still registered for the message that uses it. */
    ck_assert_int_eq(stats(c).entries, 1);
    tt_rdma_reg_release(c, &a);
    ck_assert_int_eq(stats(c).entries, 0);
    ck_assert_int_eq(stats(c).bytes, 0);
    close_cache(c);
}
END_TEST

START_TEST(keeps_to_its_bounds)
{
    size_t len = 64 * page();
    tt_rdma_regcache_t *c;
    unsigned char *bufs[5];
    tt_rdma_reg_t held[3], big;

    /* Room for two entries, and for three buffers' bytes. */
    if ((c = open_cache(2, 3 * len)) == NULL)
        return;
    for (int i = 0; i < 5; i++)
        bufs[i] = map(len);
    for (int round = 0; round < 2; round++)
        for (int i = 0; i < 5; i++) {
            tt_rdma_reg_t a = acquire(c, bufs[i], len);
            ck_assert_int_ge(a.entry, 0);
            tt_rdma_reg_release(c, &a);
            ck_assert_int_le(stats(c).entries, 2);
            ck_assert_int_le(stats(c).bytes, 3 * len);
        }
    ck_assert_int_eq(stats(c).evicted, 8);
    /* Busy entries stay: a third buffer in use at once is registered for its message only. */
    held[0] = acquire(c, bufs[0], len);
    held[1] = acquire(c, bufs[1], len);
    held[2] = acquire(c, bufs[2], len);
    ck_assert(held[0].entry >= 0 && held[1].entry >= 0 && held[2].entry < 0);
    for (int i = 0; i < 3; i++)
        tt_rdma_reg_release(c, &held[i]);
    /* More than the byte bound: registered for its message only. */
    unsigned char *large = map(4 * len);
    big = acquire(c, large, 4 * len);
    ck_assert_int_lt(big.entry, 0);
    tt_rdma_reg_release(c, &big);
    ck_assert_int_le(stats(c).bytes, 3 * len);
    for (int i = 0; i < 5; i++)
        munmap(bufs[i], len);
    munmap(large, 4 * len);
    close_cache(c);
}
END_TEST

START_TEST(read_only_memory_is_registered_per_message)
{
    tt_rdma_regcache_t *c;
    size_t len = 4 * page();
    unsigned char *p;
    tt_rdma_reg_t a;

    if ((c = open_cache(4, 64u << 20)) == NULL)
        return;
    p = mmap(NULL, len, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ck_assert(p != MAP_FAILED);
    a = acquire(c, p, len);
    ck_assert_int_lt(a.entry, 0);
    tt_rdma_reg_release(c, &a);
    munmap(p, len);
    close_cache(c);
}
END_TEST

static Suite *regcache_suite(void)
{
    Suite *s = suite_create("regcache");
    TCase *tc = tcase_create("regcache");
    tcase_add_test(tc, serves_buffers_used_again);
    tcase_add_test(tc, forgets_memory_that_went_away);
    tcase_add_test(tc, memory_gone_in_use_goes_after_use);
    tcase_add_test(tc, keeps_to_its_bounds);
    tcase_add_test(tc, read_only_memory_is_registered_per_message);
    suite_add_tcase(s, tc);
    return s;
}

TT_UNIT_MAIN(regcache_suite)
