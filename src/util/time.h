/* Monotonic time and deadlines, in nanoseconds. */
#ifndef TT_UTIL_TIME_H
#define TT_UTIL_TIME_H

#include <stdint.h>
#include <time.h>

#define TT_NS_PER_US 1000LL
#define TT_NS_PER_MS 1000000LL
#define TT_NS_PER_S 1000000000LL

/* Nanoseconds on the monotonic clock. */
static inline int64_t tt_time_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * TT_NS_PER_S + ts.tv_nsec;
}

/* A deadline @p timeout_ns from now; a timeout <= 0 means "never". */
static inline int64_t tt_deadline_after(int64_t timeout_ns)
{
    return timeout_ns > 0 ? tt_time_ns() + timeout_ns : INT64_MAX;
}

/* Milliseconds left until @p deadline, clamped to [0, INT32_MAX], for poll(2). */
static inline int tt_deadline_poll_ms(int64_t deadline)
{
    if (deadline == INT64_MAX)
        return -1;
    int64_t left = deadline - tt_time_ns();
    if (left <= 0)
        return 0;
    left = (left + TT_NS_PER_MS - 1) / TT_NS_PER_MS;
    return left > INT32_MAX ? INT32_MAX : (int)left;
}

#endif
