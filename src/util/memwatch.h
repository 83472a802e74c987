/*
 * Memory watch: hears from the kernel when memory of this process goes away
 * or moves (munmap, mremap, madvise(MADV_DONTNEED), the heap shrinking,
 * mmap over it), so that a cache keyed by address, such as the RDMA
 * registration cache, never serves a range whose pages changed.
 *
 * Built on userfaultfd's non-cooperative events. Watched ranges are
 * registered in write-protect mode with nothing write-protected, so no page
 * fault ever goes to the watcher, only the events. One watcher per process
 * (a range belongs to one userfaultfd at most): a thread started by the
 * first subscriber and stopped with the last.
 *
 * Lock rules. The kernel holds a thread that unmaps watched memory until
 * the watcher has read its event, and the watcher reads and calls the
 * subscribers with the watch lock held; so when munmap returns, every
 * subscriber has heard of it. The other side of this: a thread holding the
 * watch lock must not free, unmap or allocate memory (the allocator may
 * unmap, or wait for a thread that is unmapping), nor call anything that
 * might, such as ibv_reg_mr or ibv_dereg_mr.
 */
#ifndef TT_UTIL_MEMWATCH_H
#define TT_UTIL_MEMWATCH_H

#include "tutti.h"

#include <stddef.h>
#include <stdint.h>

/*
 * Called by the watcher, with the watch lock held, when the pages in
 * [start, end) of a watched range went away or moved. Must not allocate,
 * free or block.
 */
typedef void (*tt_memwatch_fn)(void *arg, uintptr_t start, uintptr_t end);

/* One subscriber's handle. */
typedef struct tt_memwatch_sub tt_memwatch_sub_t;

/*
 * Subscribe @p fn(@p arg) to the events of every watched range, starting the
 * watcher if it is the first. Returns TUTTI_OK and sets @p sub_p, or
 * TUTTI_ERR_UNSUPPORTED with the reason in @p why (no userfaultfd: an old
 * kernel, a sandbox that refuses the system call) or TUTTI_ERR_NO_MEMORY.
 * Thread safe.
 */
tutti_status_t tt_memwatch_subscribe(tt_memwatch_fn fn, void *arg, tt_memwatch_sub_t **sub_p,
                                     char *why, size_t why_size);

/*
 * End @p sub; when it returns, @p fn is not running and will not be called
 * again. The last one stops the watcher. Thread safe; not with the watch
 * lock held.
 */
void tt_memwatch_unsubscribe(tt_memwatch_sub_t *sub);

/*
 * Watch the pages in [start, end) (page-aligned) until they go away; needs
 * a subscriber. Returns 0, or an errno: EINVAL for memory userfaultfd cannot
 * watch (file mappings on most file systems, device memory), EBUSY for
 * memory another userfaultfd watches. Thread safe; not with the watch lock
 * held.
 */
int tt_memwatch_watch(uintptr_t start, uintptr_t end);

/* Take and release the watch lock (see the lock rules above). */
void tt_memwatch_lock(void);
void tt_memwatch_unlock(void);

/*
 * How many events the watcher has handled so far, with the watch lock
 * held: a change between two reads means some watched memory moved in
 * between.
 */
uint64_t tt_memwatch_events(void);

#endif
