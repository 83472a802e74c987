/*
 * Waiting politely. A waiter that found nothing to do spins briefly (cheap
 * wake-up when the peer is running on another core), then yields the CPU
 * (oversubscribed hosts: let the peer run), then sleeps for growing periods
 * up to a cap. Any progress resets it.
 */
#ifndef TT_UTIL_BACKOFF_H
#define TT_UTIL_BACKOFF_H

#include <stdint.h>

typedef struct tt_backoff_params {
    int64_t spin_ns;      /* busy-poll this long after the last progress */
    int64_t yield_ns;     /* then sched_yield() until this long after it */
    int64_t max_sleep_ns; /* then sleep, doubling from 1 us up to this */
} tt_backoff_params_t;

typedef struct tt_backoff {
    const tt_backoff_params_t *params;
    int64_t idle_since; /* 0: not idle */
    int64_t sleep_ns;
    uint32_t polls; /* idle polls since the clock was last read */
    int spinning;
} tt_backoff_t;

static inline void tt_backoff_reset(tt_backoff_t *b)
{
    b->idle_since = 0;
    b->polls = 0;
    b->spinning = 1;
}

static inline void tt_backoff_init(tt_backoff_t *b, const tt_backoff_params_t *params)
{
    b->params = params;
    b->sleep_ns = 0;
    tt_backoff_reset(b);
}

/* Still in the busy-poll phase (the caller may keep its locks while spinning). */
static inline int tt_backoff_spinning(const tt_backoff_t *b)
{
    return b->spinning;
}

/*
 * Nothing happened in the last poll: spin, yield or sleep as the idle time
 * says. While spinning, the clock is read only every 64 polls: reading it
 * costs about as much as a poll.
 */
void tt_backoff_idle(tt_backoff_t *b);

#endif
