/*
 * Shared-memory segments private to one job: mode 0600, a name unique to the
 * creating process and communicator, and unlinked as soon as every peer has
 * mapped it, so that nothing is left behind even if the job is killed. A
 * segment whose creator died before that point is swept by the next rank
 * that creates one.
 */
#ifndef TT_SHM_SEGMENT_H
#define TT_SHM_SEGMENT_H

#include "util/compiler.h"

#include <stdint.h>

#define TT_SHM_NAME_MAX 64
#define TT_SHM_NAME_PREFIX "tutti-shm-"

/* Create and map a new segment of @p size bytes; writes its name to @p name. */
tutti_status_t tt_shm_segment_create(uint64_t comm_ctx, int rank, size_t size,
                                     char name[TT_SHM_NAME_MAX], void **base_p);

/* Map an existing segment read-write; fails unless it is exactly @p size bytes. */
tutti_status_t tt_shm_segment_open(const char *name, size_t size, void **base_p);

/* Remove the name (mappings stay valid). */
void tt_shm_segment_unlink(const char *name);

void tt_shm_segment_unmap(void *base, size_t size);

/* Unlink segments left by processes that no longer exist. */
void tt_shm_segment_sweep(void);

#endif
