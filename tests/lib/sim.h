/*
 * An in-memory world of N ranks for testing algorithms as data: every
 * rank's transport lives in this process and every rank's schedule runs on
 * the real executor. Sends complete only when the receiver takes them
 * (rendezvous), the strictest protocol a transport may use, so a schedule
 * that needs buffering to make progress deadlocks here instead of on a
 * cluster; ranks progress in a scrambled order to shake out missing
 * dependencies. Bytes are counted per link.
 */
#ifndef TT_TESTS_SIM_H
#define TT_TESTS_SIM_H

#include "exec/exec.h"

typedef struct tt_sim tt_sim_t;

/* A world of @p nranks; receivers that consume data get it in pieces of @p piece bytes. */
tt_sim_t *tt_sim_create(int nranks, size_t piece);
void tt_sim_destroy(tt_sim_t *sim);

/* Rank @p rank's transport, for the executor's route table. */
tt_transport_t *tt_sim_transport(tt_sim_t *sim, int rank);

/* Bytes delivered from @p from to @p to so far. */
uint64_t tt_sim_bytes(const tt_sim_t *sim, int from, int to);

/*
 * Run rank r's schedule scheds[r] over buffers bases[r] with envs[r], all
 * ranks together, visiting ranks in an order scrambled by @p seed. Returns
 * TUTTI_OK, the first rank's error, or TUTTI_ERR_INTERNAL if nothing can
 * move any more (deadlock).
 */
tutti_status_t tt_sim_run(tt_sim_t *sim, const tt_schedule_t *const *scheds,
                          void *(*bases)[TT_BUF_COUNT], const tt_exec_env_t *envs, unsigned seed);

#endif
