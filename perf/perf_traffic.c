/*
 * All-to-all-v's traffic patterns: how many elements each rank sends each
 * other rank. Every rank computes the whole nranks x nranks matrix from the
 * flags alone (a shared seed), so the ranks agree on every count without
 * exchanging any, and each can check what it receives.
 *
 * A pattern is a weight per (sender, receiver) pair, drawn once per run:
 *   uniform  1 for every pair;
 *   random   0 for about a quarter of the pairs, else 1..16, per pair;
 *   moe      each rank routes `tokens` tokens, each to `topk` distinct
 *            experts drawn with a Zipf skew (popularity order shuffled by
 *            the seed; experts spread evenly over the ranks); the weight of
 *            (s, d) is the number of rank s's tokens that go to rank d, a
 *            token counting once per rank even if several of its experts
 *            live there. Tokens whose experts live on their own rank stay
 *            there (the diagonal).
 * A row of the sweep, count elements per pair on average, then splits
 * nranks * nranks * count elements over the pairs in proportion to the
 * weights, rounded by D'Hondt's method (largest quotients w / (a + 1)):
 * the counts add up exactly, a pair of weight 0 gets nothing, and a pair
 * never gets fewer elements in a larger row (the method is house-monotone),
 * so the buffers sized for the largest row hold every row. The moe pattern
 * thus keeps one routing for the whole sweep and scales the token size with
 * the row, as a larger hidden dimension would.
 */
#include "perf_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Random pairs: one in RANDOM_ZERO_ONE_IN is empty, the others weigh 1..RANDOM_MAX_WEIGHT. */
#define RANDOM_ZERO_ONE_IN 4
#define RANDOM_MAX_WEIGHT 16
/* Expert weights are fixed-point: the most popular expert weighs this much. */
#define ZIPF_SCALE (1u << 20)

static const char *const pattern_names[PERF_NUM_PATTERNS] = {
    [PERF_PATTERN_UNIFORM] = "uniform",
    [PERF_PATTERN_RANDOM] = "random",
    [PERF_PATTERN_MOE] = "moe",
};

int perf_find_pattern(const char *name, size_t len)
{
    for (int p = 0; p < PERF_NUM_PATTERNS; p++)
        if (strlen(pattern_names[p]) == len && strncmp(name, pattern_names[p], len) == 0)
            return p;
    return -1;
}

const char *perf_pattern_name(perf_pattern_t pattern)
{
    return (unsigned)pattern < PERF_NUM_PATTERNS ? pattern_names[pattern] : "?";
}

void perf_pattern_text(const perf_pattern_opts_t *p, int nranks, char *text, size_t len)
{
    switch (p->pattern) {
    case PERF_PATTERN_RANDOM:
        snprintf(text, len, "random (a weight of 0 or 1..%d per pair, seed %llu)",
                 RANDOM_MAX_WEIGHT, (unsigned long long)p->seed);
        break;
    case PERF_PATTERN_MOE:
        snprintf(text, len,
                 "moe (%d experts over %d ranks, top-%d, Zipf exponent %g, %ld tokens per rank, "
                 "seed %llu)",
                 p->experts, nranks, p->topk, p->zipf, p->tokens, (unsigned long long)p->seed);
        break;
    default: snprintf(text, len, "uniform"); break;
    }
}

/* ---------------------------------------------------------------- drawing the weights */

/* A stream of random numbers that depends on the seed and a stream number only. */
typedef struct rng {
    uint64_t state;
} rng_t;

static rng_t rng_start(uint64_t seed, uint64_t stream)
{
    rng_t r = {perf_mix64(seed ^ perf_mix64(stream))};
    return r;
}

static uint64_t rng_next(rng_t *r)
{
    return perf_mix64(r->state++);
}

static void random_weights(const perf_pattern_opts_t *p, int nranks, uint64_t *weight)
{
    size_t cells = (size_t)nranks * (size_t)nranks;
    rng_t r = rng_start(p->seed, 0);

    for (size_t c = 0; c < cells; c++) {
        uint64_t h = rng_next(&r);
        weight[c] = h % RANDOM_ZERO_ONE_IN == 0 ? 0 : 1 + (h >> 8) % RANDOM_MAX_WEIGHT;
    }
}

/* The experts' Zipf weights: popularity order shuffled by the seed, fixed-point. */
static void expert_weights(const perf_pattern_opts_t *p, uint64_t *w)
{
    rng_t r = rng_start(p->seed, 1);

    for (int e = 0; e < p->experts; e++) {
        double v = floor((double)ZIPF_SCALE / pow(e + 1.0, p->zipf) + 0.5);
        w[e] = v >= 1 ? (uint64_t)v : 1;
    }
    for (int e = p->experts - 1; e > 0; e--) { /* Fisher-Yates */
        int j = (int)(rng_next(&r) % (uint64_t)(e + 1));
        uint64_t t = w[e];
        w[e] = w[j];
        w[j] = t;
    }
}

/* Draw one expert from those not taken yet (@p left is their total weight), and take it. */
static int draw_expert(const uint64_t *w, int experts, unsigned char *taken, uint64_t left,
                       rng_t *r)
{
    uint64_t x = rng_next(r) % left;
    int e, last = 0;

    for (e = 0; e < experts; e++) {
        if (taken[e])
            continue;
        last = e;
        if (x < w[e])
            break;
        x -= w[e];
    }
    e = e < experts ? e : last; /* not reached: x < left, the weights not taken */
    taken[e] = 1;
    return e;
}

/*
 * Route every rank's tokens; weight[s][d] counts rank s's tokens that go
 * to rank d. Expert e lives on rank e * nranks / experts. Returns -1 if out
 * of memory.
 */
static int moe_weights(const perf_pattern_opts_t *p, int nranks, uint64_t *weight)
{
    uint64_t *w = malloc((size_t)p->experts * sizeof(*w)), total = 0;
    unsigned char *taken = malloc((size_t)p->experts), *hit = malloc((size_t)nranks);
    int status = -1;

    if (w == NULL || taken == NULL || hit == NULL)
        goto out;
    expert_weights(p, w);
    for (int e = 0; e < p->experts; e++)
        total += w[e];
    for (int s = 0; s < nranks; s++) {
        rng_t r = rng_start(p->seed, 2 + (uint64_t)s);
        for (long t = 0; t < p->tokens; t++) {
            uint64_t left = total;
            memset(taken, 0, (size_t)p->experts);
            memset(hit, 0, (size_t)nranks);
            for (int k = 0; k < p->topk; k++) {
                int e = draw_expert(w, p->experts, taken, left, &r);
                int d = (int)((int64_t)e * nranks / p->experts);
                left -= w[e];
                weight[(size_t)s * (size_t)nranks + (size_t)d] += !hit[d];
                hit[d] = 1;
            }
        }
    }
    status = 0;
out:
    free(w);
    free(taken);
    free(hit);
    return status;
}

perf_traffic_t *perf_traffic_create(const perf_pattern_opts_t *p, int nranks, int rank)
{
    size_t cells = (size_t)nranks * (size_t)nranks, n = (size_t)nranks;
    perf_traffic_t *t = calloc(1, sizeof(*t));
    uint64_t sum = 0;

    if (t == NULL)
        return NULL;
    t->nranks = nranks;
    t->rank = rank;
    t->count = SIZE_MAX;
    t->weight = calloc(cells, sizeof(*t->weight));
    t->counts = calloc(cells, sizeof(*t->counts));
    t->sdispls = calloc(cells, sizeof(*t->sdispls));
    t->recvcounts = calloc(n, sizeof(*t->recvcounts));
    t->rdispls = calloc(n, sizeof(*t->rdispls));
    if (t->weight == NULL || t->counts == NULL || t->sdispls == NULL || t->recvcounts == NULL ||
        t->rdispls == NULL)
        goto err_free;
    if (p->pattern == PERF_PATTERN_RANDOM)
        random_weights(p, nranks, t->weight);
    else if (p->pattern == PERF_PATTERN_MOE && moe_weights(p, nranks, t->weight) != 0)
        goto err_free;
    for (size_t c = 0; c < cells; c++)
        sum += t->weight[c];
    /* Uniform, or a draw that left every pair empty (random on one rank, 1 in 4). */
    if (sum == 0)
        for (size_t c = 0; c < cells; c++)
            t->weight[c] = 1;
    return t;
err_free:
    perf_traffic_destroy(t);
    return NULL;
}

void perf_traffic_destroy(perf_traffic_t *t)
{
    if (t == NULL)
        return;
    free(t->weight);
    free(t->counts);
    free(t->sdispls);
    free(t->recvcounts);
    free(t->rdispls);
    free(t);
}

/* ---------------------------------------------------------------- splitting a row */

/* Is pair a's next quotient, weight / (count + 1), larger than b's (ties: the lower pair)? */
static int quotient_above(const perf_traffic_t *t, size_t a, size_t b)
{
    uint64_t qa = t->weight[a] * ((uint64_t)t->counts[b] + 1);
    uint64_t qb = t->weight[b] * ((uint64_t)t->counts[a] + 1);
    return qa > qb || (qa == qb && a < b);
}

/* Restore the heap of pairs (largest quotient first) below position @p at. */
static void sift_down(const perf_traffic_t *t, size_t *heap, size_t len, size_t at)
{
    for (;;) {
        size_t top = at, l = 2 * at + 1, r = l + 1, tmp;
        if (l < len && quotient_above(t, heap[l], heap[top]))
            top = l;
        if (r < len && quotient_above(t, heap[r], heap[top]))
            top = r;
        if (top == at)
            return;
        tmp = heap[at];
        heap[at] = heap[top];
        heap[top] = tmp;
        at = top;
    }
}

/*
 * D'Hondt: every pair first gets the floor of its exact share (the method
 * never gives less), then the pairs with the largest quotients one more
 * each until @p total is reached. Returns -1 if a product would overflow.
 */
static int apportion(perf_traffic_t *t, uint64_t total)
{
    size_t cells = (size_t)t->nranks * (size_t)t->nranks, len = 0;
    uint64_t sum = 0, wmax = 0, given = 0, q, rem;
    size_t *heap;

    for (size_t c = 0; c < cells; c++) {
        sum += t->weight[c];
        wmax = t->weight[c] > wmax ? t->weight[c] : wmax;
    }
    if (total >= UINT64_MAX / wmax || sum >= UINT64_MAX / wmax)
        return -1;
    heap = malloc(cells * sizeof(*heap));
    if (heap == NULL)
        return -1;
    q = total / sum;
    rem = total % sum;
    for (size_t c = 0; c < cells; c++) {
        t->counts[c] = (size_t)(q * t->weight[c] + rem * t->weight[c] / sum);
        given += t->counts[c];
        if (t->weight[c] > 0)
            heap[len++] = c;
    }
    for (size_t k = len / 2; k-- > 0;)
        sift_down(t, heap, len, k);
    for (; given < total; given++) {
        t->counts[heap[0]]++;
        sift_down(t, heap, len, 0);
    }
    free(heap);
    return 0;
}

/* Displacements, this rank's receive side, and the figures the report and the backends use. */
static void derive(perf_traffic_t *t)
{
    size_t n = (size_t)t->nranks, me = (size_t)t->rank;

    t->busiest = 0;
    t->symmetric = 1;
    t->last_receiver = 0;
    for (size_t s = 0; s < n; s++) {
        size_t at = 0, sent = 0, received = 0;
        for (size_t d = 0; d < n; d++) {
            t->sdispls[s * n + d] = at;
            at += t->counts[s * n + d];
            sent += d != s ? t->counts[s * n + d] : 0;
            received += d != s ? t->counts[d * n + s] : 0;
            t->symmetric &= t->counts[s * n + d] == t->counts[d * n + s];
        }
        t->busiest = sent > t->busiest ? sent : t->busiest;
        t->busiest = received > t->busiest ? received : t->busiest;
        if (received + t->counts[s * n + s] > 0)
            t->last_receiver = (int)s;
    }
    t->send_n = t->recv_n = 0;
    for (size_t s = 0; s < n; s++) {
        t->recvcounts[s] = t->counts[s * n + me];
        t->rdispls[s] = t->recv_n;
        t->recv_n += t->recvcounts[s];
        t->send_n += t->counts[me * n + s];
    }
}

int perf_traffic_scale(perf_traffic_t *t, size_t count)
{
    uint64_t n = (uint64_t)t->nranks;

    if (count == t->count)
        return 0;
    if (count > UINT64_MAX / n / n || count > SIZE_MAX / (size_t)n / (size_t)n ||
        apportion(t, count * n * n) != 0)
        return -1;
    derive(t);
    t->count = count;
    return 0;
}
