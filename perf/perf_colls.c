/*
 * The collectives the benchmark runs, as data: sizes, buffer layouts, the
 * inputs and the results they must give, and nccl-tests' bus-bandwidth
 * factors. The size column is what nccl-tests prints: the bytes of one
 * rank's buffer for allreduce, broadcast and reduce, of the whole gathered
 * (or scattered) vector for all-gather and reduce-scatter, of what one rank
 * sends for all-to-all (on average over the ranks for all-to-all-v); algbw
 * divides it by the time.
 */
#include "perf_internal.h"

#include <string.h>

#define PROD_MAX_TWOS 6
#define USAGE_WIDTH 80

uint64_t perf_mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 31)) * 0xd6e8feb86659fd93ull;
    x = (x ^ (x >> 29)) * 0xbf58476d1ce4e5b9ull;
    return x ^ (x >> 32);
}

int64_t perf_input_value(const perf_run_t *run, int rank, size_t i)
{
    uint64_t h = perf_mix64((uint64_t)i << 20 ^ (uint64_t)(unsigned)rank);
    perf_op_t op = run->opts->coll->has_op ? run->op : PERF_MAX;

    switch (op) {
    case PERF_SUM:
    case PERF_AVG: return (int64_t)(h % (uint64_t)(run->sum_max + 1));
    case PERF_PROD: {
        /* Only the ranks in a window of PROD_MAX_TWOS after i may hold a 2. */
        size_t slot = (i + (size_t)rank) % (size_t)run->nranks;
        return slot < PROD_MAX_TWOS && (h & 1) ? 2 : 1;
    }
    default:
        if (perf_dtypes[run->dtype].kind == KIND_UNSIGNED)
            return (int64_t)(h % 100);
        return (int64_t)(h % 100) - 50;
    }
}

static int64_t reduce_pair(perf_op_t op, int64_t a, int64_t b)
{
    switch (op) {
    case PERF_PROD: return a * b;
    case PERF_MIN: return a < b ? a : b;
    case PERF_MAX: return a > b ? a : b;
    default: return a + b; /* sum, and avg before its division */
    }
}

/* Element @p i of the reduction of every rank's input. */
static perf_expect_t reduction(const perf_run_t *run, size_t i)
{
    perf_expect_t e = {perf_input_value(run, 0, i), run->op == PERF_AVG ? run->nranks : 1};
    for (int r = 1; r < run->nranks; r++)
        e.value = reduce_pair(run->op, e.value, perf_input_value(run, r, i));
    return e;
}

/* ---------------------------------------------------------------- sizes and factors */

/* count elements per rank (allreduce, broadcast, reduce): the row's bytes / element. */
static size_t count_per_rank(size_t bytes, size_t elem_size, int nranks)
{
    (void)nranks;
    return bytes / elem_size > 0 ? bytes / elem_size : 1;
}

static size_t bytes_per_rank(size_t count, size_t elem_size, int nranks)
{
    (void)nranks;
    return count * elem_size;
}

/* count elements per rank's block of a vector of the row's bytes (all-gather, reduce-scatter). */
static size_t count_per_block(size_t bytes, size_t elem_size, int nranks)
{
    size_t count = bytes / elem_size / (size_t)nranks;
    return count > 0 ? count : 1;
}

static size_t bytes_of_blocks(size_t count, size_t elem_size, int nranks)
{
    return count * elem_size * (size_t)nranks;
}

static size_t no_count(size_t bytes, size_t elem_size, int nranks)
{
    (void)bytes;
    (void)elem_size;
    (void)nranks;
    return 0;
}

static double factor_allreduce(int nranks)
{
    return 2.0 * (nranks - 1) / nranks;
}

static double factor_gather(int nranks)
{
    return (double)(nranks - 1) / nranks;
}

static double factor_one(int nranks)
{
    (void)nranks;
    return 1.0;
}

static double factor_none(int nranks)
{
    (void)nranks;
    return 0.0;
}

/* ---------------------------------------------------------------- the collectives */

static void allreduce_layout(const perf_run_t *run, size_t count, perf_layout_t *l)
{
    (void)run;
    *l = (perf_layout_t){count, count, 0, 0};
}

static perf_expect_t allreduce_expected(const perf_run_t *run, size_t count, size_t i)
{
    (void)count;
    return reduction(run, i);
}

/* Reduce-scatter: in place, the input fills the buffer and block r is the result. */
static void reduce_scatter_layout(const perf_run_t *run, size_t count, perf_layout_t *l)
{
    *l = (perf_layout_t){count * (size_t)run->nranks, count, 0, count * (size_t)run->rank};
}

static perf_expect_t reduce_scatter_expected(const perf_run_t *run, size_t count, size_t i)
{
    return reduction(run, count * (size_t)run->rank + i);
}

/* All-gather: in place, this rank's input is its block of the result. */
static void allgather_layout(const perf_run_t *run, size_t count, perf_layout_t *l)
{
    *l = (perf_layout_t){count, count * (size_t)run->nranks, count * (size_t)run->rank, 0};
}

static perf_expect_t allgather_expected(const perf_run_t *run, size_t count, size_t i)
{
    perf_expect_t e = {perf_input_value(run, (int)(i / count), i % count), 1};
    return e;
}

/* Broadcast: only the root has an input. */
static void broadcast_layout(const perf_run_t *run, size_t count, perf_layout_t *l)
{
    *l = (perf_layout_t){run->rank == run->opts->root ? count : 0, count, 0, 0};
}

static perf_expect_t broadcast_expected(const perf_run_t *run, size_t count, size_t i)
{
    perf_expect_t e = {perf_input_value(run, run->opts->root, i), 1};
    (void)count;
    return e;
}

/* Reduce: only the root has a result (the others' receive buffers must stay untouched). */
static void reduce_layout(const perf_run_t *run, size_t count, perf_layout_t *l)
{
    *l = (perf_layout_t){count, run->rank == run->opts->root ? count : 0, 0, 0};
}

/* All-to-all: block j of the input goes to rank j; in place, the result replaces it. */
static void alltoall_layout(const perf_run_t *run, size_t count, perf_layout_t *l)
{
    size_t n = count * (size_t)run->nranks;
    *l = (perf_layout_t){n, n, 0, 0};
}

/* Block i of the result is block (this rank) of rank i's input. */
static perf_expect_t alltoall_expected(const perf_run_t *run, size_t count, size_t i)
{
    size_t from = i / count, at = count * (size_t)run->rank + i % count;
    perf_expect_t e = {perf_input_value(run, (int)from, at), 1};
    return e;
}

/* All-to-all-v: the blocks are packed in rank order, as run->traffic says. */
static void alltoallv_layout(const perf_run_t *run, size_t count, perf_layout_t *l)
{
    (void)count;
    *l = (perf_layout_t){run->traffic->send_n, run->traffic->recv_n, 0, 0};
}

/* The block from rank s that holds result element i: the last whose displacement is <= i. */
static int sender_of(const perf_traffic_t *t, size_t i)
{
    int lo = 0, hi = t->nranks - 1;

    while (lo < hi) {
        int mid = lo + (hi - lo + 1) / 2;
        if (t->rdispls[mid] <= i)
            lo = mid;
        else
            hi = mid - 1;
    }
    return lo;
}

static perf_expect_t alltoallv_expected(const perf_run_t *run, size_t count, size_t i)
{
    const perf_traffic_t *t = run->traffic;
    int from = sender_of(t, i);
    size_t at = t->sdispls[(size_t)from * (size_t)t->nranks + (size_t)run->rank];
    perf_expect_t e = {perf_input_value(run, from, at + (i - t->rdispls[from])), 1};
    (void)count;
    return e;
}

static void barrier_layout(const perf_run_t *run, size_t count, perf_layout_t *l)
{
    (void)run;
    (void)count;
    *l = (perf_layout_t){0, 0, 0, 0};
}

/*
 * All-to-all and all-to-all-v count per block like all-gather (the size is
 * what one rank sends: nranks blocks) and take its factor: of what a rank
 * sends, (n-1)/n leaves it, as nccl-tests has it. For all-to-all-v the
 * count is the average per pair, and the report adds the bound the busiest
 * rank sets (perf_report.c).
 */
static const perf_coll_t colls[] = {
    {"allreduce", PERF_ALLREDUCE, 1, 0, 1, 0, "2(n-1)/n", count_per_rank, bytes_per_rank,
     allreduce_layout, factor_allreduce, allreduce_expected},
    {"reduce_scatter", PERF_REDUCE_SCATTER, 1, 0, 1, 0, "(n-1)/n", count_per_block, bytes_of_blocks,
     reduce_scatter_layout, factor_gather, reduce_scatter_expected},
    {"allgather", PERF_ALLGATHER, 0, 0, 1, 0, "(n-1)/n", count_per_block, bytes_of_blocks,
     allgather_layout, factor_gather, allgather_expected},
    {"broadcast", PERF_BROADCAST, 0, 1, 1, 0, "1", count_per_rank, bytes_per_rank, broadcast_layout,
     factor_one, broadcast_expected},
    {"reduce", PERF_REDUCE, 1, 1, 1, 0, "1", count_per_rank, bytes_per_rank, reduce_layout,
     factor_one, allreduce_expected},
    {"barrier", PERF_BARRIER, 0, 0, 0, 0, "0 (no data)", no_count, bytes_per_rank, barrier_layout,
     factor_none, allreduce_expected},
    {"alltoall", PERF_ALLTOALL, 0, 0, 1, 0, "(n-1)/n", count_per_block, bytes_of_blocks,
     alltoall_layout, factor_gather, alltoall_expected},
    {"alltoallv", PERF_ALLTOALLV, 0, 0, 1, 1, "(n-1)/n", count_per_block, bytes_of_blocks,
     alltoallv_layout, factor_gather, alltoallv_expected},
};

/* Other spellings people type: nccl-tests' program names and the API's. */
static const struct {
    const char *alias, *name;
} aliases[] = {
    {"all_reduce", "allreduce"},
    {"all-reduce", "allreduce"},
    {"reduce-scatter", "reduce_scatter"},
    {"reducescatter", "reduce_scatter"},
    {"all_gather", "allgather"},
    {"all-gather", "allgather"},
    {"bcast", "broadcast"},
    {"all_to_all", "alltoall"},
    {"all-to-all", "alltoall"},
    {"all_to_allv", "alltoallv"},
    {"all-to-allv", "alltoallv"},
};

const perf_coll_t *perf_coll_find(const char *name)
{
    for (size_t k = 0; k < sizeof(aliases) / sizeof(aliases[0]); k++)
        if (strcmp(name, aliases[k].alias) == 0)
            name = aliases[k].name;
    for (size_t k = 0; k < sizeof(colls) / sizeof(colls[0]); k++)
        if (strcmp(name, colls[k].name) == 0)
            return &colls[k];
    return NULL;
}

const char *perf_coll_names(int indent)
{
    static char names[320];
    int column = indent;

    if (names[0] != '\0')
        return names;
    for (size_t k = 0; k < sizeof(colls) / sizeof(colls[0]); k++) {
        int len = (int)strlen(colls[k].name);
        const char *sep = k ? " " : "";
        if (k > 0 && column + 1 + len > USAGE_WIDTH) {
            snprintf(names + strlen(names), sizeof(names) - strlen(names), "\n%*s", indent, "");
            column = indent;
            sep = "";
        }
        snprintf(names + strlen(names), sizeof(names) - strlen(names), "%s%s", sep, colls[k].name);
        column += (int)strlen(sep) + len;
    }
    return names;
}
