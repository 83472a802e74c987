/*
 * Building an MoE layout (see tutti.h): check this rank's routing, agree
 * with the other ranks that everyone's is good, exchange how many tokens
 * (and rows) each pair will trade, then the routing records themselves, and
 * index the receive side so that dispatch and combine are plain loops.
 *
 * A rank must never leave a collective the others have entered, so nothing
 * returns early once the communicator is known to be valid: bad arguments
 * and failed allocations become a status that the ranks agree on (a MIN
 * all-reduce) before each exchange that depends on them. In order:
 *   1. all-reduce: every rank's verdict on its arguments, num_experts, top_k;
 *   2. all-to-all: per pair, the tokens and rows that will cross;
 *   3. all-reduce: every rank's verdict on allocating its receive side;
 *   4. all-to-all-v: the routing records.
 */
#include "config.h"

#include "moe/moe.h"

#include "util/compiler.h"
#include "util/log.h"

#include <stdlib.h>
#include <string.h>

static const char create_name[] = "tutti_moe_layout_create";

/* One routed slot of a token. */
typedef struct slot {
    int32_t expert; /* global id */
    float weight;
} slot_t;

/*
 * What is sent for each token crossing to a rank, as 32-bit words: the token
 * index (low word, high word), then `k` local expert ids in ascending order
 * (padded with -1), then their weights' bits (padded with 0). k is
 * min(top_k, experts per rank): a token cannot name more distinct experts
 * of one rank than that, and it is the same on every rank.
 */
#define RECORD_HEADER 2

/* Everything the build needs besides the layout; freed at the end. */
typedef struct build {
    size_t num_tokens;
    int top_k, num_experts, rank, nranks;
    const int32_t *experts;
    const float *weights;
    int local_experts, k;
    size_t words;    /* per record */
    slot_t *scratch; /* one token's slots, min(top_k, E) entries */
    uint64_t *hello; /* 4n: per rank (tokens, rows) to send, then received */
    uint32_t *records_out, *records_in;
    size_t *cursor; /* 2 * local_experts: per local expert, rows, then the next row */
} build_t;

void tt_moe_layout_free(struct tutti_moe_layout *layout)
{
    if (layout == NULL)
        return;
    free(layout->send_counts); /* base of all eight per-rank arrays */
    free(layout->sent_token);
    free(layout->token_start);
    free(layout->token_pos);
    free(layout->expert_rows);
    free(layout->slot_start);
    free(layout->slot_row);
    free(layout->slot_weight);
    free(layout->row_rank);
    free(layout->row_token);
    free(layout->stage_send);
    free(layout->stage_recv);
    free(layout->acc);
    free(layout);
}

static void build_free(build_t *b)
{
    free(b->scratch);
    free(b->hello);
    free(b->records_out);
    free(b->records_in);
    free(b->cursor);
}

static int slot_cmp(const void *a, const void *b)
{
    int32_t x = ((const slot_t *)a)->expert, y = ((const slot_t *)b)->expert;
    return (x > y) - (x < y);
}

/*
 * Token t's routed slots into b->scratch, sorted by expert id (so grouped by
 * rank, local experts ascending); *count_p receives how many. Checks the ids.
 */
static tutti_status_t token_slots(build_t *b, size_t t, size_t *count_p)
{
    const int32_t *ids = b->experts + t * (size_t)b->top_k;
    slot_t *s = b->scratch;
    size_t m = 0;

    for (int i = 0; i < b->top_k; i++) {
        if (ids[i] == -1)
            continue;
        if (ids[i] < -1 || ids[i] >= b->num_experts) {
            tt_error("%s: token %zu, slot %d: expert id %d is outside [-1, %d)", create_name, t, i,
                     (int)ids[i], b->num_experts);
            return TUTTI_ERR_INVALID_ARG;
        }
        /* More valid ids than there are experts: one of them repeats. */
        if (m == (size_t)b->num_experts) {
            tt_error("%s: token %zu names more experts than the %d there are (an id repeats)",
                     create_name, t, b->num_experts);
            return TUTTI_ERR_INVALID_ARG;
        }
        s[m].expert = ids[i];
        s[m].weight = b->weights != NULL ? b->weights[t * (size_t)b->top_k + (size_t)i] : 1.0f;
        m++;
    }
    if (m <= 16) {
        for (size_t i = 1; i < m; i++)
            for (size_t j = i; j > 0 && s[j - 1].expert > s[j].expert; j--) {
                slot_t tmp = s[j];
                s[j] = s[j - 1];
                s[j - 1] = tmp;
            }
    } else {
        qsort(s, m, sizeof(*s), slot_cmp);
    }
    for (size_t i = 1; i < m; i++)
        if (s[i].expert == s[i - 1].expert) {
            tt_error("%s: token %zu names expert %d more than once", create_name, t,
                     (int)s[i].expert);
            return TUTTI_ERR_INVALID_ARG;
        }
    *count_p = m;
    return TUTTI_OK;
}

static tutti_status_t check_args(const build_t *b, const tutti_moe_layout_t *layout_p)
{
    size_t cells;

    if (layout_p == NULL) {
        tt_error("%s: layout pointer is NULL", create_name);
        return TUTTI_ERR_INVALID_ARG;
    }
    if (b->top_k < 1) {
        tt_error("%s: top_k is %d; it must be at least 1", create_name, b->top_k);
        return TUTTI_ERR_INVALID_ARG;
    }
    if (b->num_experts < 1 || b->num_experts % b->nranks != 0) {
        tt_error("%s: num_experts %d is not a positive multiple of the %d ranks", create_name,
                 b->num_experts, b->nranks);
        return TUTTI_ERR_INVALID_ARG;
    }
    if (b->num_tokens > 0 && b->experts == NULL) {
        tt_error("%s: experts is NULL with %zu tokens", create_name, b->num_tokens);
        return TUTTI_ERR_INVALID_ARG;
    }
    if (__builtin_mul_overflow(b->num_tokens, (size_t)b->top_k, &cells) ||
        cells > SIZE_MAX / sizeof(int32_t)) {
        tt_error("%s: %zu tokens x top_k %d do not fit in memory", create_name, b->num_tokens,
                 b->top_k);
        return TUTTI_ERR_INVALID_ARG;
    }
    return TUTTI_OK;
}

static void *alloc_array(size_t count, size_t size, const char *what)
{
    size_t bytes;
    void *p = NULL;

    if (!__builtin_mul_overflow(count, size, &bytes))
        p = malloc(bytes > 0 ? bytes : 1);
    if (p == NULL)
        tt_error("%s: out of memory for %zu %s", create_name, count, what);
    return p;
}

/*
 * Check every token's routing and count, per destination rank, the tokens
 * (layout->send_counts) and rows (b->hello) it will receive from this rank.
 */
static tutti_status_t count_send_side(build_t *b, struct tutti_moe_layout *l)
{
    size_t m, total = 0;

    for (int d = 0; d < b->nranks; d++)
        b->hello[2 * d] = b->hello[2 * d + 1] = 0;
    for (size_t t = 0; t < b->num_tokens; t++) {
        int last = -1;
        TT_CHECK(token_slots(b, t, &m));
        for (size_t i = 0; i < m; i++) {
            int d = b->scratch[i].expert / b->local_experts;
            if (d != last)
                b->hello[2 * d]++;
            b->hello[2 * d + 1]++;
            last = d;
        }
    }
    for (int d = 0; d < b->nranks; d++) {
        l->send_counts[d] = (size_t)b->hello[2 * d];
        l->send_displs[d] = total;
        total += l->send_counts[d]; /* at most T x top_k: no overflow */
    }
    l->total_sent = total;
    return TUTTI_OK;
}

/* Fill the send side's index and this rank's records, in sent order. */
static tutti_status_t build_send_side(build_t *b, struct tutti_moe_layout *l)
{
    size_t m, n = (size_t)b->nranks, *next, *start;

    l->sent_token = alloc_array(l->total_sent, sizeof(size_t), "sent tokens");
    l->token_pos = alloc_array(l->total_sent, sizeof(size_t), "sent tokens");
    l->token_start = alloc_array(b->num_tokens + 1, sizeof(size_t), "tokens");
    b->records_out = alloc_array(l->total_sent, b->words * sizeof(uint32_t), "routing records");
    if (l->sent_token == NULL || l->token_pos == NULL || l->token_start == NULL ||
        b->records_out == NULL)
        return TUTTI_ERR_NO_MEMORY;

    /* The receive counts are not known yet: borrow them as cursors. */
    next = l->recv_counts;
    memcpy(next, l->send_displs, n * sizeof(size_t));
    start = l->token_start;
    start[0] = 0;
    for (size_t t = 0; t < b->num_tokens; t++) {
        TT_CHECK(token_slots(b, t, &m));
        start[t + 1] = 0;
        for (size_t i = 0; i < m;) {
            int d = b->scratch[i].expert / b->local_experts;
            size_t p = next[d]++;
            uint32_t *rec = b->records_out + p * b->words;
            int s = 0;

            l->sent_token[p] = t;
            rec[0] = (uint32_t)t;
            rec[1] = (uint32_t)((uint64_t)t >> 32);
            for (; i < m && b->scratch[i].expert / b->local_experts == d; i++, s++) {
                int32_t local = b->scratch[i].expert - d * b->local_experts;
                memcpy(&rec[RECORD_HEADER + s], &local, sizeof(local));
                memcpy(&rec[RECORD_HEADER + b->k + s], &b->scratch[i].weight, sizeof(float));
            }
            for (; s < b->k; s++) {
                rec[RECORD_HEADER + s] = UINT32_MAX; /* -1 */
                rec[RECORD_HEADER + b->k + s] = 0;
            }
            start[t + 1]++;
        }
    }
    /*
     * Per token, its sent positions in rank order: count, prefix-sum, fill
     * (walking sent order visits ranks in order), then shift the starts back.
     */
    for (size_t t = 0; t < b->num_tokens; t++)
        start[t + 1] += start[t];
    for (size_t p = 0; p < l->total_sent; p++)
        l->token_pos[start[l->sent_token[p]]++] = p;
    for (size_t t = b->num_tokens; t > 0; t--)
        start[t] = start[t - 1];
    start[0] = 0;
    return TUTTI_OK;
}

/* Everything this rank can do before talking to the others. */
static tutti_status_t prepare_local(build_t *b, struct tutti_moe_layout **layout_p,
                                    const tutti_moe_layout_t *user_p)
{
    struct tutti_moe_layout *l;
    size_t n = (size_t)b->nranks;

    TT_CHECK(check_args(b, user_p));
    b->local_experts = b->num_experts / b->nranks;
    b->k = TT_MIN(b->top_k, b->local_experts);
    b->words = RECORD_HEADER + 2 * (size_t)b->k;
    l = calloc(1, sizeof(*l));
    if (l == NULL) {
        tt_error("%s: out of memory for the layout", create_name);
        return TUTTI_ERR_NO_MEMORY;
    }
    *layout_p = l;
    l->rank = b->rank;
    l->nranks = b->nranks;
    l->local_experts = b->local_experts;
    l->num_tokens = b->num_tokens;
    l->send_counts = alloc_array(8 * n, sizeof(size_t), "per-rank counts");
    b->hello = alloc_array(4 * n, sizeof(uint64_t), "per-rank counts");
    b->scratch = alloc_array((size_t)TT_MIN(b->top_k, b->num_experts), sizeof(slot_t), "slots");
    if (l->send_counts == NULL || b->hello == NULL || b->scratch == NULL)
        return TUTTI_ERR_NO_MEMORY;
    l->send_displs = l->send_counts + n;
    l->recv_counts = l->send_counts + 2 * n;
    l->recv_displs = l->send_counts + 3 * n;
    l->xfer_send_counts = l->send_counts + 4 * n;
    l->xfer_send_displs = l->send_counts + 5 * n;
    l->xfer_recv_counts = l->send_counts + 6 * n;
    l->xfer_recv_displs = l->send_counts + 7 * n;
    TT_CHECK(count_send_side(b, l));
    return build_send_side(b, l);
}

/*
 * Agree on @p mine with every rank: the most negative status wins. On
 * failure elsewhere, say here (at debug level: the rank that found it has
 * logged it) who did.
 */
static tutti_status_t agree(tutti_comm_t comm, int rank, tutti_status_t mine, const char *stage)
{
    int64_t in[2] = {mine, mine != TUTTI_OK ? rank : INT64_MAX}, out[2];

    TT_CHECK(tutti_allreduce(in, out, 2, TUTTI_INT64, TUTTI_MIN, comm));
    if (out[0] != TUTTI_OK && mine == TUTTI_OK)
        tt_debug("%s: rank %lld failed %s (%s); no layout built", create_name, (long long)out[1],
                 stage, tutti_status_string((tutti_status_t)out[0]));
    return (tutti_status_t)out[0];
}

/* Step 1: arguments everywhere good, and num_experts and top_k the same. */
static tutti_status_t agree_on_arguments(tutti_comm_t comm, const build_t *b, tutti_status_t mine)
{
    int64_t in[6] = {mine,           mine != TUTTI_OK ? b->rank : INT64_MAX,
                     b->num_experts, -(int64_t)b->num_experts,
                     b->top_k,       -(int64_t)b->top_k};
    int64_t out[6];

    TT_CHECK(tutti_allreduce(in, out, 6, TUTTI_INT64, TUTTI_MIN, comm));
    if (out[0] != TUTTI_OK) {
        if (mine == TUTTI_OK)
            tt_debug("%s: rank %lld rejected its arguments (%s); no layout built", create_name,
                     (long long)out[1], tutti_status_string((tutti_status_t)out[0]));
        return (tutti_status_t)out[0];
    }
    if (out[2] != -out[3] || out[4] != -out[5]) {
        int experts = out[2] != -out[3];
        if (b->rank == 0)
            tt_error("%s: ranks disagree on %s: from %lld to %lld", create_name,
                     experts ? "num_experts" : "top_k", (long long)out[experts ? 2 : 4],
                     (long long)-out[experts ? 3 : 5]);
        return TUTTI_ERR_INVALID_ARG;
    }
    return TUTTI_OK;
}

/* Size the receive side from what the others announced (step 2's answer). */
static tutti_status_t alloc_recv_side(build_t *b, struct tutti_moe_layout *l)
{
    const uint64_t *in = b->hello + 2 * (size_t)b->nranks;
    size_t total = 0, rows = 0;

    for (int i = 0; i < b->nranks; i++) {
        l->recv_counts[i] = (size_t)in[2 * i];
        l->recv_displs[i] = total;
        if (__builtin_add_overflow(total, (size_t)in[2 * i], &total) ||
            __builtin_add_overflow(rows, (size_t)in[2 * i + 1], &rows) || total == SIZE_MAX) {
            tt_error("%s: the tokens routed to this rank do not fit in memory", create_name);
            return TUTTI_ERR_NO_MEMORY;
        }
    }
    l->total_recv = total;
    l->rows = rows;
    b->records_in = alloc_array(total, b->words * sizeof(uint32_t), "routing records");
    l->slot_start = alloc_array(total + 1, sizeof(size_t), "received tokens");
    l->slot_row = alloc_array(rows, sizeof(size_t), "rows");
    l->slot_weight = alloc_array(rows, sizeof(float), "rows");
    l->row_rank = alloc_array(rows, sizeof(int), "rows");
    l->row_token = alloc_array(rows, sizeof(size_t), "rows");
    l->expert_rows = alloc_array((size_t)l->local_experts, sizeof(size_t), "local experts");
    b->cursor = alloc_array((size_t)l->local_experts, sizeof(size_t), "local experts");
    if (b->records_in == NULL || l->slot_start == NULL || l->slot_row == NULL ||
        l->slot_weight == NULL || l->row_rank == NULL || l->row_token == NULL ||
        l->expert_rows == NULL || b->cursor == NULL)
        return TUTTI_ERR_NO_MEMORY;
    return TUTTI_OK;
}

/* Step 4: the routing records, b->words 32-bit words per token. */
static tutti_status_t exchange_records(tutti_comm_t comm, build_t *b, struct tutti_moe_layout *l)
{
    for (int i = 0; i < b->nranks; i++) {
        l->xfer_send_counts[i] = l->send_counts[i] * b->words;
        l->xfer_send_displs[i] = l->send_displs[i] * b->words;
        l->xfer_recv_counts[i] = l->recv_counts[i] * b->words;
        l->xfer_recv_displs[i] = l->recv_displs[i] * b->words;
    }
    return tutti_alltoallv(b->records_out, l->xfer_send_counts, l->xfer_send_displs, b->records_in,
                           l->xfer_recv_counts, l->xfer_recv_displs, TUTTI_UINT32, comm);
}

/* A received record's local expert in slot s, or -1. */
static int32_t record_expert(const uint32_t *rec, int s)
{
    int32_t e;
    memcpy(&e, &rec[RECORD_HEADER + s], sizeof(e));
    return e;
}

/*
 * Rows grouped by local expert, each group in received order (origin rank,
 * then its token order); every received slot pointed at its row.
 */
static tutti_status_t index_recv_side(build_t *b, struct tutti_moe_layout *l)
{
    size_t slots = 0, row = 0, j = 0;

    memset(l->expert_rows, 0, (size_t)l->local_experts * sizeof(size_t));
    for (size_t r = 0; r < l->total_recv; r++) {
        const uint32_t *rec = b->records_in + r * b->words;
        for (int s = 0; s < b->k && record_expert(rec, s) >= 0; s++) {
            int32_t e = record_expert(rec, s);
            if (e >= l->local_experts || (s > 0 && e <= record_expert(rec, s - 1))) {
                tt_error("%s: a peer's routing record names local expert %d (of %d) out of order",
                         create_name, (int)e, l->local_experts);
                return TUTTI_ERR_PROTOCOL;
            }
            l->expert_rows[e]++;
            slots++;
        }
    }
    if (slots != l->rows) {
        tt_error("%s: peers announced %zu rows but their records hold %zu", create_name, l->rows,
                 slots);
        return TUTTI_ERR_PROTOCOL;
    }
    for (int e = 0; e < l->local_experts; e++) {
        b->cursor[e] = row;
        row += l->expert_rows[e];
    }
    slots = 0;
    for (int i = 0; i < b->nranks; i++)
        for (size_t c = 0; c < l->recv_counts[i]; c++, j++) {
            const uint32_t *rec = b->records_in + j * b->words;
            size_t token = (size_t)((uint64_t)rec[0] | (uint64_t)rec[1] << 32);
            l->slot_start[j] = slots;
            for (int s = 0; s < b->k && record_expert(rec, s) >= 0; s++, slots++) {
                size_t at = b->cursor[record_expert(rec, s)]++;
                l->row_rank[at] = i;
                l->row_token[at] = token;
                l->slot_row[slots] = at;
                memcpy(&l->slot_weight[slots], &rec[RECORD_HEADER + b->k + s], sizeof(float));
            }
        }
    l->slot_start[j] = slots;
    return TUTTI_OK;
}

tutti_status_t tutti_moe_layout_create(size_t num_tokens, int top_k, const int32_t *experts,
                                       const float *weights, int num_experts, tutti_comm_t comm,
                                       tutti_moe_layout_t *layout_p)
{
    build_t b = {.num_tokens = num_tokens,
                 .top_k = top_k,
                 .num_experts = num_experts,
                 .experts = experts,
                 .weights = weights};
    struct tutti_moe_layout *l = NULL;
    tutti_status_t status;

    if (tutti_comm_rank(comm, &b.rank) != TUTTI_OK ||
        tutti_comm_size(comm, &b.nranks) != TUTTI_OK) {
        tt_error("%s: invalid or destroyed communicator %p", create_name, (void *)comm);
        return TUTTI_ERR_INVALID_COMM;
    }
    status = prepare_local(&b, &l, layout_p);
    TT_CHECK_GOTO(agree_on_arguments(comm, &b, status), status, err_free);

    TT_CHECK_GOTO(tutti_alltoall(b.hello, b.hello + 2 * (size_t)b.nranks, 2, TUTTI_UINT64, comm),
                  status, err_free);
    status = alloc_recv_side(&b, l);
    TT_CHECK_GOTO(agree(comm, b.rank, status, "to size its receive side"), status, err_free);
    TT_CHECK_GOTO(exchange_records(comm, &b, l), status, err_free);
    TT_CHECK_GOTO(index_recv_side(&b, l), status, err_free);

    build_free(&b);
    l->comm = comm;
    *layout_p = l;
    return TUTTI_OK;

err_free:
    build_free(&b);
    tt_moe_layout_free(l);
    return status;
}

/* ---------------------------------------------------------------- questions */

tutti_status_t tutti_moe_layout_rows(tutti_moe_layout_t layout, size_t *rows_p, size_t *expert_rows)
{
    if (layout == NULL || rows_p == NULL) {
        tt_error("tutti_moe_layout_rows: %s is NULL", layout == NULL ? "layout" : "rows_p");
        return TUTTI_ERR_INVALID_ARG;
    }
    if (expert_rows != NULL)
        memcpy(expert_rows, layout->expert_rows, (size_t)layout->local_experts * sizeof(size_t));
    *rows_p = layout->rows;
    return TUTTI_OK;
}

tutti_status_t tutti_moe_layout_origins(tutti_moe_layout_t layout, int *ranks, size_t *tokens)
{
    if (layout == NULL) {
        tt_error("tutti_moe_layout_origins: layout is NULL");
        return TUTTI_ERR_INVALID_ARG;
    }
    if (ranks != NULL && layout->rows > 0)
        memcpy(ranks, layout->row_rank, layout->rows * sizeof(int));
    if (tokens != NULL && layout->rows > 0)
        memcpy(tokens, layout->row_token, layout->rows * sizeof(size_t));
    return TUTTI_OK;
}

tutti_status_t tutti_moe_layout_sent(tutti_moe_layout_t layout, size_t *tokens_per_rank)
{
    if (layout == NULL || tokens_per_rank == NULL) {
        tt_error("tutti_moe_layout_sent: %s is NULL",
                 layout == NULL ? "layout" : "tokens_per_rank");
        return TUTTI_ERR_INVALID_ARG;
    }
    memcpy(tokens_per_rank, layout->send_counts, (size_t)layout->nranks * sizeof(size_t));
    return TUTTI_OK;
}

tutti_status_t tutti_moe_layout_destroy(tutti_moe_layout_t layout)
{
    if (layout == NULL) {
        tt_error("tutti_moe_layout_destroy: layout is NULL");
        return TUTTI_ERR_INVALID_ARG;
    }
    tt_moe_layout_free(layout);
    return TUTTI_OK;
}
