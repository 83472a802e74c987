/*
 * Registration cache: keeps user buffers registered with one protection
 * domain between messages, so that a training loop sending from the same
 * buffers registers them once instead of once per message.
 *
 * Bounded in entries and in pinned bytes; the least recently used idle
 * entry makes room. It stays correct when the user frees, unmaps or reuses
 * memory: every cached range is watched (util/memwatch.h), and an entry
 * whose pages went away is never served again and is deregistered once no
 * message uses it. Where memory cannot be watched (no userfaultfd, file
 * mappings) or the cache is full of busy entries, a buffer is registered
 * for its one message, as without a cache.
 *
 * Not thread safe: one caller at a time per cache (the transport's
 * progress), besides the watcher.
 */
#ifndef TT_RDMA_REGCACHE_H
#define TT_RDMA_REGCACHE_H

#include "transports/rdma/verbs.h"

#include <stddef.h>
#include <stdint.h>

typedef struct tt_rdma_regcache tt_rdma_regcache_t;

/* A registration handed out for one message; give it back with tt_rdma_reg_release. */
typedef struct tt_rdma_reg {
    struct ibv_mr *mr; /* NULL: none */
    int entry;         /* the cache entry, or -1: registered for this message only */
} tt_rdma_reg_t;

/* What a cache has done, for tests and the debug log. */
typedef struct tt_rdma_regcache_stats {
    uint64_t hits, misses; /* misses: registered, cached or not */
    uint64_t uncached;     /* registered for one message only */
    uint64_t invalidated;  /* entries whose memory went away */
    uint64_t evicted;      /* entries dropped to make room */
    size_t entries, bytes; /* held now */
} tt_rdma_regcache_stats_t;

/*
 * Make a cache for @p pd holding at most @p max_entries registrations of
 * @p max_bytes in all (0 of either: no cache). @p device names the device
 * in messages. Returns NULL only when out of memory. Without userfaultfd
 * the cache registers every buffer per message, and says why once per
 * process at info level.
 */
tt_rdma_regcache_t *tt_rdma_regcache_create(const tt_verbs_t *v, struct ibv_pd *pd,
                                            const char *device, size_t max_entries,
                                            size_t max_bytes);

/* Deregister everything and free @p c; no registration of it may be in use. */
void tt_rdma_regcache_destroy(tt_rdma_regcache_t *c);

/*
 * A registration covering [@p buf, @p buf + @p len) that allows at least
 * @p access (IBV_ACCESS_* flags), in @p reg. Returns 0, or an errno from
 * ibv_reg_mr (then @p reg->mr is NULL).
 */
int tt_rdma_reg_acquire(tt_rdma_regcache_t *c, const void *buf, size_t len, int access,
                        tt_rdma_reg_t *reg);

/* Give back @p reg (none is fine); it is NULL afterwards. */
void tt_rdma_reg_release(tt_rdma_regcache_t *c, tt_rdma_reg_t *reg);

/* What @p c has done so far. */
void tt_rdma_regcache_stats(tt_rdma_regcache_t *c, tt_rdma_regcache_stats_t *stats);

#endif
