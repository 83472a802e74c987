/*
 * Multi-rank correctness of every collective through the public API.
 *
 * For each rank count N in {1, 2, 3, 4, 5, 8} and each configuration
 * (latency algorithms over small shared-memory FIFOs; bandwidth
 * algorithms; bandwidth algorithms cut into 4K chunks with one pipeline
 * slot) one Check test forks N ranks once; they share one communicator and
 * run 1600 to 3200 cases in a fixed order:
 *
 * - every collective, blocking and nonblocking (tutti_wait and tutti_test,
 *   up to four requests in flight), every datatype, every operation, in
 *   place and out of place, roots 0, N/2 and N-1, counts 0 (with NULL and
 *   with real buffers), 1, 7, N-1, N+1 and a medium count that spans many
 *   chunks and FIFO slots, buffers starting 0..3 bytes past an aligned
 *   address;
 * - about 2^20 + 3 elements for a subset on N = 2, 3, 4 and 8 that still
 *   gives every datatype and every operation to each reduction;
 * - floats whose sums round, and floats with NaNs, signed zeros,
 *   infinities and subnormals: each such case runs again on a second
 *   communicator (split from the first) with other alignments and another
 *   call form, and must give the same bits.
 *
 * Every rank generates every rank's input (tests/lib/reference.h) and
 * computes the expected result itself; see reference.c for the tolerances.
 * Each call must leave its send buffer and every byte outside its receive
 * region (64 guard bytes each side included) as they were. Allreduce,
 * all-gather and broadcast results must be bitwise the same on every rank:
 * each rank writes a hash of its result to memory shared with the parent,
 * which compares them after the ranks exit (this also lets a rank check
 * only its own slice of a long allreduce result).
 *
 * A rank stops at its first failure, says what failed (collective, type,
 * operation, count, root, in place, call form, configuration, element,
 * got/expected) and aborts the communicator so the others stop too.
 * A first test case checks the reference against known values and against
 * a second, 128-bit computation.
 */
#include "config.h"

#include "tutti.h"

#include "tests/lib/ranks.h"
#include "tests/lib/reference.h"
#include "tests/lib/unit.h"

#include <malloc.h>
#include <math.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------------------ */
/* What runs                                                                */
/* ------------------------------------------------------------------------ */

typedef enum coll {
    COLL_ALLREDUCE,
    COLL_REDUCE_SCATTER,
    COLL_ALLGATHER,
    COLL_BROADCAST,
    COLL_REDUCE,
    COLL_BARRIER,
    COLL_ALLTOALL,
    COLL_ALLTOALLV,
} coll_t;

static const char *const coll_names[] = {
    "allreduce", "reduce_scatter", "allgather", "broadcast",
    "reduce",    "barrier",        "alltoall",  "alltoallv",
};

typedef enum call_mode {
    MODE_BLOCKING,
    MODE_WAIT, /* nonblocking, completed with tutti_wait */
    MODE_TEST, /* nonblocking, completed by polling tutti_test */
} call_mode_t;

static const char *const mode_names[] = {"blocking", "nonblocking+wait", "nonblocking+test"};

/* A configuration: settings for tutti_config_set(). */
#define MAX_SETTINGS 6
typedef struct config_def {
    const char *name;
    const char *settings[MAX_SETTINGS][2]; /* {name, value} pairs, ending at a NULL name */
} config_def_t;

enum {
    CONFIG_LATENCY,
    CONFIG_BANDWIDTH,
    CONFIG_PIPELINED,
    CONFIG_TREE,
    CONFIG_HIER,
    CONFIG_CHANNELS,
    CONFIG_AUTO,
    NUM_CONFIGS
};

/*
 * Single-copy reads (TUTTI_SHM_CMA) are on in the latency and bandwidth
 * configurations (the latter also for data that is combined); the pipelined
 * one runs everything through the FIFOs, the default.
 * The latency configuration also shrinks the shared-memory FIFOs to 8K, so
 * that medium messages (latency algorithms send whole buffers) stream
 * through them piece by piece: a buffer reused before its send has drained
 * then shows at every rank count, not only with megabyte messages.
 * The pipelined and hierarchical configurations cut plans into parts of a
 * round or so (TUTTI_PART_STEPS), so that ranks move from part to part at
 * different times, as they do on huge communicators.
 * TUTTI_OP_TIMEOUT turns a hang into an error that names the case, long
 * before the rank time-out would kill everything.
 */
static const config_def_t configs[NUM_CONFIGS] = {
    [CONFIG_LATENCY] = {"latency",
                        {{"TUTTI_ALGO", "latency"},
                         {"TUTTI_SHM_CMA", "on"},
                         {"TUTTI_SHM_SLOTS", "2"},
                         {"TUTTI_SHM_SLOT_SIZE", "4K"},
                         {"TUTTI_OP_TIMEOUT", "60s"}}},
    [CONFIG_BANDWIDTH] = {"bandwidth",
                          {{"TUTTI_ALGO", "bandwidth"},
                           {"TUTTI_SHM_CMA", "on"},
                           {"TUTTI_SHM_CMA_FOR_REDUCE", "yes"},
                           {"TUTTI_OP_TIMEOUT", "60s"}}},
    [CONFIG_PIPELINED] = {"pipelined",
                          {{"TUTTI_ALGO", "bandwidth"},
                           {"TUTTI_CHUNK_SIZE", "4K"},
                           {"TUTTI_PIPELINE_SLOTS", "1"},
                           {"TUTTI_PART_STEPS", "5"},
                           {"TUTTI_OP_TIMEOUT", "60s"}}},
    /* The double binary tree for allreduce (small chunks: many pipeline steps), and
     * Bruck's all-to-all at every size. */
    [CONFIG_TREE] = {"tree",
                     {{"TUTTI_ALGO",
                       "allreduce=tree,broadcast=chain,reduce=binomial,alltoall=bruck"},
                      {"TUTTI_CHUNK_SIZE", "16K"},
                      {"TUTTI_OP_TIMEOUT", "60s"}}},
    /* Hierarchical allreduce and all-to-all(-v), planned for the ranks spread over virtual hosts
     * (run_config adds TUTTI_CLUSTER_FILE for each rank count). */
    [CONFIG_HIER] = {"hier",
                     {{"TUTTI_ALGO", "allreduce=hier,alltoall=hier,alltoallv=hier"},
                      {"TUTTI_PART_STEPS", "3"},
                      {"TUTTI_OP_TIMEOUT", "60s"}}},
    /* Three ring channels over the DGX-like fixture's 8 rails (run_config adds
     * TUTTI_TOPO_FILE): each channel's ring order is rotated differently. */
    [CONFIG_CHANNELS] = {"channels",
                         {{"TUTTI_ALGO", "bandwidth"},
                          {"TUTTI_CHANNELS", "3"},
                          {"TUTTI_CHUNK_SIZE", "8K"},
                          {"TUTTI_OP_TIMEOUT", "60s"}}},
    /* Whatever the cost model picks. (Not calibrated: measured figures may
     * pick another algorithm on the next communicator, and the determinism
     * check compares results across communicators; check_place checks that
     * calibrated ranks agree.) */
    [CONFIG_AUTO] = {"auto", {{"TUTTI_OP_TIMEOUT", "60s"}}},
};

static const int rank_counts[] = {1, 2, 3, 4, 5, 8};
#define NUM_RANK_COUNTS ((int)(sizeof(rank_counts) / sizeof(rank_counts[0])))
#define MAX_RANKS 8

#define MAX_CASES 8192
#define GUARD 64 /* bytes checked on each side of every buffer; a multiple of ALIGN */
#define ALIGN 64
#define MEDIUM_COUNT ((size_t)20011)
#define LARGE_COUNT (((size_t)1 << 20) + 3)
/* Allreduce results longer than this: each rank checks its slice, the hashes the rest. */
#define SLICE_MIN ((size_t)1 << 16)
#define BATCH_MAX 4 /* nonblocking requests in flight at once */
#define RANK_TIMEOUT_S 500
#define CHECK_TIMEOUT_S 600

typedef struct test_case {
    coll_t coll;
    tutti_datatype_t datatype;
    tutti_op_t op;
    /* the call's count argument: per rank for reduce-scatter and all-gather,
     * per pair for all-to-all, the average per pair for all-to-all-v */
    size_t count;
    int root;
    int in_place; /* with count 0: pass NULL buffers instead */
    call_mode_t mode;
    int send_skew, recv_skew; /* bytes past an aligned address */
    tt_ref_inputs_t inputs;
    int repeat; /* run again on the second communicator; the bits must not change */
    int large;
    int barrier_seq; /* barriers: this is barrier number barrier_seq */
    uint64_t seed;
} test_case_t;

typedef struct case_list {
    test_case_t *cases;
    size_t n;
    int barriers;
} case_list_t;

static int is_reduction(coll_t coll)
{
    return coll == COLL_ALLREDUCE || coll == COLL_REDUCE_SCATTER || coll == COLL_REDUCE;
}

static int has_root(coll_t coll)
{
    return coll == COLL_BROADCAST || coll == COLL_REDUCE;
}

/* Collectives whose count is per rank (or pair), not for the whole vector. */
static int count_is_per_rank(coll_t coll)
{
    return coll == COLL_REDUCE_SCATTER || coll == COLL_ALLGATHER || coll == COLL_ALLTOALL ||
           coll == COLL_ALLTOALLV;
}

/*
 * An all-to-all-v case's layout as rank @p r sees it: what it sends to and
 * receives from each rank, and where. Counts are a pure function of the
 * case (every rank computes every rank's): a quarter are zero, rank
 * seed mod n sends nothing (for n > 2), the last rank receives about three
 * times the average (a hot expert); blocks lie in reverse rank order with
 * gaps of up to two elements.
 */
typedef struct a2av_layout {
    size_t send_counts[MAX_RANKS], send_displs[MAX_RANKS];
    size_t recv_counts[MAX_RANKS], recv_displs[MAX_RANKS];
    size_t send_extent, recv_extent; /* elements the blocks reach */
} a2av_layout_t;

static size_t a2av_count(const test_case_t *tc, int n, int from, int to)
{
    uint64_t x = tt_ref_mix(tc->seed ^ ((uint64_t)from << 8 | (uint64_t)to));
    size_t c = x % 4 == 0 ? 0 : (size_t)(x >> 8) % (2 * tc->count + 1);

    if (n > 2 && (uint64_t)from == tc->seed % (uint64_t)n)
        return 0;
    return to == n - 1 && tc->count > 0 ? 3 * c + 1 : c;
}

static size_t a2av_place(const size_t *counts, size_t *displs, int n, uint64_t seed)
{
    size_t at = 0;
    for (int j = n - 1; j >= 0; j--) {
        at += tt_ref_mix(seed + (uint64_t)j) % 3;
        displs[j] = at;
        at += counts[j];
    }
    return at;
}

static void a2av_layout(const test_case_t *tc, int n, int r, a2av_layout_t *l)
{
    for (int j = 0; j < n; j++) {
        l->send_counts[j] = a2av_count(tc, n, r, j);
        l->recv_counts[j] = a2av_count(tc, n, j, r);
    }
    l->send_extent = a2av_place(l->send_counts, l->send_displs, n, tc->seed ^ (uint64_t)r);
    l->recv_extent = a2av_place(l->recv_counts, l->recv_displs, n, ~tc->seed ^ (uint64_t)r);
}

/* Append a case; call form, alignment and seed vary with its position. */
static void add_case(case_list_t *l, int nranks, int config, test_case_t c)
{
    size_t i = l->n;

    ck_assert_msg(i < MAX_CASES, "more than %d cases", MAX_CASES);
    c.mode = (call_mode_t)(i % 3);
    c.send_skew = (int)(i % 4);
    c.recv_skew = (int)((i / 4 + 3 * i) % 4);
    c.seed = tt_ref_mix(((uint64_t)config << 48) ^ ((uint64_t)nranks << 32) ^ i);
    if (c.coll == COLL_BARRIER)
        c.barrier_seq = l->barriers++;
    l->cases[l->n++] = c;
}

/* Distinct roots 0, N/2, N-1 into @p roots; returns how many. */
static int root_set(int nranks, int roots[3])
{
    int n = 0, cand[3] = {0, nranks / 2, nranks - 1};

    for (int i = 0; i < 3; i++) {
        int dup = 0;
        for (int j = 0; j < n; j++)
            dup |= roots[j] == cand[i];
        if (!dup)
            roots[n++] = cand[i];
    }
    return n;
}

/*
 * The cases for one (N, configuration), in the order every rank runs them.
 * Deterministic: the parent rebuilds the list to name failing cases.
 */
static void build_cases(case_list_t *l, int nranks, int config)
{
    static const coll_t colls[] = {COLL_ALLREDUCE, COLL_REDUCE_SCATTER, COLL_REDUCE,
                                   COLL_ALLGATHER, COLL_BROADCAST,      COLL_ALLTOALL,
                                   COLL_ALLTOALLV};
    static const tutti_datatype_t floats[] = {TUTTI_FP16, TUTTI_BF16, TUTTI_FP32, TUTTI_FP64};
    size_t small[5] = {0, 1, 7, (size_t)nranks - 1, (size_t)nranks + 1}, counts[5];
    int nsmall = 0, roots[3], nroots = root_set(nranks, roots);

    for (int i = 0; i < 5; i++) {
        int dup = 0;
        for (int j = 0; j < nsmall; j++)
            dup |= counts[j] == small[i];
        if (!dup)
            counts[nsmall++] = small[i];
    }
    l->n = 0;
    l->barriers = 0;

    /* Small counts: the full product. */
    for (size_t k = 0; k < sizeof(colls) / sizeof(colls[0]); k++) {
        coll_t coll = colls[k];
        for (int t = 0; t < TUTTI_NUM_DATATYPES; t++) {
            for (int op = 0; op < (is_reduction(coll) ? TUTTI_NUM_OPS : 1); op++) {
                for (int ri = 0; ri < (has_root(coll) ? nroots : 1); ri++) {
                    for (int in_place = 0; in_place < 2; in_place++) {
                        for (int ci = 0; ci < nsmall; ci++) {
                            test_case_t c = {.coll = coll,
                                             .datatype = (tutti_datatype_t)t,
                                             .op = (tutti_op_t)op,
                                             .count = counts[ci],
                                             .root = roots[ri],
                                             .in_place = in_place};
                            add_case(l, nranks, config, c);
                        }
                    }
                }
            }
        }
    }
    for (int b = 0; b < 6; b++)
        add_case(l, nranks, config, (test_case_t){.coll = COLL_BARRIER});

    /*
     * A medium count: many chunks per block in the pipelined configuration,
     * many FIFO slots per message in the latency one.
     */
    for (size_t k = 0; k < sizeof(colls) / sizeof(colls[0]); k++) {
        coll_t coll = colls[k];
        size_t count = count_is_per_rank(coll) ? MEDIUM_COUNT / (size_t)nranks | 1 : MEDIUM_COUNT;
        for (int t = 0; t < TUTTI_NUM_DATATYPES; t++) {
            for (int op = 0; op < (is_reduction(coll) ? TUTTI_NUM_OPS : 1); op++) {
                test_case_t c = {.coll = coll,
                                 .datatype = (tutti_datatype_t)t,
                                 .op = (tutti_op_t)op,
                                 .count = count,
                                 .root = roots[(t + op) % nroots],
                                 .in_place = (t + op) % 2};
                add_case(l, nranks, config, c);
            }
        }
    }

    /* Floats that round, and special values: checked for determinism too. */
    for (int k = 0; k < 3; k++) {
        for (int t = 0; t < 4; t++) {
            for (int op = 0; op < TUTTI_NUM_OPS; op++) {
                test_case_t c = {.coll = colls[k],
                                 .datatype = floats[t],
                                 .op = (tutti_op_t)op,
                                 .count = 1000 + (size_t)nranks,
                                 .root = roots[op % nroots],
                                 .in_place = op % 2,
                                 .repeat = 1};
                c.inputs = TT_REF_SPECIAL;
                add_case(l, nranks, config, c);
                if (op == TUTTI_MIN || op == TUTTI_MAX)
                    continue; /* min and max never round */
                c.inputs = TT_REF_ROUNDING;
                c.count = 3001 + (size_t)nranks;
                c.in_place = !c.in_place;
                add_case(l, nranks, config, c);
            }
        }
    }

    /*
     * About 2^20 elements, on N = 2, 3, 4 and 8 (recursive doubling ends in
     * its scratch buffer for 4 but not for 2 or 8). In the bandwidth
     * configuration every collective gets every datatype once, and each
     * reduction every operation twice (a different pairing per
     * collective). The other two configurations run every third of those
     * cases: their algorithms meet many chunks and streaming FIFOs in the
     * medium cases already, but must still get large messages right.
     */
    if (nranks != 2 && nranks != 3 && nranks != 4 && nranks != 8)
        return;
    for (int t = 0, n = 0; t < TUTTI_NUM_DATATYPES; t++) {
        for (size_t k = 0; k < sizeof(colls) / sizeof(colls[0]); k++) {
            coll_t coll = colls[k];
            test_case_t c = {.coll = coll,
                             .datatype = (tutti_datatype_t)t,
                             .op = (tutti_op_t)((t + 2 * (int)k) % TUTTI_NUM_OPS),
                             .root = roots[(t + (int)k) % nroots],
                             .in_place = (t + (int)k) % 2,
                             .large = 1};
            if (config != CONFIG_BANDWIDTH && n++ % 3 != 0)
                continue;
            c.count = count_is_per_rank(coll) ? LARGE_COUNT / (size_t)nranks | 1 : LARGE_COUNT;
            add_case(l, nranks, config, c);
        }
    }
}

static void describe_config(int config, char *out, size_t out_len)
{
    const config_def_t *d = &configs[config];
    size_t used = (size_t)snprintf(out, out_len, "config %s (", d->name);

    for (int i = 0; i < MAX_SETTINGS && d->settings[i][0] != NULL && used < out_len; i++)
        used += (size_t)snprintf(out + used, out_len - used, "%s%s=%s", i ? " " : "",
                                 d->settings[i][0], d->settings[i][1]);
    if (used < out_len)
        snprintf(out + used, out_len - used, ")");
}

static void describe_case(const test_case_t *c, size_t index, int nranks, int config, char *out,
                          size_t out_len)
{
    static const char *const input_names[] = {"exact", "rounding", "special"};
    char op[32] = "", root[32] = "", cfg[160];

    describe_config(config, cfg, sizeof(cfg));
    if (is_reduction(c->coll))
        snprintf(op, sizeof(op), " %s", tt_ref_op_name(c->op));
    if (has_root(c->coll))
        snprintf(root, sizeof(root), " root=%d", c->root);
    if (c->coll == COLL_BARRIER) {
        snprintf(out, out_len, "case %zu: barrier #%d, %s, N=%d, %s", index, c->barrier_seq,
                 mode_names[c->mode], nranks, cfg);
        return;
    }
    snprintf(out, out_len,
             "case %zu: %s %s%s count=%zu%s %s, %s, send/recv buffers +%d/+%d bytes, %s inputs, "
             "seed %016llx, N=%d, %s",
             index, coll_names[c->coll], tt_ref_datatype_name(c->datatype), op, c->count, root,
             c->count == 0 && c->in_place ? "NULL buffers"
             : c->in_place                ? "in place"
                                          : "out of place",
             mode_names[c->mode], c->send_skew, c->recv_skew, input_names[c->inputs],
             (unsigned long long)c->seed, nranks, cfg);
}

/* ------------------------------------------------------------------------ */
/* State shared between the ranks and the parent                            */
/* ------------------------------------------------------------------------ */

typedef struct shared {
    atomic_int failed;                     /* 1 + rank of the first rank that failed; 0 if none */
    atomic_long barrier_arrivals;          /* ranks that entered a barrier case, all barriers */
    uint64_t hashes[MAX_CASES][MAX_RANKS]; /* result hashes; 0: not recorded */
} shared_t;

typedef struct run_arg {
    int config;
    shared_t *shared;
    const test_case_t *cases;
    size_t ncases;
    const char *extra[2]; /* one more setting for this rank count: {name, value} or NULLs */
} run_arg_t;

typedef struct rank_ctx {
    int rank, nranks, config;
    tutti_comm_t comm, comm2; /* comm2: a split of comm, for repeated cases */
    shared_t *shared;
} rank_ctx_t;

/* ------------------------------------------------------------------------ */
/* Buffers with guard bytes                                                 */
/* ------------------------------------------------------------------------ */

/*
 * A buffer as a call sees it (data, len bytes) inside an allocation with
 * GUARD bytes each side, filled with junk and snapshotted before the call.
 * After the call only [wr_lo, wr_hi) of data may differ from the snapshot.
 */
typedef struct arena {
    unsigned char *mem, *snap, *data;
    size_t mem_len, len, wr_lo, wr_hi;
} arena_t;

static void fill_junk(unsigned char *p, size_t len, uint64_t seed)
{
    size_t i = 0;

    for (; i + 8 <= len; i += 8) {
        uint64_t w = tt_ref_mix(seed + i);
        memcpy(p + i, &w, 8);
    }
    for (; i < len; i++)
        p[i] = (unsigned char)tt_ref_mix(seed + i);
}

static int arena_alloc(arena_t *a, size_t len, int skew, uint64_t junk_seed)
{
    memset(a, 0, sizeof(*a));
    a->mem_len = (GUARD + (size_t)skew + len + GUARD + ALIGN - 1) / ALIGN * ALIGN;
    a->mem = aligned_alloc(ALIGN, a->mem_len);
    if (a->mem == NULL)
        return 0;
    a->data = a->mem + GUARD + skew;
    a->len = len;
    fill_junk(a->mem, a->mem_len, junk_seed);
    return 1;
}

static int arena_snapshot(arena_t *a)
{
    if (a->mem == NULL)
        return 1;
    a->snap = malloc(a->mem_len);
    if (a->snap == NULL)
        return 0;
    memcpy(a->snap, a->mem, a->mem_len);
    return 1;
}

/* Whether bytes outside [wr_lo, wr_hi) are unchanged; else the first changed offset into data. */
static int arena_untouched(const arena_t *a, long *offset_p)
{
    size_t lo = (size_t)(a->data - a->mem) + a->wr_lo, hi = (size_t)(a->data - a->mem) + a->wr_hi;

    if (a->mem == NULL)
        return 1;
    if (memcmp(a->mem, a->snap, lo) == 0 && memcmp(a->mem + hi, a->snap + hi, a->mem_len - hi) == 0)
        return 1;
    for (size_t i = 0; i < a->mem_len; i++) {
        if ((i < lo || i >= hi) && a->mem[i] != a->snap[i]) {
            *offset_p = (long)i - (long)(a->data - a->mem);
            break;
        }
    }
    return 0;
}

static void arena_free(arena_t *a)
{
    free(a->mem);
    free(a->snap);
    memset(a, 0, sizeof(*a));
}

/* ------------------------------------------------------------------------ */
/* One call                                                                 */
/* ------------------------------------------------------------------------ */

typedef struct inflight {
    const test_case_t *tc;
    size_t index;
    a2av_layout_t layout; /* all-to-all-v */
    tt_ref_case_t ref;
    arena_t send, recv;
    const void *sendbuf;
    void *recvbuf;
    const unsigned char *result; /* the bytes this rank receives (NULL: none) */
    size_t result_len;
    call_mode_t mode;
    int send_skew, recv_skew;
    tutti_request_t req;
    int done;
} inflight_t;

/* Report a failure of @p f (or of the run, if NULL) and stop every rank. */
static int rank_fail(rank_ctx_t *ctx, const inflight_t *f, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int rank_fail(rank_ctx_t *ctx, const inflight_t *f, const char *fmt, ...)
{
    char what[512], msg[512];
    int expected = 0, first;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (f != NULL) {
        test_case_t shown = *f->tc;
        shown.mode = f->mode;
        shown.send_skew = f->send_skew;
        shown.recv_skew = f->recv_skew;
        describe_case(&shown, f->index, ctx->nranks, ctx->config, what, sizeof(what));
    } else {
        char cfg[160];
        describe_config(ctx->config, cfg, sizeof(cfg));
        snprintf(what, sizeof(what), "N=%d, %s", ctx->nranks, cfg);
    }
    first = atomic_compare_exchange_strong(&ctx->shared->failed, &expected, ctx->rank + 1);
    if (first)
        tt_fail(ctx->rank, "%s: %s", what, msg);
    else
        tt_fail(ctx->rank, "(stopping after rank %d failed) %s: %s", expected - 1, what, msg);
    /* Tell the other ranks at once rather than leaving them to time out. */
    if (ctx->comm2 != NULL)
        tutti_comm_abort(ctx->comm2);
    if (ctx->comm != NULL)
        tutti_comm_abort(ctx->comm);
    ctx->comm = ctx->comm2 = NULL;
    return 1;
}

/* The call @p f failed with @p status, from @p what; past its deadline, show where the others are. */
static int call_failed(rank_ctx_t *ctx, const inflight_t *f, const char *what,
                       tutti_status_t status)
{
    if (status == TUTTI_ERR_TIMEOUT)
        tt_report_hang(ctx->rank);
    return rank_fail(ctx, f, "%s returned %s", what, tutti_status_string(status));
}

/* Allocate @p a for @p count elements of the case's type, filled with junk. */
static int make_arena(rank_ctx_t *ctx, inflight_t *f, arena_t *a, size_t count, int skew,
                      uint64_t salt)
{
    if (!arena_alloc(a, count * tt_ref_size(f->ref.datatype), skew, f->ref.seed ^ salt))
        return rank_fail(ctx, f, "out of memory for %zu elements", count);
    return 0;
}

/* Buffers for one call, laid out as the collective and in_place say. */
static int setup(rank_ctx_t *ctx, const test_case_t *tc, size_t index, inflight_t *f,
                 call_mode_t mode, int send_skew, int recv_skew)
{
    int r = ctx->rank, n = ctx->nranks, root = r == tc->root;
    size_t es = tt_ref_size(tc->datatype), c = tc->count, total = c * (size_t)n;

    memset(f, 0, sizeof(*f));
    f->tc = tc;
    f->index = index;
    f->mode = mode;
    f->send_skew = send_skew;
    f->recv_skew = recv_skew;
    f->ref.datatype = tc->datatype;
    f->ref.op = tc->op;
    f->ref.reducing = is_reduction(tc->coll);
    f->ref.inputs = tc->inputs;
    f->ref.seed = tc->seed;
    f->ref.nranks = n;
    if (tc->coll == COLL_BARRIER || (c == 0 && tc->in_place))
        return 0; /* NULL buffers */

#define ARENA(a, elems, skew, salt)                                \
    do {                                                           \
        if (make_arena(ctx, f, (a), (elems), (skew), (salt)) != 0) \
            return 1;                                              \
    } while (0)

    switch (tc->coll) {
    case COLL_ALLREDUCE:
        ARENA(&f->recv, c, recv_skew, 1);
        if (tc->in_place) {
            tt_ref_fill(&f->ref, r, 0, c, f->recv.data);
            f->sendbuf = f->recv.data;
        } else {
            ARENA(&f->send, c, send_skew, 2);
            tt_ref_fill(&f->ref, r, 0, c, f->send.data);
            f->sendbuf = f->send.data;
        }
        f->recvbuf = f->recv.data;
        f->recv.wr_hi = c * es;
        break;
    case COLL_REDUCE_SCATTER:
        if (tc->in_place) {
            ARENA(&f->recv, total, recv_skew, 1);
            tt_ref_fill(&f->ref, r, 0, total, f->recv.data);
            f->sendbuf = f->recv.data;
            f->recvbuf = f->recv.data + (size_t)r * c * es;
            f->recv.wr_lo = (size_t)r * c * es;
        } else {
            ARENA(&f->send, total, send_skew, 2);
            ARENA(&f->recv, c, recv_skew, 1);
            tt_ref_fill(&f->ref, r, 0, total, f->send.data);
            f->sendbuf = f->send.data;
            f->recvbuf = f->recv.data;
        }
        f->recv.wr_hi = f->recv.wr_lo + c * es;
        break;
    case COLL_ALLGATHER:
        ARENA(&f->recv, total, recv_skew, 1);
        if (tc->in_place) {
            f->sendbuf = f->recv.data + (size_t)r * c * es;
            tt_ref_fill(&f->ref, r, 0, c, f->recv.data + (size_t)r * c * es);
        } else {
            ARENA(&f->send, c, send_skew, 2);
            tt_ref_fill(&f->ref, r, 0, c, f->send.data);
            f->sendbuf = f->send.data;
        }
        f->recvbuf = f->recv.data;
        f->recv.wr_hi = total * es;
        break;
    case COLL_BROADCAST:
        ARENA(&f->recv, c, recv_skew, 1);
        f->recvbuf = f->recv.data;
        f->recv.wr_hi = c * es;
        if (root && tc->in_place) {
            tt_ref_fill(&f->ref, r, 0, c, f->recv.data);
            f->sendbuf = f->recv.data;
        } else if (root) {
            ARENA(&f->send, c, send_skew, 2);
            tt_ref_fill(&f->ref, r, 0, c, f->send.data);
            f->sendbuf = f->send.data;
        } else if (!tc->in_place) {
            /* Read only on the root: junk here must stay as it is. */
            ARENA(&f->send, c, send_skew, 2);
            f->sendbuf = f->send.data;
        }
        break;
    case COLL_REDUCE:
        if (root && tc->in_place) {
            ARENA(&f->recv, c, recv_skew, 1);
            tt_ref_fill(&f->ref, r, 0, c, f->recv.data);
            f->sendbuf = f->recvbuf = f->recv.data;
            f->recv.wr_hi = c * es;
            break;
        }
        ARENA(&f->send, c, send_skew, 2);
        tt_ref_fill(&f->ref, r, 0, c, f->send.data);
        f->sendbuf = f->send.data;
        if (root || !tc->in_place) {
            /* Used only on the root: elsewhere it must stay as it is. */
            ARENA(&f->recv, c, recv_skew, 1);
            f->recvbuf = f->recv.data;
            f->recv.wr_hi = root ? c * es : 0;
        }
        break;
    case COLL_ALLTOALL:
    case COLL_ALLTOALLV:
        if (tc->coll == COLL_ALLTOALLV)
            a2av_layout(tc, n, r, &f->layout);
        else
            f->layout.send_extent = f->layout.recv_extent = total;
        if (tc->in_place) {
            size_t len = f->layout.send_extent > f->layout.recv_extent ? f->layout.send_extent
                                                                       : f->layout.recv_extent;
            ARENA(&f->recv, len, recv_skew, 1);
            tt_ref_fill(&f->ref, r, 0, f->layout.send_extent, f->recv.data);
            f->sendbuf = f->recv.data;
        } else {
            ARENA(&f->send, f->layout.send_extent, send_skew, 2);
            ARENA(&f->recv, f->layout.recv_extent, recv_skew, 1);
            tt_ref_fill(&f->ref, r, 0, f->layout.send_extent, f->send.data);
            f->sendbuf = f->send.data;
        }
        f->recvbuf = f->recv.data;
        f->recv.wr_hi = f->layout.recv_extent * es;
        break;
    case COLL_BARRIER: break;
    }
#undef ARENA
    if (f->recv.wr_hi > f->recv.wr_lo) {
        f->result = f->recv.data + f->recv.wr_lo;
        f->result_len = f->recv.wr_hi - f->recv.wr_lo;
    }
    if (!arena_snapshot(&f->send) || !arena_snapshot(&f->recv))
        return rank_fail(ctx, f, "out of memory for snapshots");
    return 0;
}

static tutti_status_t post(tutti_comm_t comm, inflight_t *f)
{
    const test_case_t *tc = f->tc;
    tutti_request_t *req = f->mode == MODE_BLOCKING ? NULL : &f->req;
    const void *s = f->sendbuf;
    void *r = f->recvbuf;
    size_t c = tc->count;
    tutti_datatype_t t = tc->datatype;

    switch (tc->coll) {
    case COLL_ALLREDUCE:
        return req ? tutti_iallreduce(s, r, c, t, tc->op, comm, req)
                   : tutti_allreduce(s, r, c, t, tc->op, comm);
    case COLL_REDUCE_SCATTER:
        return req ? tutti_ireduce_scatter(s, r, c, t, tc->op, comm, req)
                   : tutti_reduce_scatter(s, r, c, t, tc->op, comm);
    case COLL_ALLGATHER:
        return req ? tutti_iallgather(s, r, c, t, comm, req) : tutti_allgather(s, r, c, t, comm);
    case COLL_BROADCAST:
        return req ? tutti_ibroadcast(s, r, c, t, tc->root, comm, req)
                   : tutti_broadcast(s, r, c, t, tc->root, comm);
    case COLL_REDUCE:
        return req ? tutti_ireduce(s, r, c, t, tc->op, tc->root, comm, req)
                   : tutti_reduce(s, r, c, t, tc->op, tc->root, comm);
    case COLL_BARRIER: return req ? tutti_ibarrier(comm, req) : tutti_barrier(comm);
    case COLL_ALLTOALL:
        return req ? tutti_ialltoall(s, r, c, t, comm, req) : tutti_alltoall(s, r, c, t, comm);
    case COLL_ALLTOALLV: {
        const a2av_layout_t *l = &f->layout;
        return req ? tutti_ialltoallv(s, l->send_counts, l->send_displs, r, l->recv_counts,
                                      l->recv_displs, t, comm, req)
                   : tutti_alltoallv(s, l->send_counts, l->send_displs, r, l->recv_counts,
                                     l->recv_displs, t, comm);
    }
    }
    return TUTTI_ERR_INTERNAL;
}

/* Start @p f's call on @p comm; blocking calls are complete when this returns. */
static int start(rank_ctx_t *ctx, tutti_comm_t comm, inflight_t *f)
{
    tutti_status_t status;

    if (f->tc->coll == COLL_BARRIER) {
        /* One rank arrives late, so that a barrier that does not wait shows. */
        if (f->tc->barrier_seq % ctx->nranks == ctx->rank)
            nanosleep(&(struct timespec){0, 3 * 1000 * 1000}, NULL);
        atomic_fetch_add(&ctx->shared->barrier_arrivals, 1);
    }
    status = post(comm, f);
    if (status != TUTTI_OK)
        return call_failed(ctx, f, f->mode == MODE_BLOCKING ? "the call" : "posting", status);
    f->done = f->mode == MODE_BLOCKING;
    return 0;
}

/*
 * Between polls of tutti_test, pause as a runtime between pieces of work
 * would: a few yields, then short sleeps. Polling with sched_yield alone,
 * eight ranks on two cores, a rank sat blocked in the kernel (in mmap) for a
 * minute on Linux 6.18 while the others waited for it, and the kernel logged
 * RCU stalls (README, "Polling for completion").
 */
#define POLL_YIELDS 64
#define POLL_SLEEP_NS 50000

static void poll_pause(int idle_polls)
{
    if (idle_polls < POLL_YIELDS)
        sched_yield();
    else
        nanosleep(&(struct timespec){0, POLL_SLEEP_NS}, NULL);
}

/* Complete the nonblocking calls in @p batch: poll the test ones, wait for the rest last first. */
static int complete(rank_ctx_t *ctx, inflight_t *batch, int nb)
{
    int pending, idle_polls = 0;
    tutti_status_t status;

    do {
        pending = 0;
        for (int i = 0; i < nb; i++) {
            if (batch[i].done || batch[i].mode != MODE_TEST)
                continue;
            status = tutti_test(batch[i].req);
            if (status == TUTTI_IN_PROGRESS) {
                pending++;
                continue;
            }
            batch[i].done = 1;
            idle_polls = 0;
            if (status != TUTTI_OK)
                return call_failed(ctx, &batch[i], "tutti_test", status);
        }
        if (pending > 0)
            poll_pause(idle_polls++);
    } while (pending > 0);
    for (int i = nb - 1; i >= 0; i--) {
        if (batch[i].done)
            continue;
        status = tutti_wait(batch[i].req);
        batch[i].done = 1;
        if (status != TUTTI_OK)
            return call_failed(ctx, &batch[i], "tutti_wait", status);
    }
    return 0;
}

/* Compare result element @p i (at @p got) with the reduction of input element @p input_index. */
static int check_reduced(rank_ctx_t *ctx, inflight_t *f, const unsigned char *got, size_t i,
                         uint64_t input_index)
{
    tt_ref_value_t want;
    char why[256];

    tt_ref_expect(&f->ref, input_index, &want);
    if (tt_ref_matches(&f->ref, got, &want, why, sizeof(why)))
        return 0;
    return rank_fail(ctx, f, "result element %zu: %s", i, why);
}

/* Compare result element @p i with element @p input_index of rank @p src's input, bitwise. */
static int check_copied(rank_ctx_t *ctx, inflight_t *f, const unsigned char *got, size_t i, int src,
                        uint64_t input_index)
{
    uint64_t want = tt_ref_input(&f->ref, src, input_index);
    uint64_t bits = tt_ref_load(f->ref.datatype, got);
    char got_text[80], want_text[80];

    if (bits == want)
        return 0;
    tt_ref_describe(f->ref.datatype, bits, got_text, sizeof(got_text));
    tt_ref_describe(f->ref.datatype, want, want_text, sizeof(want_text));
    return rank_fail(ctx, f, "result element %zu (rank %d's element %llu): got %s, expected %s", i,
                     src, (unsigned long long)input_index, got_text, want_text);
}

/*
 * All-to-all(-v): block i of the result is rank i's block for this rank; an
 * element between blocks keeps what it held before the call.
 */
static int verify_alltoall(rank_ctx_t *ctx, inflight_t *f)
{
    const test_case_t *tc = f->tc;
    int r = ctx->rank, n = ctx->nranks;
    size_t es = tt_ref_size(tc->datatype), c = tc->count, covered = 0;
    const unsigned char *before = f->recv.snap + (f->recv.data - f->recv.mem);

    for (int i = 0; i < n; i++) {
        a2av_layout_t from;
        size_t at = (size_t)i * c, count = c, src_at = (size_t)r * c;
        if (tc->coll == COLL_ALLTOALLV) {
            a2av_layout(tc, n, i, &from);
            at = f->layout.recv_displs[i];
            count = f->layout.recv_counts[i];
            src_at = from.send_displs[r];
        }
        covered += count;
        for (size_t e = 0; e < count; e++)
            if (check_copied(ctx, f, f->result + (at + e) * es, at + e, i, src_at + e) != 0)
                return 1;
    }
    if (covered == f->layout.recv_extent)
        return 0;
    for (size_t i = 0; i < f->layout.recv_extent; i++) {
        int in_block = 0;
        for (int q = 0; q < n && !in_block; q++)
            in_block = i - f->layout.recv_displs[q] < f->layout.recv_counts[q];
        if (!in_block && memcmp(f->result + i * es, before + i * es, es) != 0)
            return rank_fail(ctx, f, "element %zu lies between blocks but was written", i);
    }
    return 0;
}

/* Everything one rank can check about a completed call. */
static int verify(rank_ctx_t *ctx, inflight_t *f, int record_hash)
{
    const test_case_t *tc = f->tc;
    int r = ctx->rank, n = ctx->nranks;
    size_t es = tt_ref_size(tc->datatype), c = tc->count, lo = 0, hi;
    long off = 0;

    if (!arena_untouched(&f->send, &off))
        return rank_fail(ctx, f,
                         "the send buffer changed at byte %ld (of %zu; guard bytes outside)", off,
                         f->send.len);
    if (!arena_untouched(&f->recv, &off))
        return rank_fail(
            ctx, f,
            "the receive buffer changed outside the result region [%zu, %zu) at byte %ld "
            "(of %zu; guard bytes outside)",
            f->recv.wr_lo, f->recv.wr_hi, off, f->recv.len);
    if (tc->coll == COLL_BARRIER) {
        long arrived = atomic_load(&ctx->shared->barrier_arrivals);
        if (arrived < (long)n * (tc->barrier_seq + 1))
            return rank_fail(ctx, f,
                             "the barrier returned before every rank entered it (%ld of %ld)",
                             arrived, (long)n * (tc->barrier_seq + 1));
        return 0;
    }
    if (f->result == NULL)
        return 0;
    if (record_hash &&
        (tc->coll == COLL_ALLREDUCE || tc->coll == COLL_ALLGATHER || tc->coll == COLL_BROADCAST))
        ctx->shared->hashes[f->index][r] = tt_ref_hash(f->result, f->result_len);
    if (tc->inputs == TT_REF_SPECIAL && is_reduction(tc->coll))
        return 0; /* no reference: only determinism and agreement */

    switch (tc->coll) {
    case COLL_ALLREDUCE:
        hi = c;
        if (c > SLICE_MIN && record_hash) {
            lo = c * (size_t)r / (size_t)n;
            hi = c * (size_t)(r + 1) / (size_t)n;
        }
        for (size_t i = lo; i < hi; i++)
            if (check_reduced(ctx, f, f->result + i * es, i, i) != 0)
                return 1;
        break;
    case COLL_REDUCE_SCATTER:
        for (size_t i = 0; i < c; i++)
            if (check_reduced(ctx, f, f->result + i * es, i, (uint64_t)r * c + i) != 0)
                return 1;
        break;
    case COLL_REDUCE:
        for (size_t i = 0; i < c; i++)
            if (check_reduced(ctx, f, f->result + i * es, i, i) != 0)
                return 1;
        break;
    case COLL_ALLGATHER:
        for (size_t i = 0; i < c * (size_t)n; i++)
            if (check_copied(ctx, f, f->result + i * es, i, (int)(i / c), i % c) != 0)
                return 1;
        break;
    case COLL_BROADCAST:
        for (size_t i = 0; i < c; i++)
            if (check_copied(ctx, f, f->result + i * es, i, tc->root, i) != 0)
                return 1;
        break;
    case COLL_ALLTOALL:
    case COLL_ALLTOALLV: return verify_alltoall(ctx, f);
    case COLL_BARRIER: break;
    }
    return 0;
}

static void release(inflight_t *f)
{
    arena_free(&f->send);
    arena_free(&f->recv);
}

/*
 * Run @p f's case again on the second communicator, with other alignments
 * and another call form: the result must have the same bits.
 */
static int repeat(rank_ctx_t *ctx, inflight_t *f)
{
    inflight_t g;
    int failed;

    if (setup(ctx, f->tc, f->index, &g, f->mode == MODE_BLOCKING ? MODE_WAIT : MODE_BLOCKING,
              (f->send_skew + 1) % 4, (f->recv_skew + 2) % 4) != 0)
        return 1;
    failed = start(ctx, ctx->comm2, &g) || complete(ctx, &g, 1) || verify(ctx, &g, 0);
    if (!failed && g.result_len != f->result_len)
        failed = rank_fail(ctx, &g, "the repeated call received %zu bytes, the first %zu",
                           g.result_len, f->result_len);
    if (!failed && f->result_len > 0 && memcmp(g.result, f->result, f->result_len) != 0) {
        size_t es = tt_ref_size(f->tc->datatype), i = 0;
        char a[80], b[80];
        while (memcmp(g.result + i * es, f->result + i * es, es) == 0)
            i++;
        tt_ref_describe(f->tc->datatype, tt_ref_load(f->tc->datatype, f->result + i * es), a,
                        sizeof(a));
        tt_ref_describe(f->tc->datatype, tt_ref_load(f->tc->datatype, g.result + i * es), b,
                        sizeof(b));
        failed = rank_fail(ctx, &g,
                           "not deterministic: result element %zu was %s on the first "
                           "communicator (%s), %s now",
                           i, a, mode_names[f->mode], b);
    }
    release(&g);
    return failed;
}

/* Complete, verify and free a batch of started calls. */
static int finish_batch(rank_ctx_t *ctx, inflight_t *batch, int nb)
{
    int failed = complete(ctx, batch, nb);

    for (int i = 0; i < nb && !failed; i++) {
        failed = verify(ctx, &batch[i], 1);
        if (!failed && batch[i].tc->repeat)
            failed = repeat(ctx, &batch[i]);
    }
    for (int i = 0; i < nb; i++)
        release(&batch[i]);
    return failed;
}

static tutti_config_t make_config(const run_arg_t *arg)
{
    const config_def_t *d = &configs[arg->config];
    tutti_config_t cfg;

    if (tutti_config_create(&cfg) != TUTTI_OK)
        return NULL;
    for (int i = 0; i < MAX_SETTINGS && d->settings[i][0] != NULL; i++) {
        if (tutti_config_set(cfg, d->settings[i][0], d->settings[i][1]) != TUTTI_OK) {
            tutti_config_destroy(cfg);
            return NULL;
        }
    }
    if (arg->extra[0] != NULL && tutti_config_set(cfg, arg->extra[0], arg->extra[1]) != TUTTI_OK) {
        tutti_config_destroy(cfg);
        return NULL;
    }
    return cfg;
}

static int rank_main(int rank, int nranks, const tutti_unique_id_t *id, void *p)
{
    const run_arg_t *arg = p;
    rank_ctx_t ctx = {rank, nranks, arg->config, NULL, NULL, arg->shared};
    inflight_t batch[BATCH_MAX];
    tutti_config_t cfg = make_config(arg);
    tutti_status_t status;
    int nb = 0;

    /*
     * Keep freed buffers for the next case instead of returning them to the
     * kernel: fresh pages for every megabyte case cost more than the case.
     */
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 256 << 20);
    if (cfg == NULL)
        return rank_fail(&ctx, NULL, "cannot make the configuration");
    ctx.comm = tt_test_comm(rank, nranks, id, cfg);
    tutti_config_destroy(cfg);
    status = tutti_comm_split(ctx.comm, 0, rank, NULL, &ctx.comm2);
    if (status != TUTTI_OK)
        return rank_fail(&ctx, NULL, "tutti_comm_split: %s", tutti_status_string(status));

    for (size_t i = 0; i < arg->ncases; i++) {
        const test_case_t *tc = &arg->cases[i];
        int last;

        if (setup(&ctx, tc, i, &batch[nb], tc->mode, tc->send_skew, tc->recv_skew) != 0)
            return 1;
        if (start(&ctx, ctx.comm, &batch[nb++]) != 0)
            return 1;
        last = i + 1 == arg->ncases || tc->large || arg->cases[i + 1].large;
        if (tc->mode == MODE_BLOCKING || nb == BATCH_MAX || last) {
            if (finish_batch(&ctx, batch, nb) != 0)
                return 1;
            nb = 0;
        }
    }
    status = tutti_comm_destroy(ctx.comm2);
    if (status == TUTTI_OK)
        status = tutti_comm_destroy(ctx.comm);
    if (status != TUTTI_OK)
        return tt_fail(rank, "tutti_comm_destroy: %s", tutti_status_string(status));
    return 0;
}

/* ------------------------------------------------------------------------ */
/* The reference itself                                                     */
/* ------------------------------------------------------------------------ */

/* ck_assert for loops: a passing Check assertion costs a pipe write in fork mode. */
#define EXPECT(cond, ...)              \
    do {                               \
        if (!(cond))                   \
            ck_abort_msg(__VA_ARGS__); \
    } while (0)

START_TEST(test_reference_half)
{
    static const struct {
        double value;
        uint16_t fp16;
    } fp16_cases[] = {
        {1.0, 0x3c00},
        {-2.0, 0xc000},
        {65504.0, 0x7bff},
        {65519.0, 0x7bff},
        {65520.0, 0x7c00},     /* halfway to 65536: to even, infinity */
        {1 + 0x1p-11, 0x3c00}, /* halfway: to even */
        {1 + 0x3p-11, 0x3c02},
        {0x1p-24, 0x0001}, /* smallest subnormal */
        {0x1p-25, 0x0000}, /* half of it: to even, zero */
        {0x3p-25, 0x0002},
        {0x3ffp-24 + 0x1p-25, 0x0400}, /* largest subnormal + 1/2: smallest normal */
        {-0.0, 0x8000},
    };
    static const struct {
        double value;
        uint16_t bf16;
    } bf16_cases[] = {
        {1.0, 0x3f80},      {1 + 0x1p-8, 0x3f80}, {1 + 0x3p-8, 0x3f82}, {-3.0, 0xc040},
        {0x1p-133, 0x0001}, {0x1.fep127, 0x7f7f}, {0x1.ffp127, 0x7f80},
    };

    for (size_t i = 0; i < sizeof(fp16_cases) / sizeof(fp16_cases[0]); i++)
        ck_assert_msg(tt_ref_fp16_encode(fp16_cases[i].value) == fp16_cases[i].fp16,
                      "fp16 of %a: 0x%04x, expected 0x%04x", fp16_cases[i].value,
                      tt_ref_fp16_encode(fp16_cases[i].value), fp16_cases[i].fp16);
    for (size_t i = 0; i < sizeof(bf16_cases) / sizeof(bf16_cases[0]); i++)
        ck_assert_msg(tt_ref_bf16_encode(bf16_cases[i].value) == bf16_cases[i].bf16,
                      "bf16 of %a: 0x%04x, expected 0x%04x", bf16_cases[i].value,
                      tt_ref_bf16_encode(bf16_cases[i].value), bf16_cases[i].bf16);
    ck_assert(isnan(tt_ref_fp16_decode(0x7e00)) && isnan(tt_ref_bf16_decode(0xffc1)));
    ck_assert(isinf(tt_ref_fp16_decode(0xfc00)) && tt_ref_fp16_decode(0xfc00) < 0);
    /* Every pattern but a NaN survives decoding and encoding. */
    for (uint32_t h = 0; h < 65536; h++) {
        double f = tt_ref_fp16_decode((uint16_t)h), b = tt_ref_bf16_decode((uint16_t)h);
        EXPECT(isnan(f) || tt_ref_fp16_encode(f) == h, "fp16 0x%04x: %a encodes as 0x%04x", h, f,
               tt_ref_fp16_encode(f));
        EXPECT(isnan(b) || tt_ref_bf16_encode(b) == h, "bf16 0x%04x: %a encodes as 0x%04x", h, b,
               tt_ref_bf16_encode(b));
    }
}
END_TEST

/* Two's complement value of the low @p width bits of @p bits. */
static __int128 signed_value(uint64_t bits, int width)
{
    __int128 v = width == 64 ? (__int128)bits : (__int128)(bits & ((1ull << width) - 1));
    return v >= (__int128)1 << (width - 1) ? v - ((__int128)1 << width) : v;
}

/*
 * The integer references again, another way: 128-bit arithmetic on the
 * values (signed where the type is), reduced modulo 2^width at the end.
 */
START_TEST(test_reference_integers)
{
    static const tutti_datatype_t types[] = {TUTTI_INT8,   TUTTI_UINT8, TUTTI_INT32,
                                             TUTTI_UINT32, TUTTI_INT64, TUTTI_UINT64};
    static const int sizes[] = {1, 3, 8};

    for (size_t ti = 0; ti < 6; ti++) {
        tutti_datatype_t t = types[ti];
        int width = 8 * (int)tt_ref_size(t),
            sgn = t == TUTTI_INT8 || t == TUTTI_INT32 || t == TUTTI_INT64;
        unsigned __int128 modulus = (unsigned __int128)1 << width;
        for (int op = 0; op < TUTTI_NUM_OPS; op++) {
            for (int si = 0; si < 3; si++) {
                tt_ref_case_t c = {t,        (tutti_op_t)op, 1, TT_REF_EXACT, 77 + (uint64_t)op,
                                   sizes[si]};
                for (uint64_t i = 0; i < 300; i++) {
                    __int128 acc = 0, v;
                    tt_ref_value_t want;
                    uint64_t expect;
                    for (int r = 0; r < c.nranks; r++) {
                        uint64_t x = tt_ref_input(&c, r, i);
                        v = sgn ? signed_value(x, width) : (__int128)x;
                        if (r == 0)
                            acc = v;
                        else if (op == TUTTI_SUM || op == TUTTI_AVG)
                            acc = (__int128)(((unsigned __int128)acc + (unsigned __int128)v) %
                                             modulus);
                        else if (op == TUTTI_PROD)
                            acc = (__int128)(((unsigned __int128)acc * (unsigned __int128)v) %
                                             modulus);
                        else if (op == TUTTI_MIN)
                            acc = v < acc ? v : acc;
                        else
                            acc = v > acc ? v : acc;
                    }
                    if (op == TUTTI_AVG) {
                        uint64_t wrapped = (uint64_t)((unsigned __int128)acc % modulus);
                        v = sgn ? signed_value(wrapped, width) : (__int128)wrapped;
                        acc = v / c.nranks; /* truncates toward zero */
                    }
                    expect = (uint64_t)((unsigned __int128)acc % modulus);
                    tt_ref_expect(&c, i, &want);
                    EXPECT(want.bits == expect, "%s %s n=%d element %llu: reference %llx, %llx",
                           tt_ref_datatype_name(t), tt_ref_op_name((tutti_op_t)op), c.nranks,
                           (unsigned long long)i, (unsigned long long)want.bits,
                           (unsigned long long)expect);
                }
            }
        }
    }
}
END_TEST

/*
 * The float reference computes with the values it means to generate; the
 * buffers get their encodings. With one rank the expected result is the
 * input itself, so the two must agree exactly.
 */
START_TEST(test_reference_floats)
{
    static const tutti_datatype_t types[] = {TUTTI_FP16, TUTTI_BF16, TUTTI_FP32, TUTTI_FP64};

    for (size_t ti = 0; ti < 4; ti++) {
        for (int op = 0; op < TUTTI_NUM_OPS; op++) {
            for (int k = TT_REF_EXACT; k <= TT_REF_ROUNDING; k++) {
                tt_ref_case_t c = {types[ti], (tutti_op_t)op, 1, (tt_ref_inputs_t)k, 5, 1};
                for (uint64_t i = 0; i < 2000; i++) {
                    uint64_t bits = tt_ref_input(&c, 0, i);
                    double v = tt_ref_decode(c.datatype, bits);
                    tt_ref_value_t want;
                    tt_ref_expect(&c, i, &want);
                    EXPECT(v == want.value && !isnan(v) && (v != 0 || !signbit(v)),
                           "%s %s inputs %d element %llu: buffer holds %a, reference uses %a",
                           tt_ref_datatype_name(c.datatype), tt_ref_op_name(c.op), k,
                           (unsigned long long)i, v, want.value);
                }
            }
        }
    }
}
END_TEST

/* ------------------------------------------------------------------------ */
/* The Check tests                                                          */
/* ------------------------------------------------------------------------ */

/*
 * Whether to run @p nranks ranks: TT_TEST_RANK_COUNTS ("2,3,4") limits the
 * rank counts, for slow places such as the Soft-RoCE VM.
 */
static int rank_count_wanted(int nranks)
{
    const char *list = getenv("TT_TEST_RANK_COUNTS");
    char *end;

    if (list == NULL || list[0] == '\0')
        return 1;
    for (const char *p = list; *p != '\0'; p = *end == ',' ? end + 1 : end) {
        long n = strtol(p, &end, 10);
        if (end == p)
            return 1; /* not a list: ignore it */
        if (n == nranks)
            return 1;
    }
    return 0;
}

static void run_config(int config, int nranks)
{
    char cluster_file[64], topo_file[1024];
    case_list_t list = {calloc(MAX_CASES, sizeof(test_case_t)), 0, 0};
    shared_t *shared =
        mmap(NULL, sizeof(shared_t), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    run_arg_t arg;
    struct timespec t0, t1;
    int failed, mismatches = 0;

    ck_assert(list.cases != NULL);
    ck_assert(shared != MAP_FAILED);
    if (!rank_count_wanted(nranks)) {
        printf("collectives: N=%d %-9s skipped (TT_TEST_RANK_COUNTS)\n", nranks,
               configs[config].name);
        free(list.cases);
        munmap(shared, sizeof(shared_t));
        return;
    }
    snprintf(cluster_file, sizeof(cluster_file), "/tmp/tutti-test-cluster-%d.txt", (int)getpid());
    build_cases(&list, nranks, config);
    arg = (run_arg_t){config, shared, list.cases, list.n, {NULL, NULL}};
    if (config == CONFIG_HIER) {
        /* Two virtual hosts when the ranks split evenly, else one rank per host. */
        int hosts = nranks % 2 == 0 && nranks > 2 ? 2 : nranks;
        FILE *f = fopen(cluster_file, "w");
        ck_assert(f != NULL);
        fprintf(f, "hosts %d\nranks_per_host %d\nnics_per_host 2\n", hosts, nranks / hosts);
        fclose(f);
        arg.extra[0] = "TUTTI_CLUSTER_FILE";
        arg.extra[1] = cluster_file;
    } else if (config == CONFIG_CHANNELS) {
        const char *top = getenv("TOP_SRCDIR");
        snprintf(topo_file, sizeof(topo_file), "%s/tests/fixtures/topo/dgx-like-2s-8nic-8gpu.xml",
                 top != NULL ? top : ".");
        arg.extra[0] = "TUTTI_TOPO_FILE";
        arg.extra[1] = topo_file;
    }

    clock_gettime(CLOCK_MONOTONIC, &t0);
    failed = tt_run_ranks(nranks, rank_main, &arg, RANK_TIMEOUT_S);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("collectives: N=%d %-9s %4zu cases in %5.2f s%s\n", nranks, configs[config].name, list.n,
           (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9,
           failed ? " (FAILED)" : "");
    fflush(stdout);

    /* Results that must be the same on every rank. */
    for (size_t i = 0; i < list.n && !failed; i++) {
        const test_case_t *c = &list.cases[i];
        const uint64_t *h = shared->hashes[i];
        int differ = 0;
        if (c->count == 0 ||
            (c->coll != COLL_ALLREDUCE && c->coll != COLL_ALLGATHER && c->coll != COLL_BROADCAST))
            continue;
        for (int r = 0; r < nranks; r++)
            differ |= h[r] == 0 || h[r] != h[0];
        if (differ && mismatches++ < 5) {
            char what[512];
            describe_case(c, i, nranks, config, what, sizeof(what));
            fprintf(stderr, "FAIL: %s: results differ between ranks (0: none); hashes:", what);
            for (int r = 0; r < nranks; r++)
                fprintf(stderr, " %016llx", (unsigned long long)h[r]);
            fprintf(stderr, "\n");
        }
    }
    munmap(shared, sizeof(shared_t));
    free(list.cases);
    if (config == CONFIG_HIER)
        unlink(cluster_file);
    ck_assert_msg(failed == 0, "%d of %d ranks failed (N=%d, config %s); see the messages above",
                  failed, nranks, nranks, configs[config].name);
    ck_assert_msg(mismatches == 0, "%d cases gave different results on different ranks",
                  mismatches);
}

START_TEST(test_latency)
{
    run_config(CONFIG_LATENCY, rank_counts[_i]);
}
END_TEST

START_TEST(test_bandwidth)
{
    run_config(CONFIG_BANDWIDTH, rank_counts[_i]);
}
END_TEST

START_TEST(test_pipelined)
{
    run_config(CONFIG_PIPELINED, rank_counts[_i]);
}
END_TEST

START_TEST(test_tree)
{
    run_config(CONFIG_TREE, rank_counts[_i]);
}
END_TEST

START_TEST(test_hier)
{
    run_config(CONFIG_HIER, rank_counts[_i]);
}
END_TEST

START_TEST(test_channels)
{
    run_config(CONFIG_CHANNELS, rank_counts[_i]);
}
END_TEST

START_TEST(test_auto)
{
    run_config(CONFIG_AUTO, rank_counts[_i]);
}
END_TEST

static Suite *collectives_suite(void)
{
    Suite *s = suite_create("collectives");
    TCase *ref = tcase_create("reference"), *tc[NUM_CONFIGS];

    tcase_add_test(ref, test_reference_half);
    tcase_add_test(ref, test_reference_integers);
    tcase_add_test(ref, test_reference_floats);
    suite_add_tcase(s, ref);

    for (int c = 0; c < NUM_CONFIGS; c++) {
        tc[c] = tcase_create(configs[c].name);
        tcase_set_timeout(tc[c], CHECK_TIMEOUT_S);
        suite_add_tcase(s, tc[c]);
    }
    /* One test per rank count: each forks its ranks once and runs every case. */
    tcase_add_loop_test(tc[CONFIG_LATENCY], test_latency, 0, NUM_RANK_COUNTS);
    tcase_add_loop_test(tc[CONFIG_BANDWIDTH], test_bandwidth, 0, NUM_RANK_COUNTS);
    tcase_add_loop_test(tc[CONFIG_PIPELINED], test_pipelined, 0, NUM_RANK_COUNTS);
    tcase_add_loop_test(tc[CONFIG_TREE], test_tree, 0, NUM_RANK_COUNTS);
    tcase_add_loop_test(tc[CONFIG_HIER], test_hier, 0, NUM_RANK_COUNTS);
    tcase_add_loop_test(tc[CONFIG_CHANNELS], test_channels, 0, NUM_RANK_COUNTS);
    tcase_add_loop_test(tc[CONFIG_AUTO], test_auto, 0, NUM_RANK_COUNTS);
    return s;
}

TT_UNIT_MAIN(collectives_suite)
