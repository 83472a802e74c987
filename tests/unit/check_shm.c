/*
 * What only the shared-memory transport does, between forked processes: a
 * dying peer found through its process, and the segments' privacy and
 * clean-up. (Messages of every size, both protocols and mismatches are in
 * check_transports, for every transport.)
 */
#include "config.h"

#include "bootstrap/bootstrap.h"
#include "tests/lib/links.h"
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

/*
 * Wire shm to every rank (all on this host), checking that the segment is
 * private to us until every rank attached, and nameless after ready().
 */
static tutti_status_t open_links(int rank, int n, const tutti_unique_id_t *uid, tt_test_links_t *ls)
{
    struct stat st;
    char path[80];
    void *mine = NULL;

    TT_CHECK(tt_test_links_open(rank, n, uid, &tt_shm_transport_ops, NULL, ls, &mine));
    snprintf(path, sizeof(path), "/dev/shm/%s", (const char *)mine);
    free(mine);
    if (stat(path, &st) == 0) {
        tt_fail(rank, "segment %s still has a name after ready()", path);
        return TUTTI_ERR_INTERNAL;
    }
    return TUTTI_OK;
}

/* Before connect(), the segment has a name only its owner may open. */
START_TEST(segment_is_private_until_ready)
{
    tt_transport_params_t params = {0, 1, (const int[]){0}, 1, 0x1234};
    tt_config_overrides_t overrides = {0};
    char address[256];
    tt_transport_t *tl;
    struct stat st;
    char path[300];

    params.overrides = &overrides;
    ck_assert_uint_le(tt_shm_transport_ops.address_size(&params), sizeof(address));
    ck_assert_int_eq(tt_shm_transport_ops.create(&params, address, &tl), TUTTI_OK);
    snprintf(path, sizeof(path), "/dev/shm/%s", address);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0600);
    tl->ops->destroy(tl);
    ck_assert_int_ne(stat(path, &st), 0);
}
END_TEST

/* Rank 1 dies; rank 0's pending receive fails and check_peers names rank 1. */
static int death_rank(int rank, int n, const tutti_unique_id_t *uid, void *arg)
{
    char buf[64];
    tt_xfer_t x = {.buf = buf, .len = sizeof(buf), .peer = 1, .tag = 1};
    tt_link_event_t ev;
    tt_test_links_t ls;
    int64_t deadline;
    int events = 0;
    tutti_status_t status;

    (void)arg;
    if (open_links(rank, n, uid, &ls) != TUTTI_OK)
        return tt_fail(rank, "cannot open the links");
    if (rank == 1)
        _exit(0);
    ls.tl->ops->recv(ls.tl, &x);
    deadline = tt_deadline_after(5 * TT_NS_PER_S);
    while (events == 0 && tt_time_ns() < deadline)
        events = ls.tl->ops->check_peers(ls.tl, &ev, 1);
    if (events != 1 || ev.peer != 1 || ev.status != TUTTI_ERR_PEER_FAILED)
        return tt_fail(rank, "no event naming the dead peer");
    status = tt_test_drive(ls.tl, 1, 30);
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
    tcase_add_test(tc, segment_is_private_until_ready);
    tcase_add_test(tc, dead_peer_is_reported);
    tcase_add_test(tc, stale_segments_are_swept);
    suite_add_tcase(s, tc);
    return s;
}

TT_UNIT_MAIN(shm_suite)
