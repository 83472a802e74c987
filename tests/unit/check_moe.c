/*
 * MoE dispatch and combine on forked ranks (N in {1, 2, 3, 4, 8}).
 *
 * Each rank's routing is a function of a seed and its rank (random token
 * counts, 0 included; E = N, 2N, 4N; top_k 1 to 4 with empty slots and
 * tokens routed nowhere), so every rank regenerates every rank's routing
 * and computes what it must see itself:
 * - the layout: tokens sent to each rank (once per rank, however many of
 *   its experts live there), rows per local expert, and each row's origin
 *   in the documented order;
 * - dispatch: every row holds exactly its origin token's bytes (INT8,
 *   FP16, FP32, INT64; hidden 1, 3, 129; buffers off alignment);
 * - combine through identity experts: each token times the sum of its
 *   weights, zero for tokens routed nowhere; exact for FP32 and FP64 (the
 *   values and weights are small dyadic numbers, so no sum rounds), and for
 *   FP16 and BF16 within one rounding of each rank's partial sum and one of
 *   the total: |got - want| <= u (sum over ranks |partial| + |want|), with
 *   u = 2^-11 (fp16) and 2^-8 (bf16);
 * - bad input: every rank returns TUTTI_ERR_INVALID_ARG, nobody hangs, and
 *   the communicator still works.
 * A rank that finds a mismatch says which and aborts the communicator so
 * the others stop at once.
 */
#include "config.h"

#include "tutti.h"

#include "reduce/reduce.h"
#include "tests/lib/ranks.h"
#include "tests/lib/unit.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const int rank_counts[] = {1, 2, 3, 4, 8};
#define NUM_RANK_COUNTS ((int)(sizeof(rank_counts) / sizeof(rank_counts[0])))

#define EXPECT(rank, call, want)                                                                  \
    do {                                                                                          \
        tutti_status_t got_ = (call);                                                             \
        if (got_ != (want))                                                                       \
            return tt_fail(rank, "%s:%d: %s returned %s, expected %s", __FILE__, __LINE__, #call, \
                           tutti_status_string(got_), tutti_status_string(want));                 \
    } while (0)

/* Fail this rank and stop the others (they would wait for it otherwise). */
#define FAIL(comm, rank, ...)       \
    do {                            \
        tt_fail(rank, __VA_ARGS__); \
        tutti_comm_abort(comm);     \
        return 1;                   \
    } while (0)

/* ---------------------------------------------------------------- routing */

static uint64_t next_random(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

typedef struct routing {
    size_t tokens;
    int top_k, num_experts;
    int32_t *experts;
    float *weights;
} routing_t;

/*
 * Rank @p rank's routing for @p seed: up to 40 tokens (none on some ranks),
 * each slot empty with probability 1/5, one token in 10 routed nowhere,
 * weights in {1/4, 1/2, 3/4, 1}.
 */
static void make_routing(uint64_t seed, int rank, int top_k, int num_experts, routing_t *r)
{
    uint64_t state = seed * 1000003u + (uint64_t)rank * 7919u + 17u;
    size_t cells;

    r->top_k = top_k;
    r->num_experts = num_experts;
    r->tokens = next_random(&state) % 41;
    if ((seed + (uint64_t)rank) % 5 == 0)
        r->tokens = 0;
    cells = r->tokens * (size_t)top_k;
    r->experts = malloc(cells * sizeof(int32_t) + 1);
    r->weights = malloc(cells * sizeof(float) + 1);
    for (size_t t = 0; t < r->tokens; t++) {
        int32_t *ids = r->experts + t * (size_t)top_k;
        int nowhere = next_random(&state) % 10 == 0, chosen = 0;
        for (int s = 0; s < top_k; s++) {
            r->weights[t * (size_t)top_k + (size_t)s] = (float)(1 + next_random(&state) % 4) / 4.0f;
            ids[s] = -1;
            if (nowhere || chosen == num_experts || next_random(&state) % 5 == 0)
                continue;
            for (;;) {
                int32_t e = (int32_t)(next_random(&state) % (uint64_t)num_experts), dup = 0;
                for (int p = 0; p < s; p++)
                    dup |= ids[p] == e;
                if (!dup) {
                    ids[s] = e;
                    chosen++;
                    break;
                }
            }
        }
    }
}

static void free_routing(routing_t *r)
{
    free(r->experts);
    free(r->weights);
}

/* Does token t of @p r name an expert of rank d (with @p per experts each)? */
static int routed_to(const routing_t *r, size_t t, int d, int per)
{
    for (int s = 0; s < r->top_k; s++) {
        int32_t e = r->experts[t * (size_t)r->top_k + (size_t)s];
        if (e >= 0 && e / per == d)
            return 1;
    }
    return 0;
}

static int names_expert(const routing_t *r, size_t t, int32_t expert)
{
    for (int s = 0; s < r->top_k; s++)
        if (r->experts[t * (size_t)r->top_k + (size_t)s] == expert)
            return 1;
    return 0;
}

/*
 * The layout against the reference: tokens sent per rank, rows per local
 * expert, each row's origin in order. @p all holds every rank's routing.
 */
static int check_layout(tutti_comm_t comm, int me, int n, const routing_t *all,
                        tutti_moe_layout_t layout)
{
    int per = all[0].num_experts / n;
    size_t rows, *expert_rows = malloc((size_t)per * sizeof(size_t)),
                 *sent = calloc((size_t)n, sizeof(size_t));
    size_t *tokens, want_rows = 0, row = 0;
    int *ranks;

    EXPECT(me, tutti_moe_layout_sent(layout, sent), TUTTI_OK);
    for (int d = 0; d < n; d++) {
        size_t want = 0;
        for (size_t t = 0; t < all[me].tokens; t++)
            want += (size_t)routed_to(&all[me], t, d, per);
        if (sent[d] != want)
            FAIL(comm, me, "sends %zu tokens to rank %d, expected %zu", sent[d], d, want);
    }
    EXPECT(me, tutti_moe_layout_rows(layout, &rows, expert_rows), TUTTI_OK);
    ranks = malloc(rows * sizeof(int) + 1);
    tokens = malloc(rows * sizeof(size_t) + 1);
    EXPECT(me, tutti_moe_layout_origins(layout, ranks, tokens), TUTTI_OK);
    for (int e = 0; e < per; e++) {
        size_t want = 0;
        for (int r = 0; r < n; r++)
            for (size_t t = 0; t < all[r].tokens; t++) {
                if (!names_expert(&all[r], t, me * per + e))
                    continue;
                want++;
                if (row >= rows)
                    FAIL(comm, me, "only %zu rows; expert %d needs more", rows, e);
                if (ranks[row] != r || tokens[row] != t)
                    FAIL(comm, me,
                         "row %zu (expert %d) comes from rank %d token %zu, expected "
                         "rank %d token %zu",
                         row, e, ranks[row], tokens[row], r, t);
                row++;
            }
        if (expert_rows[e] != want)
            FAIL(comm, me, "local expert %d has %zu rows, expected %zu", e, expert_rows[e], want);
        want_rows += want;
    }
    if (rows != want_rows)
        FAIL(comm, me, "%zu rows, expected %zu", rows, want_rows);
    free(expert_rows);
    free(sent);
    free(ranks);
    free(tokens);
    return 0;
}

/* ---------------------------------------------------------------- values */

/* A small dyadic value: k/8 with |k| <= 30, exact in every float type. */
static double token_value(int rank, size_t t, size_t h)
{
    return (double)((int)(((size_t)rank * 131 + t * 31 + h * 7) % 61) - 30) / 8.0;
}

static void put(void *buf, size_t i, tutti_datatype_t type, double v)
{
    char *p = (char *)buf + i * tutti_datatype_size(type);
    float f = (float)v;
    uint16_t half;
    switch (type) {
    case TUTTI_FP32: memcpy(p, &f, sizeof(f)); break;
    case TUTTI_FP64: memcpy(p, &v, sizeof(v)); break;
    case TUTTI_FP16:
        half = tt_float_to_fp16(f);
        memcpy(p, &half, sizeof(half));
        break;
    case TUTTI_BF16:
        half = tt_float_to_bf16(f);
        memcpy(p, &half, sizeof(half));
        break;
    default: break;
    }
}

static double get(const void *buf, size_t i, tutti_datatype_t type)
{
    const char *p = (const char *)buf + i * tutti_datatype_size(type);
    float f;
    double d;
    uint16_t half;
    switch (type) {
    case TUTTI_FP32: memcpy(&f, p, sizeof(f)); return f;
    case TUTTI_FP64: memcpy(&d, p, sizeof(d)); return d;
    case TUTTI_FP16: memcpy(&half, p, sizeof(half)); return tt_fp16_to_float(half);
    case TUTTI_BF16: memcpy(&half, p, sizeof(half)); return tt_bf16_to_float(half);
    default: return NAN;
    }
}

/* Byte i of token t's row on rank r, for the byte-exact dispatch checks. */
static unsigned char token_byte(int r, size_t t, size_t i)
{
    return (unsigned char)((size_t)r * 73 + t * 151 + i * 29 + 1);
}

/* ---------------------------------------------------------------- (a) combine */

static const tutti_datatype_t float_types[] = {TUTTI_FP32, TUTTI_FP64, TUTTI_FP16, TUTTI_BF16};

/*
 * Dispatch, identity experts, combine, for every float type; @p shift moves
 * the experts' output and the result off alignment.
 */
static int check_identity_combine(tutti_comm_t comm, int me, int n, const routing_t *all,
                                  tutti_moe_layout_t layout, size_t hidden, int shift)
{
    const routing_t *mine = &all[me];
    int per = mine->num_experts / n;
    size_t rows;

    EXPECT(me, tutti_moe_layout_rows(layout, &rows, NULL), TUTTI_OK);
    for (size_t ti = 0; ti < sizeof(float_types) / sizeof(float_types[0]); ti++) {
        tutti_datatype_t type = float_types[ti];
        size_t es = tutti_datatype_size(type), nt = mine->tokens * hidden;
        double u = type == TUTTI_FP16 ? 0x1p-11 : type == TUTTI_BF16 ? 0x1p-8 : 0.0;
        char *tokens = malloc(nt * es + 1), *input = malloc(rows * hidden * es + 1);
        char *output = malloc(rows * hidden * es + 1 + (size_t)shift);
        char *out = malloc(nt * es + 1 + (size_t)shift);
        char *expert_output = shift ? output + shift : input, *result = out + shift;

        for (size_t t = 0; t < mine->tokens; t++)
            for (size_t h = 0; h < hidden; h++)
                put(tokens, t * hidden + h, type, token_value(me, t, h));
        memset(out, 0x5a, nt * es + 1 + (size_t)shift);
        EXPECT(me, tutti_moe_dispatch(layout, tokens, hidden, type, input), TUTTI_OK);
        if (shift)
            memcpy(expert_output, input, rows * hidden * es);
        EXPECT(me, tutti_moe_combine(layout, expert_output, hidden, type, result), TUTTI_OK);
        for (size_t t = 0; t < mine->tokens; t++)
            for (size_t h = 0; h < hidden; h++) {
                double v = token_value(me, t, h), want = 0.0, spread = 0.0, got;
                for (int d = 0; d < n; d++) {
                    double partial = 0.0;
                    for (int s = 0; s < mine->top_k; s++) {
                        size_t c = t * (size_t)mine->top_k + (size_t)s;
                        if (mine->experts[c] >= 0 && mine->experts[c] / per == d)
                            partial += (double)mine->weights[c] * v;
                    }
                    want += partial;
                    spread += fabs(partial);
                }
                got = get(result, t * hidden + h, type);
                if (!(fabs(got - want) <= u * (spread + fabs(want))))
                    FAIL(comm, me,
                         "combine %s hidden %zu: token %zu element %zu is %.9g, expected %.9g",
                         tutti_datatype_name(type), hidden, t, h, got, want);
            }
        free(tokens);
        free(input);
        free(output);
        free(out);
    }
    return 0;
}

/* Layouts and identity combines over E = N, 2N, 4N and top_k 1..4. */
static int combine_rank(int me, int n, const tutti_unique_id_t *id, void *arg)
{
    tutti_comm_t comm = tt_test_comm(me, n, id, NULL);
    routing_t *all = calloc((size_t)n, sizeof(routing_t));
    int cfg = 0;

    (void)arg;
    for (int mult = 1; mult <= 4; mult *= 2)
        for (int top_k = 1; top_k <= 4; top_k++, cfg++) {
            tutti_moe_layout_t layout;
            uint64_t seed = (uint64_t)cfg * 7 + (uint64_t)n;
            size_t hidden = 1 + (size_t)(cfg % 3) * 4;
            int weighted = cfg % 4 != 3;

            for (int r = 0; r < n; r++)
                make_routing(seed, r, top_k, mult * n, &all[r]);
            if (!weighted)
                for (int r = 0; r < n; r++)
                    for (size_t c = 0; c < all[r].tokens * (size_t)top_k; c++)
                        all[r].weights[c] = 1.0f;
            EXPECT(me,
                   tutti_moe_layout_create(all[me].tokens, top_k, all[me].experts,
                                           weighted ? all[me].weights : NULL, mult * n, comm,
                                           &layout),
                   TUTTI_OK);
            if (check_layout(comm, me, n, all, layout) != 0 ||
                check_identity_combine(comm, me, n, all, layout, hidden, cfg % 2) != 0)
                return tt_fail(me, "... with E = %d, top_k %d, seed %llu", mult * n, top_k,
                               (unsigned long long)seed);
            /* A layout serves many pairs: again, with another hidden size. */
            if (check_identity_combine(comm, me, n, all, layout, hidden + 8, 0) != 0)
                return 1;
            EXPECT(me, tutti_moe_layout_destroy(layout), TUTTI_OK);
            for (int r = 0; r < n; r++)
                free_routing(&all[r]);
        }
    free(all);
    EXPECT(me, tutti_comm_destroy(comm), TUTTI_OK);
    return 0;
}

START_TEST(identity_experts_give_tokens_times_weight_sums)
{
    ck_assert_int_eq(tt_run_ranks(rank_counts[_i], combine_rank, NULL, 90), 0);
}
END_TEST

/* ---------------------------------------------------------------- (b) dispatch */

static int dispatch_rank(int me, int n, const tutti_unique_id_t *id, void *arg)
{
    static const tutti_datatype_t types[] = {TUTTI_INT8, TUTTI_FP16, TUTTI_FP32, TUTTI_INT64};
    static const size_t hiddens[] = {1, 3, 129};
    tutti_comm_t comm = tt_test_comm(me, n, id, NULL);
    routing_t *all = calloc((size_t)n, sizeof(routing_t));

    (void)arg;
    for (int cfg = 0; cfg < 2; cfg++) {
        tutti_moe_layout_t layout;
        int top_k = 2 + cfg, num_experts = (cfg + 1) * 2 * n;
        size_t rows, *tokens_of;
        int *ranks_of;

        for (int r = 0; r < n; r++)
            make_routing(100 + (uint64_t)cfg, r, top_k, num_experts, &all[r]);
        EXPECT(me,
               tutti_moe_layout_create(all[me].tokens, top_k, all[me].experts, all[me].weights,
                                       num_experts, comm, &layout),
               TUTTI_OK);
        EXPECT(me, tutti_moe_layout_rows(layout, &rows, NULL), TUTTI_OK);
        ranks_of = malloc(rows * sizeof(int) + 1);
        tokens_of = malloc(rows * sizeof(size_t) + 1);
        EXPECT(me, tutti_moe_layout_origins(layout, ranks_of, NULL), TUTTI_OK);
        EXPECT(me, tutti_moe_layout_origins(layout, NULL, tokens_of), TUTTI_OK);
        for (size_t ti = 0; ti < sizeof(types) / sizeof(types[0]); ti++)
            for (size_t hi = 0; hi < sizeof(hiddens) / sizeof(hiddens[0]); hi++) {
                size_t hidden = hiddens[hi], rb = hidden * tutti_datatype_size(types[ti]);
                size_t shift = (ti + hi) % 2; /* odd addresses half the time */
                unsigned char *src = malloc(all[me].tokens * rb + 2);
                unsigned char *dst = malloc(rows * rb + 2);

                for (size_t t = 0; t < all[me].tokens; t++)
                    for (size_t i = 0; i < rb; i++)
                        src[shift + t * rb + i] = token_byte(me, t, i);
                memset(dst, 0xee, rows * rb + 2);
                EXPECT(me, tutti_moe_dispatch(layout, src + shift, hidden, types[ti], dst + shift),
                       TUTTI_OK);
                for (size_t row = 0; row < rows; row++)
                    for (size_t i = 0; i < rb; i++)
                        if (dst[shift + row * rb + i] !=
                            token_byte(ranks_of[row], tokens_of[row], i))
                            FAIL(comm, me,
                                 "dispatch %s hidden %zu: row %zu byte %zu is %u, expected %u "
                                 "(rank %d token %zu)",
                                 tutti_datatype_name(types[ti]), hidden, row, i,
                                 dst[shift + row * rb + i],
                                 token_byte(ranks_of[row], tokens_of[row], i), ranks_of[row],
                                 tokens_of[row]);
                if (dst[shift + rows * rb] != 0xee || (shift && dst[0] != 0xee))
                    FAIL(comm, me, "dispatch wrote outside expert_input");
                free(src);
                free(dst);
            }
        if (check_layout(comm, me, n, all, layout) != 0)
            return 1;
        free(ranks_of);
        free(tokens_of);
        EXPECT(me, tutti_moe_layout_destroy(layout), TUTTI_OK);
        for (int r = 0; r < n; r++)
            free_routing(&all[r]);
    }
    free(all);
    EXPECT(me, tutti_comm_destroy(comm), TUTTI_OK);
    return 0;
}

START_TEST(dispatch_delivers_each_rows_origin_token)
{
    ck_assert_int_eq(tt_run_ranks(rank_counts[_i], dispatch_rank, NULL, 90), 0);
}
END_TEST

/* ---------------------------------------------------------------- (c) once per rank */

/*
 * Four experts per rank; every token of rank r names top_k experts of rank
 * (r + t) mod n (and, for odd t, one more on the next rank), so it crosses
 * to each such rank once although it has up to four experts there.
 */
static int once_rank(int me, int n, const tutti_unique_id_t *id, void *arg)
{
    tutti_comm_t comm = tt_test_comm(me, n, id, NULL);
    routing_t *all = calloc((size_t)n, sizeof(routing_t));
    const int per = 4, top_k = 4;
    tutti_moe_layout_t layout;

    (void)arg;
    for (int r = 0; r < n; r++) {
        routing_t *x = &all[r];
        x->top_k = top_k;
        x->num_experts = per * n;
        x->tokens = 24 + (size_t)r;
        x->experts = malloc(x->tokens * top_k * sizeof(int32_t));
        x->weights = malloc(x->tokens * top_k * sizeof(float));
        for (size_t t = 0; t < x->tokens; t++) {
            int d = (int)(((size_t)r + t) % (size_t)n);
            for (int s = 0; s < top_k; s++) {
                /* Slot order scrambled; the last slot goes next door for odd t. */
                int local = (s + (int)t) % per;
                x->experts[t * top_k + s] = d * per + local;
                x->weights[t * top_k + s] = 0.25f * (float)(s + 1);
            }
            if (t % 2 == 1 && n > 1)
                x->experts[t * top_k + top_k - 1] = ((d + 1) % n) * per + (int)(t % per);
        }
    }
    EXPECT(me,
           tutti_moe_layout_create(all[me].tokens, top_k, all[me].experts, all[me].weights, per * n,
                                   comm, &layout),
           TUTTI_OK);
    {
        size_t *sent = malloc((size_t)n * sizeof(size_t)), total = 0;
        EXPECT(me, tutti_moe_layout_sent(layout, sent), TUTTI_OK);
        for (int d = 0; d < n; d++)
            total += sent[d];
        /* Each token to its rank once, odd tokens to one more. */
        if (total != all[me].tokens + (n > 1 ? all[me].tokens / 2 : 0))
            FAIL(comm, me, "sent %zu tokens in all, expected %zu", total,
                 all[me].tokens + (n > 1 ? all[me].tokens / 2 : 0));
        free(sent);
    }
    if (check_layout(comm, me, n, all, layout) != 0 ||
        check_identity_combine(comm, me, n, all, layout, 3, 1) != 0)
        return 1;
    EXPECT(me, tutti_moe_layout_destroy(layout), TUTTI_OK);
    for (int r = 0; r < n; r++)
        free_routing(&all[r]);
    free(all);
    EXPECT(me, tutti_comm_destroy(comm), TUTTI_OK);
    return 0;
}

START_TEST(tokens_cross_once_per_rank)
{
    ck_assert_int_eq(tt_run_ranks(rank_counts[_i], once_rank, NULL, 60), 0);
}
END_TEST

/* ---------------------------------------------------------------- (d) bad input */

/* Every rank must get @p want; the layout pointer must stay untouched. */
static int expect_rejected(tutti_comm_t comm, int me, const char *what, size_t tokens, int top_k,
                           const int32_t *experts, int num_experts, tutti_moe_layout_t *layout_p,
                           tutti_status_t want)
{
    tutti_moe_layout_t sentinel = (tutti_moe_layout_t)(uintptr_t)0x5a5a;
    tutti_status_t got;

    if (layout_p != NULL)
        *layout_p = sentinel;
    got = tutti_moe_layout_create(tokens, top_k, experts, NULL, num_experts, comm, layout_p);
    if (got != want)
        FAIL(comm, me, "%s: tutti_moe_layout_create returned %s, expected %s", what,
             tutti_status_string(got), tutti_status_string(want));
    if (layout_p != NULL && *layout_p != sentinel)
        FAIL(comm, me, "%s: the layout pointer was written", what);
    return 0;
}

static int bad_input_rank(int me, int n, const tutti_unique_id_t *id, void *arg)
{
    tutti_comm_t comm = tt_test_comm(me, n, id, NULL);
    const int last = n - 1, E = 2 * n;
    int32_t ids[4 * 2] = {0, -1, (int32_t)(E - 1), -1, 1, -1, 0, -1};
    int32_t bad[4 * 2];
    tutti_moe_layout_t layout, *lp = &layout;
    size_t rows, sent[8];
    float f[8] = {0};

    (void)arg;
    /* One rank's routing wrong in each way; everyone must refuse. */
    memcpy(bad, ids, sizeof(ids));
    if (me == last)
        bad[5] = E; /* out of range */
    if (expect_rejected(comm, me, "id out of range on the last rank", 2, 4, bad, E, lp,
                        TUTTI_ERR_INVALID_ARG) != 0)
        return 1;
    memcpy(bad, ids, sizeof(ids));
    if (me == 0)
        bad[3] = -2;
    if (expect_rejected(comm, me, "id -2 on rank 0", 2, 4, bad, E, lp, TUTTI_ERR_INVALID_ARG) != 0)
        return 1;
    memcpy(bad, ids, sizeof(ids));
    if (me == n / 2)
        bad[7] = 1; /* token 1 names expert 1 twice */
    if (expect_rejected(comm, me, "repeated id", 2, 4, bad, E, lp, TUTTI_ERR_INVALID_ARG) != 0)
        return 1;
    if (expect_rejected(comm, me, "top_k 0 on the last rank", 2, me == last ? 0 : 4, ids, E, lp,
                        TUTTI_ERR_INVALID_ARG) != 0 ||
        expect_rejected(comm, me, "NULL experts on rank 0", 2, 4, me == 0 ? NULL : ids, E, lp,
                        TUTTI_ERR_INVALID_ARG) != 0 ||
        expect_rejected(comm, me, "NULL layout_p on the last rank", 2, 4, ids, E,
                        me == last ? NULL : lp, TUTTI_ERR_INVALID_ARG) != 0 ||
        expect_rejected(comm, me, "num_experts 0", 2, 4, ids, 0, lp, TUTTI_ERR_INVALID_ARG) != 0)
        return 1;
    if (n > 1 && (expect_rejected(comm, me, "num_experts not a multiple of the ranks", 0, 4, NULL,
                                  n + 1, lp, TUTTI_ERR_INVALID_ARG) != 0 ||
                  expect_rejected(comm, me, "num_experts differs on the last rank", 2, 4, ids,
                                  me == last ? 4 * n : E, lp, TUTTI_ERR_INVALID_ARG) != 0 ||
                  expect_rejected(comm, me, "top_k differs on rank 0", 2, me == 0 ? 3 : 4, ids, E,
                                  lp, TUTTI_ERR_INVALID_ARG) != 0))
        return 1;
    EXPECT(me, tutti_moe_layout_create(0, 1, NULL, NULL, E, NULL, &layout), TUTTI_ERR_INVALID_COMM);

    /* The communicator still works, and so does a good layout. */
    EXPECT(me, tutti_moe_layout_create(2, 4, ids, NULL, E, comm, &layout), TUTTI_OK);
    EXPECT(me, tutti_moe_layout_rows(layout, &rows, NULL), TUTTI_OK);
    {
        /* Each rank's token 0 goes to experts 0 and E-1, token 1 to 1 and 0. */
        size_t want = me == 0 ? (n > 1 ? 3 * (size_t)n : 4) : 0;
        if (n > 1 && me == last)
            want = (size_t)n;
        if (rows != want)
            FAIL(comm, me, "%zu rows, expected %zu", rows, want);
    }

    /* Calls on a good layout with bad arguments, made alike on every rank. */
    EXPECT(me, tutti_moe_dispatch(NULL, f, 1, TUTTI_FP32, f), TUTTI_ERR_INVALID_ARG);
    EXPECT(me, tutti_moe_dispatch(layout, NULL, 1, TUTTI_FP32, f), TUTTI_ERR_INVALID_ARG);
    EXPECT(me, tutti_moe_dispatch(layout, f, 1, (tutti_datatype_t)42, f), TUTTI_ERR_UNSUPPORTED);
    EXPECT(me, tutti_moe_dispatch(layout, f, SIZE_MAX / 2, TUTTI_FP32, f), TUTTI_ERR_INVALID_ARG);
    EXPECT(me, tutti_moe_combine(layout, f, 1, TUTTI_INT8, f), TUTTI_ERR_UNSUPPORTED);
    EXPECT(me, tutti_moe_combine(layout, f, 1, TUTTI_INT32, f), TUTTI_ERR_UNSUPPORTED);
    EXPECT(me, tutti_moe_combine(layout, f, 1, TUTTI_FP32, NULL), TUTTI_ERR_INVALID_ARG);
    EXPECT(me, tutti_moe_layout_rows(NULL, &rows, NULL), TUTTI_ERR_INVALID_ARG);
    EXPECT(me, tutti_moe_layout_rows(layout, NULL, NULL), TUTTI_ERR_INVALID_ARG);
    EXPECT(me, tutti_moe_layout_origins(NULL, NULL, NULL), TUTTI_ERR_INVALID_ARG);
    EXPECT(me, tutti_moe_layout_sent(layout, NULL), TUTTI_ERR_INVALID_ARG);
    EXPECT(me, tutti_moe_layout_sent(NULL, sent), TUTTI_ERR_INVALID_ARG);
    EXPECT(me, tutti_moe_layout_destroy(NULL), TUTTI_ERR_INVALID_ARG);
    /* hidden 0 moves nothing, and is still one exchange on every rank. */
    EXPECT(me, tutti_moe_dispatch(layout, NULL, 0, TUTTI_FP32, NULL), TUTTI_OK);
    EXPECT(me, tutti_moe_combine(layout, NULL, 0, TUTTI_FP32, NULL), TUTTI_OK);
    EXPECT(me, tutti_moe_layout_destroy(layout), TUTTI_OK);
    EXPECT(me, tutti_barrier(comm), TUTTI_OK);
    EXPECT(me, tutti_comm_destroy(comm), TUTTI_OK);
    return 0;
}

START_TEST(bad_input_is_refused_on_every_rank)
{
    ck_assert_int_eq(tt_run_ranks(rank_counts[_i], bad_input_rank, NULL, 60), 0);
}
END_TEST

static Suite *moe_suite(void)
{
    Suite *s = suite_create("moe");
    TCase *layout = tcase_create("layout"), *data = tcase_create("data"),
          *bad = tcase_create("bad input");
    tcase_set_timeout(layout, 120);
    tcase_set_timeout(data, 120);
    tcase_set_timeout(bad, 120);
    tcase_add_loop_test(layout, tokens_cross_once_per_rank, 0, NUM_RANK_COUNTS);
    tcase_add_loop_test(data, dispatch_delivers_each_rows_origin_token, 0, NUM_RANK_COUNTS);
    tcase_add_loop_test(data, identity_experts_give_tokens_times_weight_sums, 0, NUM_RANK_COUNTS);
    tcase_add_loop_test(bad, bad_input_is_refused_on_every_rank, 0, NUM_RANK_COUNTS);
    suite_add_tcase(s, layout);
    suite_add_tcase(s, data);
    suite_add_tcase(s, bad);
    return s;
}

TT_UNIT_MAIN(moe_suite)
