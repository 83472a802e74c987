/* Spin, then yield, then sleep; see backoff.h. */
#include <config.h> /* the build's: "config.h" would find util/config.h */

#include "util/backoff.h"

#include "util/time.h"

#include <sched.h>

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ volatile("yield");
#endif
}

void tt_backoff_idle(tt_backoff_t *b)
{
    int64_t now, idle;

    if (b->spinning && (b->polls++ & 63) != 0) {
        cpu_relax();
        return;
    }
    now = tt_time_ns();
    if (b->idle_since == 0) {
        b->idle_since = now;
        b->sleep_ns = 1000;
    }
    idle = now - b->idle_since;
    b->spinning = idle < b->params->spin_ns;
    if (b->spinning) {
        cpu_relax();
    } else if (idle < b->params->yield_ns) {
        sched_yield();
    } else {
        struct timespec ts = {0, (long)b->sleep_ns};
        nanosleep(&ts, NULL);
        if (b->sleep_ns * 2 <= b->params->max_sleep_ns)
            b->sleep_ns *= 2;
        else
            b->sleep_ns = b->params->max_sleep_ns;
    }
}
