/* Choosing the algorithm, chunk and channels of a call; see select.h. */
#include "config.h"

#include "coll/select.h"

#include "coll/cost.h"
#include "coll/ring.h"
#include "util/log.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const tt_config_field_t coll_fields[] = {
    {"ALGO", "auto",
     "algorithms: auto, one name for every collective that has it (ring, tree, hier, rd, chain, "
     "binomial, dissemination, pairwise, bruck; latency = rd/binomial/bruck, bandwidth = "
     "ring/chain/pairwise), or per collective: allreduce=tree,alltoall=bruck",
     TT_CFG_STRING, offsetof(tt_coll_settings_t, algo), NULL},
    {"CHUNK_SIZE", "auto", "bytes per pipeline chunk (auto: from the cost model)", TT_CFG_SIZE,
     offsetof(tt_coll_settings_t, chunk_bytes), NULL},
    {"CHANNELS", "auto", "parallel rings per collective (auto: one per rail between hosts)",
     TT_CFG_SIZE, offsetof(tt_coll_settings_t, channels), NULL},
    {"PIPELINE_SLOTS", "4", "partial-result buffers a chain reduce cycles through (1-16)",
     TT_CFG_SIZE, offsetof(tt_coll_settings_t, pipeline_slots), NULL},
    {"PART_STEPS", "4096",
     "plans longer than this many steps per rank are built and run in parts of about this "
     "size, so that plan memory stays bounded at any scale (0: never split)",
     TT_CFG_SIZE, offsetof(tt_coll_settings_t, part_steps), NULL},
    {"A2A_AGGREGATE", "8K",
     "hierarchical all-to-all-v: a host pair whose blocks average at most this many bytes "
     "goes through the pair's carriers as one message; a pair with larger ones exchanges "
     "directly, rank to rank",
     TT_CFG_SIZE, offsetof(tt_coll_settings_t, a2a_aggregate_bytes), NULL},
    {"TUNING_FILE", "",
     "rules overriding the cost model: 'collective min max algo [chunk=] [channels=]'",
     TT_CFG_STRING, offsetof(tt_coll_settings_t, tuning_file), NULL},
};

const tt_config_table_t tt_coll_config_table = {"coll", coll_fields, TT_ARRAY_SIZE(coll_fields),
                                                sizeof(tt_coll_settings_t)};

/* Collective names as users write them (reduce_scatter also as reducescatter). */
static int kind_from_name(const char *name, size_t len)
{
    for (int k = 0; k < TT_COLL_KIND_COUNT; k++)
        if (strlen(tt_coll_kind_names[k]) == len && strncmp(name, tt_coll_kind_names[k], len) == 0)
            return k;
    if (len == 13 && strncmp(name, "reducescatter", len) == 0)
        return TT_COLL_REDUCE_SCATTER;
    return -1;
}

static int algo_from_name(const char *name, size_t len)
{
    for (int a = 0; a < TT_ALGO_COUNT; a++)
        if (strlen(tt_algo_names[a]) == len && strncmp(name, tt_algo_names[a], len) == 0)
            return a;
    return -1;
}

/* Apply one name to every collective: latency and bandwidth pick a family. */
static int apply_everywhere(const char *name, size_t len, tt_algo_t forced[TT_COLL_KIND_COUNT])
{
    int algo = algo_from_name(name, len), any = 0;
    int latency = len == 7 && strncmp(name, "latency", 7) == 0;
    int bandwidth = len == 9 && strncmp(name, "bandwidth", 9) == 0;

    for (int k = 0; k < TT_COLL_KIND_COUNT; k++) {
        tt_algo_t pick = TT_ALGO_AUTO;
        if (latency)
            pick = k == TT_COLL_ALLREDUCE                            ? TT_ALGO_RD
                   : (k == TT_COLL_BROADCAST || k == TT_COLL_REDUCE) ? TT_ALGO_BINOMIAL
                   : k == TT_COLL_ALLTOALL                           ? TT_ALGO_BRUCK
                                                                     : TT_ALGO_AUTO;
        else if (bandwidth)
            pick = (k == TT_COLL_BROADCAST || k == TT_COLL_REDUCE)     ? TT_ALGO_CHAIN
                   : (k == TT_COLL_ALLTOALL || k == TT_COLL_ALLTOALLV) ? TT_ALGO_PAIRWISE
                   : (k == TT_COLL_BARRIER || k == TT_COLL_P2P)        ? TT_ALGO_AUTO
                                                                       : TT_ALGO_RING;
        else if (algo > 0 && tt_algo_supports((tt_algo_t)algo, (tt_coll_kind_t)k))
            pick = (tt_algo_t)algo;
        if (pick != TT_ALGO_AUTO) {
            forced[k] = pick;
            any = 1;
        }
    }
    return any || algo == TT_ALGO_AUTO || latency || bandwidth;
}

tutti_status_t tt_parse_algo_setting(const char *text, tt_algo_t forced[TT_COLL_KIND_COUNT])
{
    const char *p = text;

    for (int k = 0; k < TT_COLL_KIND_COUNT; k++)
        forced[k] = TT_ALGO_AUTO;
    while (*p != '\0') {
        size_t len = strcspn(p, ",");
        const char *eq = memchr(p, '=', len);
        int ok;

        if (eq == NULL) {
            ok = apply_everywhere(p, len, forced);
        } else {
            int kind = kind_from_name(p, (size_t)(eq - p));
            int algo = algo_from_name(eq + 1, len - (size_t)(eq - p) - 1);
            ok = kind >= 0 && algo >= 0 &&
                 (algo == TT_ALGO_AUTO || tt_algo_supports((tt_algo_t)algo, (tt_coll_kind_t)kind));
            if (ok)
                forced[kind] = (tt_algo_t)algo;
        }
        if (!ok) {
            tt_error("TUTTI_ALGO='%s': cannot use '%.*s' (names: auto, ring, tree, hier, rd, "
                     "chain, binomial, dissemination, latency, bandwidth; per collective: "
                     "allreduce=tree; each collective only takes algorithms that implement it)",
                     text, (int)len, p);
            return TUTTI_ERR_INVALID_ARG;
        }
        p += len + (p[len] == ',');
    }
    return TUTTI_OK;
}

static tutti_status_t parse_rule(const char *line, tt_tuning_rule_t *rule)
{
    char kind[32], min[32], max[32], algo[32], extra[2][64];
    int n = sscanf(line, "%31s %31s %31s %31s %63s %63s", kind, min, max, algo, extra[0], extra[1]);
    int k, a;

    if (n < 4 || (k = kind_from_name(kind, strlen(kind))) < 0 ||
        (a = algo_from_name(algo, strlen(algo))) <= 0 ||
        !tt_algo_supports((tt_algo_t)a, (tt_coll_kind_t)k))
        return TUTTI_ERR_INVALID_ARG;
    size_t lo, hi = SIZE_MAX;

    memset(rule, 0, sizeof(*rule));
    rule->kind = (tt_coll_kind_t)k;
    rule->algo = (tt_algo_t)a;
    if (tt_parse_size(min, &lo) != TUTTI_OK ||
        (strcmp(max, "inf") != 0 && tt_parse_size(max, &hi) != TUTTI_OK))
        return TUTTI_ERR_INVALID_ARG;
    rule->min_bytes = lo;
    rule->max_bytes = hi;
    for (int i = 0; i < n - 4; i++) {
        if (strncmp(extra[i], "chunk=", 6) == 0 &&
            tt_parse_size(extra[i] + 6, &rule->chunk_bytes) == TUTTI_OK)
            continue;
        if (strncmp(extra[i], "channels=", 9) == 0 && (rule->channels = atoi(extra[i] + 9)) > 0)
            continue;
        return TUTTI_ERR_INVALID_ARG;
    }
    return TUTTI_OK;
}

static tutti_status_t load_rules(tt_selector_t *sel, const char *path)
{
    char line[256];
    int lineno = 0;
    FILE *f = fopen(path, "r");

    if (f == NULL) {
        tt_error("TUTTI_TUNING_FILE=%s cannot be opened", path);
        return TUTTI_ERR_INVALID_ARG;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        tt_tuning_rule_t rule, *grown;
        char *hash = strchr(line, '#');
        lineno++;
        if (hash != NULL)
            *hash = '\0';
        if (strspn(line, " \t\r\n") == strlen(line))
            continue;
        if (parse_rule(line, &rule) != TUTTI_OK) {
            tt_error("TUTTI_TUNING_FILE=%s, line %d: expected 'collective min max algorithm "
                     "[chunk=size] [channels=n]' with an algorithm the collective has",
                     path, lineno);
            fclose(f);
            return TUTTI_ERR_INVALID_ARG;
        }
        grown = realloc(sel->rules, (size_t)(sel->nrules + 1) * sizeof(*grown));
        if (grown == NULL) {
            fclose(f);
            return TUTTI_ERR_NO_MEMORY;
        }
        sel->rules = grown;
        sel->rules[sel->nrules++] = rule;
    }
    fclose(f);
    return TUTTI_OK;
}

tutti_status_t tt_selector_init(tt_selector_t *sel, const tt_config_overrides_t *overrides,
                                const tt_cluster_t *cluster)
{
    memset(sel, 0, sizeof(*sel));
    pthread_mutex_init(&sel->memo_lock, NULL);
    sel->cluster = cluster;
    TT_CHECK(tt_config_load(&tt_coll_config_table, overrides, &sel->settings));
    if (sel->settings.pipeline_slots < 1 || sel->settings.pipeline_slots > TT_SLOT_RING_MAX) {
        tt_error("TUTTI_PIPELINE_SLOTS must be between 1 and %d", TT_SLOT_RING_MAX);
        return TUTTI_ERR_INVALID_ARG;
    }
    TT_CHECK(tt_parse_algo_setting(sel->settings.algo, sel->forced));
    if (sel->settings.tuning_file[0] != '\0') {
        tutti_status_t status = load_rules(sel, sel->settings.tuning_file);
        if (status != TUTTI_OK) {
            tt_selector_fini(sel);
            return status;
        }
    }
    return TUTTI_OK;
}

void tt_selector_fini(tt_selector_t *sel)
{
    free(sel->rules);
    sel->rules = NULL;
    sel->nrules = 0;
    pthread_mutex_destroy(&sel->memo_lock);
}

/* Can @p algo run @p d on this cluster? */
static int can_run(tt_algo_t algo, const tt_coll_desc_t *d, const tt_cluster_t *c)
{
    if (!tt_algo_supports(algo, d->kind))
        return 0;
    /* Bruck's plan comes in one part of O(n) steps: not for huge communicators. */
    if (algo == TT_ALGO_BRUCK)
        return d->nranks <= 4096;
    /* The hierarchical plan needs hosts of equal size, several of them. */
    if (algo == TT_ALGO_HIER)
        return c != NULL && c->ranks_per_host > 0 && c->nhosts > 1 && c->nranks == d->nranks;
    return 1;
}

static void fill_defaults(const tt_selector_t *sel, tt_coll_desc_t *d)
{
    const tt_cluster_t *c = sel->cluster;
    int rails = c != NULL && c->nhosts > 1 ? c->rails : 1;

    d->channels = sel->settings.channels > 0 ? (int)sel->settings.channels : rails;
    d->channels = TT_MIN(TT_MAX(d->channels, 1), TT_MAX_CHANNELS);
    d->pipeline_slots = (int)sel->settings.pipeline_slots;
    d->part_steps = (uint32_t)TT_MIN(sel->settings.part_steps, UINT32_MAX);
    d->aggregate_bytes = sel->settings.a2a_aggregate_bytes;
    d->cluster = c != NULL && c->nranks == d->nranks ? c : NULL;
}

static void fill_chunk(const tt_selector_t *sel, tt_coll_desc_t *d, size_t rule_chunk)
{
    d->chunk_bytes = rule_chunk > 0                  ? rule_chunk
                     : sel->settings.chunk_bytes > 0 ? sel->settings.chunk_bytes
                                                     : tt_cost_chunk(d, sel->cluster);
}

/*
 * The count to choose by. All-to-all-v's is what this rank sends, which
 * differs from rank to rank, while every rank must choose alike: it is
 * chosen as if its blocks were empty, by the shape of the cluster alone.
 */
static uint64_t count_to_choose_by(const tt_coll_desc_t *d)
{
    return d->kind == TT_COLL_ALLTOALLV ? 0 : d->count;
}

static const char *select_now(const tt_selector_t *sel, tt_coll_desc_t *d)
{
    uint64_t bytes;
    double best = INFINITY;

    fill_defaults(sel, d);
    if (sel->forced[d->kind] != TT_ALGO_AUTO && can_run(sel->forced[d->kind], d, d->cluster)) {
        d->algo = sel->forced[d->kind];
        fill_chunk(sel, d, 0);
        return "TUTTI_ALGO";
    }
    bytes = count_to_choose_by(d) * d->elem_size;
    for (int i = 0; i < sel->nrules; i++) {
        const tt_tuning_rule_t *rule = &sel->rules[i];
        if (rule->kind != d->kind || bytes < rule->min_bytes || bytes > rule->max_bytes ||
            !can_run(rule->algo, d, d->cluster))
            continue;
        d->algo = rule->algo;
        if (rule->channels > 0)
            d->channels = TT_MIN(rule->channels, TT_MAX_CHANNELS);
        fill_chunk(sel, d, rule->chunk_bytes);
        return "tuning file";
    }
    d->algo = TT_ALGO_AUTO;
    for (int a = TT_ALGO_AUTO + 1; a < TT_ALGO_COUNT; a++) {
        tt_coll_desc_t candidate = *d;
        double t;
        if (!can_run((tt_algo_t)a, d, d->cluster))
            continue;
        candidate.algo = (tt_algo_t)a;
        candidate.count = count_to_choose_by(d);
        fill_chunk(sel, &candidate, 0);
        t = tt_cost_predict(&candidate, d->cluster);
        candidate.count = d->count;
        if (t < best) {
            best = t;
            *d = candidate;
        }
    }
    return "cost model";
}

/* Is @p a the same call as @p b, as far as choosing goes? */
static int same_call(const tt_coll_desc_t *a, const tt_coll_desc_t *b)
{
    return a->kind == b->kind && a->count == b->count && a->elem_size == b->elem_size &&
           a->root == b->root && a->in_place == b->in_place && a->rank == b->rank &&
           a->nranks == b->nranks;
}

const char *tt_select(tt_selector_t *sel, tt_coll_desc_t *d)
{
    tt_coll_desc_t asked = *d;
    tt_select_memo_t *m;
    const char *why = NULL;

    pthread_mutex_lock(&sel->memo_lock);
    for (int i = 0; i < sel->nmemo && why == NULL; i++)
        if (same_call(&sel->memo[i].asked, d)) {
            *d = sel->memo[i].chosen;
            why = sel->memo[i].why;
        }
    if (why == NULL) {
        why = select_now(sel, d);
        m = &sel->memo[sel->memo_next];
        *m = (tt_select_memo_t){asked, *d, why};
        sel->memo_next = (sel->memo_next + 1) % TT_SELECT_MEMO;
        sel->nmemo = TT_MIN(sel->nmemo + 1, TT_SELECT_MEMO);
    }
    pthread_mutex_unlock(&sel->memo_lock);
    return why;
}
