/*
 * Multi-rank tests on one host: fork N processes that each run a rank
 * function with a shared unique id, and collect their verdicts. A rank that
 * crashes, exits non-zero or outlives the time limit fails the run; on a
 * time-out every rank is killed, so a hang is a failure, never a stuck test.
 * With TT_TEST_NETNS set, the ranks run on emulated hosts (see netns.h).
 */
#ifndef TT_TESTS_RANKS_H
#define TT_TESTS_RANKS_H

#include "tutti.h"

/* One rank's work: return 0 on success. */
typedef int (*tt_rank_fn_t)(int rank, int nranks, const tutti_unique_id_t *id, void *arg);

/*
 * Run @p fn on @p nranks forked ranks; wait at most @p timeout_s seconds.
 * Returns the number of ranks that failed (0: all passed).
 */
int tt_run_ranks(int nranks, tt_rank_fn_t fn, void *arg, int timeout_s);

/* Like tt_run_ranks, but returns each rank's raw wait status in @p statuses. */
int tt_run_ranks_status(int nranks, tt_rank_fn_t fn, void *arg, int timeout_s, int *statuses);

/* Create a communicator for a rank function with @p config (may be NULL); aborts the rank on
 * failure. */
tutti_comm_t tt_test_comm(int rank, int nranks, const tutti_unique_id_t *id, tutti_config_t config);

/*
 * Called by a rank whose call passed its deadline: prints, once per run, each
 * other running rank's threads (state, kernel wait channel, CPU time, the
 * kernel stack of a thread blocked in the kernel) and, where gdb is
 * installed, their stacks (taken while they are stopped), to show where a
 * hang's silent rank is.
 */
void tt_report_hang(int rank);

/* Print a failure message prefixed with the rank and return 1 (for "return tt_fail(...)"). */
int tt_fail(int rank, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
