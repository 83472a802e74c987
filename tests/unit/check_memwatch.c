/*
 * The memory watcher (util/memwatch.h) against the real kernel: it hears
 * every way watched memory goes away (munmap, free of a large block,
 * madvise, mremap, mmap over it), nothing about memory it does not watch,
 * nothing after unsubscribing, and works afresh in a forked child. Where
 * userfaultfd is refused (an old kernel, a sandbox), the tests check that
 * the watcher says why and watches nothing.
 */
#include "config.h"

#include "tests/lib/unit.h"
#include "util/memwatch.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

/* What one subscriber heard. */
typedef struct heard {
    int calls;
    uintptr_t start, end; /* the last range */
} heard_t;

static void record(void *arg, uintptr_t start, uintptr_t end)
{
    heard_t *h = arg;
    h->calls++;
    h->start = start;
    h->end = end;
}

/* What @p h heard so far (read under the watch lock, as a subscriber's owner must). */
static heard_t heard_so_far(const heard_t *h)
{
    heard_t copy;
    tt_memwatch_lock();
    copy = *h;
    tt_memwatch_unlock();
    return copy;
}

/*
 * Subscribe @p h; 0 if userfaultfd is refused here, after checking that the
 * watcher says why and watches nothing.
 */
static int subscribe(heard_t *h, tt_memwatch_sub_t **sub_p)
{
    char why[128] = "";
    tutti_status_t status = tt_memwatch_subscribe(record, h, sub_p, why, sizeof(why));

    if (status == TUTTI_ERR_UNSUPPORTED) {
        ck_assert_msg(why[0] != '\0', "no reason given");
        ck_assert_int_eq(tt_memwatch_watch(0, (uintptr_t)sysconf(_SC_PAGESIZE)), EINVAL);
        printf("check_memwatch: userfaultfd refused here (%s): checked the refusal only\n", why);
        return 0;
    }
    ck_assert_int_eq(status, TUTTI_OK);
    return 1;
}

static size_t page(void)
{
    return (size_t)sysconf(_SC_PAGESIZE);
}

static char *map(size_t pages)
{
    char *p =
        mmap(NULL, pages * page(), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ck_assert(p != MAP_FAILED);
    memset(p, 1, pages * page());
    return p;
}

/* Watch pages [first, first + count) of @p p. */
static void watch(char *p, size_t first, size_t count)
{
    uintptr_t start = (uintptr_t)p + first * page();
    ck_assert_int_eq(tt_memwatch_watch(start, start + count * page()), 0);
}

/* @p h heard once more than @p before, of a range covering pages [first, first + count) of @p p. */
static void assert_heard(const heard_t *h, int before, const char *p, size_t first, size_t count)
{
    heard_t now = heard_so_far(h);
    uintptr_t start = (uintptr_t)p + first * page();

    ck_assert_int_eq(now.calls, before + 1);
    ck_assert_msg(now.start <= start && start + count * page() <= now.end,
                  "heard of [%#lx, %#lx), not of the watched [%#lx, %#lx)",
                  (unsigned long)now.start, (unsigned long)now.end, (unsigned long)start,
                  (unsigned long)(start + count * page()));
}

START_TEST(hears_munmap_and_free)
{
    heard_t h = {0};
    tt_memwatch_sub_t *sub;
    char *p = NULL, *big;
    size_t big_len = 8u << 20; /* above malloc's threshold: its own mapping */

    if (!subscribe(&h, &sub))
        return;
    p = map(4);
    watch(p, 1, 2);
    ck_assert_int_eq(munmap(p, 4 * page()), 0);
    assert_heard(&h, 0, p, 1, 2);

#ifndef __SANITIZE_ADDRESS__ /* AddressSanitizer keeps freed memory mapped, in quarantine */
    big = malloc(big_len);
    ck_assert_ptr_nonnull(big);
    memset(big, 2, big_len);
    watch((char *)((uintptr_t)big / page() * page()), 1, 16);
    free(big);
    assert_heard(&h, 1, (char *)((uintptr_t)big / page() * page()), 1, 16);
#else
    (void)big;
    (void)big_len;
#endif
    tt_memwatch_unsubscribe(sub);
}
END_TEST

START_TEST(hears_madvise_mremap_and_mmap_over)
{
    heard_t h = {0};
    tt_memwatch_sub_t *sub;
    char *p, *moved;

    if (!subscribe(&h, &sub))
        return;
    p = map(4);
    watch(p, 0, 4);
    /* The pages are dropped: touched again, they are new ones. */
    ck_assert_int_eq(madvise(p + page(), page(), MADV_DONTNEED), 0);
    assert_heard(&h, 0, p, 1, 1);
    p[page()] = 3; /* refilled without the watcher's help */

    moved = mremap(p, 4 * page(), 8 * page(), MREMAP_MAYMOVE);
    ck_assert(moved != MAP_FAILED);
    ck_assert_int_ge(heard_so_far(&h).calls, 2);
    ck_assert_int_eq(moved[page()], 3);

    watch(moved, 0, 8);
    int calls = heard_so_far(&h).calls;
    ck_assert(mmap(moved, 2 * page(), PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == moved);
    assert_heard(&h, calls, moved, 0, 2);
    ck_assert_int_eq(munmap(moved, 8 * page()), 0);
    tt_memwatch_unsubscribe(sub);
}
END_TEST

START_TEST(quiet_about_the_unwatched_and_after_unsubscribing)
{
    heard_t h = {0}, other = {0};
    tt_memwatch_sub_t *sub, *other_sub;
    char *p;

    if (!subscribe(&h, &sub) || !subscribe(&other, &other_sub))
        return;
    p = map(2);
    ck_assert_int_eq(munmap(p, 2 * page()), 0);
    ck_assert_int_eq(heard_so_far(&h).calls, 0);

    /* Two subscribers both hear; one gone, the other still does. */
    p = map(2);
    watch(p, 0, 2);
    ck_assert_int_eq(madvise(p, page(), MADV_DONTNEED), 0);
    assert_heard(&h, 0, p, 0, 1);
    assert_heard(&other, 0, p, 0, 1);
    tt_memwatch_unsubscribe(other_sub);
    ck_assert_int_eq(munmap(p, 2 * page()), 0);
    assert_heard(&h, 1, p, 0, 2);
    ck_assert_int_eq(heard_so_far(&other).calls, 1);

    /* The last one gone, nothing is watched. */
    tt_memwatch_unsubscribe(sub);
    p = map(1);
    ck_assert_int_eq(tt_memwatch_watch((uintptr_t)p, (uintptr_t)p + page()), EINVAL);
    ck_assert_int_eq(munmap(p, page()), 0);
    ck_assert_int_eq(h.calls, 2);
}
END_TEST

START_TEST(works_afresh_in_a_forked_child)
{
    heard_t h = {0};
    tt_memwatch_sub_t *sub;
    pid_t child;
    int status;

    if (!subscribe(&h, &sub))
        return;
    child = fork();
    ck_assert_int_ge(child, 0);
    if (child == 0) {
        heard_t mine = {0};
        tt_memwatch_sub_t *my_sub;
        char why[128], *p = map(2);

        if (tt_memwatch_subscribe(record, &mine, &my_sub, why, sizeof(why)) != TUTTI_OK ||
            tt_memwatch_watch((uintptr_t)p, (uintptr_t)p + 2 * page()) != 0 ||
            munmap(p, 2 * page()) != 0)
            _exit(2);
        tt_memwatch_unsubscribe(my_sub);
        _exit(mine.calls == 1 && h.calls == 0 ? 0 : 1);
    }
    ck_assert_int_eq(waitpid(child, &status, 0), child);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the child: status %#x", status);
    /* The parent still hears its own memory. */
    char *p = map(1);
    watch(p, 0, 1);
    ck_assert_int_eq(munmap(p, page()), 0);
    assert_heard(&h, 0, p, 0, 1);
    tt_memwatch_unsubscribe(sub);
}
END_TEST

static Suite *memwatch_suite(void)
{
    Suite *s = suite_create("memwatch");
    TCase *tc = tcase_create("memwatch");
    tcase_add_test(tc, hears_munmap_and_free);
    tcase_add_test(tc, hears_madvise_mremap_and_mmap_over);
    tcase_add_test(tc, quiet_about_the_unwatched_and_after_unsubscribing);
    tcase_add_test(tc, works_afresh_in_a_forked_child);
    suite_add_tcase(s, tc);
    return s;
}

TT_UNIT_MAIN(memwatch_suite)
