/*
 * The registration cache (regcache.h): a small table searched linearly (it
 * serves messages large enough to go zero-copy, next to which a scan of a
 * few dozen entries costs nothing), guarded by the watch lock because the
 * watcher marks entries stale from its own thread.
 *
 * Everything that may allocate, free or unmap (ibv_reg_mr, ibv_dereg_mr,
 * watching a range) happens outside the lock; see memwatch.h for why.
 */
#include "config.h"

#include "transports/rdma/regcache.h"
#include "util/compiler.h"
#include "util/log.h"
#include "util/memwatch.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* What cached registrations allow: any message may use them either way. */
#define CACHED_ACCESS (IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_READ)

typedef struct regcache_entry {
    uintptr_t start, end; /* page-aligned */
    struct ibv_mr *mr;    /* NULL: a free entry */
    int refs;             /* messages using it */
    int stale;            /* its memory went away: never served again */
    uint64_t last_use;
} regcache_entry_t;

struct tt_rdma_regcache {
    const tt_verbs_t *v;
    struct ibv_pd *pd;
    const char *device;
    tt_memwatch_sub_t *watch; /* NULL: every buffer is registered per message */
    uintptr_t page;
    size_t max_entries, max_bytes;
    uint64_t clock;
    tt_rdma_regcache_stats_t stats;
    struct ibv_mr **victims; /* to deregister once the lock is released */
    size_t nvictims;
    regcache_entry_t entries[];
};

/* The watcher's news: pages in [start, end) went away. Called with the watch lock held. */
static void invalidate(void *arg, uintptr_t start, uintptr_t end)
{
    tt_rdma_regcache_t *c = arg;

    for (size_t i = 0; i < c->max_entries; i++) {
        regcache_entry_t *e = &c->entries[i];

        if (e->mr != NULL && !e->stale && e->start < end && start < e->end) {
            e->stale = 1;
            c->stats.invalidated++;
        }
    }
}

/* Say once per process why buffers are not cached. */
static void say_uncached(const char *why)
{
    static atomic_int said;

    if (atomic_exchange(&said, 1) == 0)
        tt_info("rdma: registrations are not cached (%s): large messages register their buffers "
                "each time",
                why);
}

tt_rdma_regcache_t *tt_rdma_regcache_create(const tt_verbs_t *v, struct ibv_pd *pd,
                                            const char *device, size_t max_entries,
                                            size_t max_bytes)
{
    tt_rdma_regcache_t *c;
    struct ibv_mr **victims;
    char why[128];

    if (max_bytes == 0)
        max_entries = 0;
    c = calloc(1, sizeof(*c) + max_entries * sizeof(c->entries[0]));
    victims = calloc(TT_MAX(max_entries, 1), sizeof(*victims));
    if (c == NULL || victims == NULL) {
        free(c);
        free(victims);
        return NULL;
    }
    *c = (tt_rdma_regcache_t){.v = v,
                              .pd = pd,
                              .device = device,
                              .page = (uintptr_t)sysconf(_SC_PAGESIZE),
                              .max_entries = max_entries,
                              .max_bytes = max_bytes,
                              .victims = victims};
    if (max_entries > 0 &&
        tt_memwatch_subscribe(invalidate, c, &c->watch, why, sizeof(why)) != TUTTI_OK) {
        say_uncached(why);
        c->max_entries = 0;
    }
    return c;
}

/* Take @p e out of the table; its registration goes on the victims list. Lock held. */
static void drop(tt_rdma_regcache_t *c, regcache_entry_t *e)
{
    c->victims[c->nvictims++] = e->mr;
    c->stats.bytes -= e->end - e->start;
    e->mr = NULL;
}

/* Deregister the victims; the lock is not held. */
static void bury_victims(tt_rdma_regcache_t *c)
{
    for (size_t i = 0; i < c->nvictims; i++)
        c->v->dereg_mr(c->victims[i]);
    c->nvictims = 0;
}

/* Drop the stale entries no message uses. Lock held. */
static void drop_stale(tt_rdma_regcache_t *c)
{
    for (size_t i = 0; i < c->max_entries; i++)
        if (c->entries[i].mr != NULL && c->entries[i].stale && c->entries[i].refs == 0)
            drop(c, &c->entries[i]);
}

/* A live entry holding [start, end), or NULL. Lock held. */
static regcache_entry_t *find(tt_rdma_regcache_t *c, uintptr_t start, uintptr_t end)
{
    for (size_t i = 0; i < c->max_entries; i++) {
        regcache_entry_t *e = &c->entries[i];

        if (e->mr != NULL && !e->stale && e->start <= start && end <= e->end)
            return e;
    }
    return NULL;
}

/*
 * A free entry with room for @p bytes more, evicting the least recently
 * used idle entries as needed; NULL if busy entries leave no room. Lock held.
 */
static regcache_entry_t *make_room(tt_rdma_regcache_t *c, size_t bytes)
{
    for (;;) {
        regcache_entry_t *free_entry = NULL, *oldest = NULL;

        for (size_t i = 0; i < c->max_entries; i++) {
            regcache_entry_t *e = &c->entries[i];

            if (e->mr == NULL)
                free_entry = e;
            else if (e->refs == 0 && (oldest == NULL || e->last_use < oldest->last_use))
                oldest = e;
        }
        if (free_entry != NULL && c->stats.bytes + bytes <= c->max_bytes)
            return free_entry;
        if (oldest == NULL)
            return NULL;
        drop(c, oldest);
        c->stats.evicted++;
    }
}

/* Register [buf, buf + len) for this message only. */
static int register_uncached(tt_rdma_regcache_t *c, const void *buf, size_t len, int access,
                             tt_rdma_reg_t *reg)
{
    *reg = (tt_rdma_reg_t){c->v->reg_mr(c->pd, (void *)buf, len, access), -1};
    c->stats.uncached++;
    return reg->mr != NULL ? 0 : errno;
}

int tt_rdma_reg_acquire(tt_rdma_regcache_t *c, const void *buf, size_t len, int access,
                        tt_rdma_reg_t *reg)
{
    uintptr_t start = (uintptr_t)buf & ~(c->page - 1);
    uintptr_t end = TT_ALIGN_UP((uintptr_t)buf + len, c->page);
    regcache_entry_t *e;
    struct ibv_mr *mr;
    uint64_t events;

    if (c->max_entries == 0 || end - start > c->max_bytes)
        return register_uncached(c, buf, len, access, reg);
    tt_memwatch_lock();
    drop_stale(c);
    e = find(c, start, end);
    if (e != NULL) {
        e->refs++;
        e->last_use = ++c->clock;
        c->stats.hits++;
        *reg = (tt_rdma_reg_t){e->mr, (int)(e - c->entries)};
    }
    events = tt_memwatch_events();
    tt_memwatch_unlock();
    bury_victims(c);
    if (e != NULL)
        return 0;

    c->stats.misses++;
    /*
     * Watched first: pages that go away from here on cannot be missed. Memory
     * that cannot be watched, or registered for every use (read-only pages),
     * is registered for this message only.
     */
    if (tt_memwatch_watch(start, end) != 0 ||
        (mr = c->v->reg_mr(c->pd, (void *)start, end - start, CACHED_ACCESS)) == NULL)
        return register_uncached(c, buf, len, access, reg);
    tt_memwatch_lock();
    /* Memory that moved while registering might be ours: use it once only. */
    e = tt_memwatch_events() == events ? make_room(c, end - start) : NULL;
    if (e != NULL) {
        *e = (regcache_entry_t){start, end, mr, 1, 0, ++c->clock};
        c->stats.bytes += end - start;
        *reg = (tt_rdma_reg_t){mr, (int)(e - c->entries)};
    } else {
        *reg = (tt_rdma_reg_t){mr, -1};
        c->stats.uncached++;
    }
    tt_memwatch_unlock();
    bury_victims(c);
    return 0;
}

void tt_rdma_reg_release(tt_rdma_regcache_t *c, tt_rdma_reg_t *reg)
{
    if (reg->mr == NULL)
        return;
    if (reg->entry < 0) {
        c->v->dereg_mr(reg->mr);
    } else {
        regcache_entry_t *e = &c->entries[reg->entry];

        tt_memwatch_lock();
        if (--e->refs == 0 && e->stale)
            drop(c, e);
        tt_memwatch_unlock();
        bury_victims(c);
    }
    *reg = (tt_rdma_reg_t){NULL, -1};
}

void tt_rdma_regcache_stats(tt_rdma_regcache_t *c, tt_rdma_regcache_stats_t *stats)
{
    if (c->watch != NULL)
        tt_memwatch_lock();
    *stats = c->stats;
    stats->entries = 0; /* counted here, not kept */
    for (size_t i = 0; i < c->max_entries; i++)
        stats->entries += c->entries[i].mr != NULL;
    if (c->watch != NULL)
        tt_memwatch_unlock();
}

void tt_rdma_regcache_destroy(tt_rdma_regcache_t *c)
{
    if (c == NULL)
        return;
    if (c->watch != NULL) {
        tt_memwatch_unsubscribe(c->watch);
        tt_debug("rdma: registration cache of %s: %llu hits, %llu misses, %llu invalidated, "
                 "%llu evicted",
                 c->device, (unsigned long long)c->stats.hits, (unsigned long long)c->stats.misses,
                 (unsigned long long)c->stats.invalidated, (unsigned long long)c->stats.evicted);
    }
    for (size_t i = 0; i < c->max_entries; i++)
        if (c->entries[i].mr != NULL)
            c->v->dereg_mr(c->entries[i].mr);
    free(c->victims);
    free(c);
}
