/*
 * Choosing how to run a collective: TUTTI_ALGO (per collective) first, then
 * the rules of a tuning file (TUTTI_TUNING_FILE), then the cost model, which
 * prices every algorithm that can run the call on this cluster and takes the
 * cheapest. Chunk size and channel count come from TUTTI_CHUNK_SIZE and
 * TUTTI_CHANNELS when set, else from the model (chunk) and the rails.
 *
 * Tuning file: one rule per line, first match wins,
 *   <collective> <min bytes> <max bytes|inf> <algorithm> [chunk=<size>] [channels=<n>]
 * e.g. "allreduce 0 32K rd" or "allreduce 32K inf ring chunk=1M".
 */
#ifndef TT_COLL_SELECT_H
#define TT_COLL_SELECT_H

#include "coll/coll.h"

#include <pthread.h>

typedef struct tt_coll_settings {
    char algo[TT_CONFIG_STRING_MAX];
    size_t chunk_bytes; /* 0: auto */
    size_t channels;    /* 0: auto */
    size_t pipeline_slots;
    size_t part_steps; /* 0: plans in one part */
    size_t a2a_aggregate_bytes;
    char tuning_file[TT_CONFIG_STRING_MAX];
} tt_coll_settings_t;

extern const tt_config_table_t tt_coll_config_table;

typedef struct tt_tuning_rule {
    tt_coll_kind_t kind;
    uint64_t min_bytes, max_bytes;
    tt_algo_t algo;
    size_t chunk_bytes; /* 0: not given */
    int channels;       /* 0: not given */
} tt_tuning_rule_t;

/* Decisions remembered per selector: a training loop asks about the same few calls. */
#define TT_SELECT_MEMO 16

typedef struct tt_select_memo {
    tt_coll_desc_t asked, chosen; /* the call as asked (inputs only), and as resolved */
    const char *why;
} tt_select_memo_t;

typedef struct tt_selector {
    tt_coll_settings_t settings;
    tt_algo_t forced[TT_COLL_KIND_COUNT]; /* from TUTTI_ALGO; AUTO where not forced */
    tt_tuning_rule_t *rules;
    int nrules;
    const tt_cluster_t *cluster; /* the communicator's, or NULL */
    pthread_mutex_t memo_lock;   /* calls on one communicator may come from several threads */
    tt_select_memo_t memo[TT_SELECT_MEMO];
    int nmemo, memo_next;
} tt_selector_t;

/* Load settings (checking TUTTI_ALGO and the tuning file) for a communicator on @p cluster. */
tutti_status_t tt_selector_init(tt_selector_t *sel, const tt_config_overrides_t *overrides,
                                const tt_cluster_t *cluster);
void tt_selector_fini(tt_selector_t *sel);

/*
 * Resolve @p d's algorithm, channels, chunk and cluster (its kind, count,
 * element size, root, in-place and ranks must be set). Returns what decided
 * it: "TUTTI_ALGO", "tuning file" or "cost model". The last decisions are
 * remembered: pricing every algorithm on every call would cost more than a
 * small collective. Thread safe.
 */
const char *tt_select(tt_selector_t *sel, tt_coll_desc_t *d);

/* Parse a TUTTI_ALGO value into @p forced (per collective). */
tutti_status_t tt_parse_algo_setting(const char *text, tt_algo_t forced[TT_COLL_KIND_COUNT]);

#endif
