/*
 * What the parts of the benchmark driver share (perf_common.h is what a
 * backend sees):
 *   perf_elements.c  element types: names, 16-bit floats, loading, storing,
 *                    comparing;
 *   perf_colls.c     the collectives: sizes, buffer layouts, inputs and the
 *                    results they must give, bus-bandwidth factors;
 *   perf_traffic.c   all-to-all-v's traffic patterns: who sends whom how much;
 *   perf_flags.c     the command line;
 *   perf_report.c    the table and the JSON file;
 *   perf_common.c    measuring and checking, perf_main().
 * Standard C and POSIX only, like perf_common.h.
 */
#ifndef PERF_INTERNAL_H
#define PERF_INTERNAL_H

#include "perf_common.h"

#include <stdint.h>
#include <stdio.h>

/* ---------------------------------------------------------------- elements */

typedef enum elem_kind { KIND_SIGNED, KIND_UNSIGNED, KIND_FLOAT } elem_kind_t;

typedef struct dtype_info {
    const char *name;
    const char *aliases[3];
    size_t size;
    elem_kind_t kind;
    double epsilon; /* 2^-(significand bits - 1), floats only */
} dtype_info_t;

extern const dtype_info_t perf_dtypes[PERF_NUM_DTYPES];

/* What an element must hold: value / divisor, the division rounded as the type does. */
typedef struct perf_expect {
    int64_t value;
    int64_t divisor;
} perf_expect_t;

/* Store the small integer @p v as element @p i of @p buf (exact in every type). */
void perf_store_value(perf_dtype_t dtype, void *buf, size_t i, int64_t v);

/* Does element @p i of @p buf hold what @p e says (see perf_common.c for the tolerance)? */
int perf_element_ok(perf_dtype_t dtype, const void *buf, size_t i, perf_expect_t e);

/* Make element @p i of @p buf wrong on purpose (--corrupt). */
void perf_perturb(perf_dtype_t dtype, void *buf, size_t i);

/* The type or op called @p name (@p len bytes, not terminated); -1 if none. */
int perf_find_dtype(const char *name, size_t len);
int perf_find_op(const char *name, size_t len);

/* ---------------------------------------------------------------- traffic patterns */

/* How all-to-all-v's senders split their data over the receivers (-p). */
typedef enum perf_pattern {
    PERF_PATTERN_UNIFORM, /* the same count to every rank */
    PERF_PATTERN_RANDOM,  /* a random weight per pair, some of them zero */
    PERF_PATTERN_MOE,     /* tokens routed to their top-k experts, Zipf-skewed */
    PERF_NUM_PATTERNS
} perf_pattern_t;

/* The pattern and its parameters, as the flags give them. */
typedef struct perf_pattern_opts {
    perf_pattern_t pattern;
    int experts;   /* moe: experts, spread evenly over the ranks */
    int topk;      /* moe: distinct experts each token goes to */
    double zipf;   /* moe: the expert of popularity p (from 0) has weight 1/(p+1)^zipf */
    long tokens;   /* moe: tokens each rank routes to shape the matrix */
    uint64_t seed; /* random, moe: every rank draws the same matrix from it */
} perf_pattern_opts_t;

/*
 * All-to-all-v's traffic for one run, the same on every rank: every rank
 * computes the whole matrix from the shared flags, so nothing is exchanged.
 * The pattern gives each (sender, receiver) pair a weight once; each row of
 * the sweep then splits its elements over the pairs in proportion.
 */
typedef struct perf_traffic {
    int nranks, rank;
    uint64_t *weight;             /* nranks x nranks, sender-major: the pattern's shape */
    size_t count;                 /* the row the figures below are for: average elements per pair */
    size_t *counts, *sdispls;     /* nranks x nranks: what rank s sends rank d, and from where */
    size_t *recvcounts, *rdispls; /* this rank's receive side, nranks each */
    size_t send_n, recv_n;        /* elements this rank sends and receives in all */
    size_t busiest;               /* elements: the most any rank sends or receives off-rank */
    int last_receiver;            /* the highest rank that receives anything */
    int symmetric;                /* counts equals its transpose */
} perf_traffic_t;

/* The pattern called @p name (@p len bytes, not terminated); -1 if none. */
int perf_find_pattern(const char *name, size_t len);

/* The name of @p pattern ("moe"). */
const char *perf_pattern_name(perf_pattern_t pattern);

/* One line describing @p p on @p nranks ranks, for the header. */
void perf_pattern_text(const perf_pattern_opts_t *p, int nranks, char *text, size_t len);

/*
 * Draw the weights of @p p on @p nranks ranks (every rank draws the same);
 * @p rank is this rank, whose receive side the figures describe. No row is
 * split yet (perf_traffic_scale). Returns NULL if out of memory.
 */
perf_traffic_t *perf_traffic_create(const perf_pattern_opts_t *p, int nranks, int rank);

/*
 * Split nranks * nranks * @p count elements over the pairs (a no-op if the
 * figures are for @p count already). Returns 0, or -1 if the arithmetic
 * would overflow (a size far beyond memory).
 */
int perf_traffic_scale(perf_traffic_t *t, size_t count);

/* Free @p t (NULL does nothing). */
void perf_traffic_destroy(perf_traffic_t *t);

/* ---------------------------------------------------------------- options and runs */

typedef struct perf_coll perf_coll_t;

/* How times of the ranks combine into the table's (-a). */
typedef enum perf_aggregate {
    PERF_AGG_RANK0,
    PERF_AGG_AVG,
    PERF_AGG_MIN,
    PERF_AGG_MAX
} perf_aggregate_t;

typedef struct perf_opts {
    const perf_coll_t *coll;
    size_t min_bytes, max_bytes, step_bytes; /* step_bytes 0: multiply by factor */
    size_t factor;
    long iters, warmup;
    int check, root, corrupt;
    int blocking;               /* -z: 1 the blocking calls, 0 the nonblocking ones */
    perf_aggregate_t aggregate; /* -a */
    const char *json_path;      /* -J, or NULL */
    perf_dtype_t dtype_list[PERF_NUM_DTYPES];
    int ndtypes;
    perf_op_t op_list[PERF_NUM_OPS];
    int nops;
    perf_pattern_opts_t pattern; /* all-to-all-v only */
    int pattern_set;             /* -p or a pattern parameter was given */
} perf_opts_t;

/* Everything one run of the sweep needs; the type and op change per block. */
typedef struct perf_run {
    const perf_backend_t *be;
    void *ctx;
    const perf_opts_t *opts;
    int rank, nranks;
    perf_dtype_t dtype;
    perf_op_t op;
    int64_t sum_max; /* largest input for sum and avg */
    unsigned char *send, *recv;
    size_t send_bytes, recv_bytes; /* capacity, without the guard */
    perf_traffic_t *traffic;       /* all-to-all-v only, else NULL */
    double busbw_sum, busiest_bw_sum;
    long busbw_rows;
    double wrong_total;
    FILE *json; /* rank 0, with -J */
    int json_rows;
} perf_run_t;

/* ---------------------------------------------------------------- collectives */

/*
 * Where one call's data sits on this rank, in elements. Out of place, the
 * input is the first send_n elements of the send buffer and the result the
 * first recv_n of the receive buffer. In place both are in the receive
 * buffer, at the offsets the collective's in-place form puts them.
 */
typedef struct perf_layout {
    size_t send_n, recv_n;
    size_t in_place_send, in_place_recv;
} perf_layout_t;

/* A collective: how big its buffers are, what in place means, what it computes. */
struct perf_coll {
    const char *name;
    perf_coll_kind_t kind;
    int has_op, has_root, has_size; /* has_size 0: one row, of 0 bytes (barrier) */
    int has_pattern;                /* sizes per pair from a traffic pattern (run->traffic) */
    const char *busbw_text;         /* the factor, for the header: "2(n-1)/n" */
    /* Count argument for a row of @p bytes (0 only without a size). */
    size_t (*count_of)(size_t bytes, size_t elem_size, int nranks);
    /* Bytes the size column shows and algbw divides by. */
    size_t (*bytes_of)(size_t count, size_t elem_size, int nranks);
    /* This rank's buffers for a call of @p count. */
    void (*layout)(const perf_run_t *run, size_t count, perf_layout_t *layout);
    /* busbw = algbw * factor: how much each rank's link must carry. */
    double (*busbw_factor)(int nranks);
    /* What result element @p i (from the result's start) must hold on this rank. */
    perf_expect_t (*expected)(const perf_run_t *run, size_t count, size_t i);
};

/* The collective called @p name, or NULL. */
const perf_coll_t *perf_coll_find(const char *name);

/*
 * The collectives' names, separated by spaces, for the usage text: lines
 * end before column 80, the first starting at column @p indent and the
 * others indented as much. Built on the first call.
 */
const char *perf_coll_names(int indent);

/* Input element @p i of @p rank: a small integer (see perf_common.c). */
int64_t perf_input_value(const perf_run_t *run, int rank, size_t i);

/* A 64-bit hash of @p x (splitmix64's finaliser): inputs and traffic patterns draw from it. */
uint64_t perf_mix64(uint64_t x);

/* ---------------------------------------------------------------- flags */

/* Returns -1 to exit with PERF_EXIT_USAGE, 1 to exit at once with success (--help), else 0. */
int perf_parse_flags(int argc, char **argv, const char *program, perf_opts_t *o);

/* ---------------------------------------------------------------- report */

/* One row's figures, summed or aggregated over the ranks; [0] out of place, [1] in place. */
typedef struct perf_row {
    size_t bytes, count;
    size_t busiest_bytes; /* all-to-all-v: the most any rank sends or receives off-rank */
    double time_us[2];
    double wrong[2];
} perf_row_t;

/* Rank 0: the header (and open the JSON file). Returns 0, or -1 if the file cannot be made. */
int perf_report_begin(perf_run_t *run, const char *library);

/* Rank 0: one row of the table (and the JSON file). */
void perf_report_row(perf_run_t *run, const perf_row_t *row);

/* Rank 0: a row the library cannot run. */
void perf_report_unsupported(perf_run_t *run, size_t bytes, size_t count);

/* Rank 0: the footer (and close the JSON file). Returns 0, or -1 if writing the file failed. */
int perf_report_end(perf_run_t *run);

#endif /* PERF_INTERNAL_H */
