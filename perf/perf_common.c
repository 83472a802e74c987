/*
 * Shared benchmark driver; see perf_common.h.
 *
 * How results are made checkable: element i of rank r's input is a small
 * integer v(r, i) drawn from a hash of (r, i), in a range chosen per
 * operation so that every partial result any algorithm can form is exact in
 * every type, fp16 and bf16 included:
 *   sum, avg  0 <= v <= 127 / nranks, so any partial sum stays <= 127 (exact
 *             in int8 and in bf16's 8-bit significand, whatever the order);
 *   prod      v is 1 or 2, and at most 6 ranks hold a 2 for one element, so
 *             every product is a power of two <= 64;
 *   min, max  -50 <= v <= 49 for signed types and floats, 0..99 for unsigned.
 * The expected value of an element is then computed directly in 64-bit
 * integers. Integer results are compared exactly (after wrapping to the
 * type, which matters only past 127 ranks). Float results are compared
 * exactly, except avg, whose division rounds: the result may differ from
 * the exact quotient by 2 epsilon of the type, relative (epsilon = 2^-10
 * for fp16, 2^-7 bf16, 2^-23 fp32, 2^-52 fp64). One rounding of the
 * quotient errs by at most epsilon / 2; the rest is room for the double
 * rounding of fp16 and bf16 through fp32, not for an algorithm that divides
 * before it sums.
 *
 * Beyond the elements themselves the check counts as wrong: bytes written
 * in a guard zone just past the receive buffer, and send-buffer elements
 * changed by an out-of-place call.
 */
#include "perf_common.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define GUARD_BYTES 64
#define POISON 0xA5
#define BUFFER_ALIGN 4096
#define PROD_MAX_TWOS 6

/* ------------------------------------------------------------------------ */
/* Types                                                                    */
/* ------------------------------------------------------------------------ */

typedef enum elem_kind { KIND_SIGNED, KIND_UNSIGNED, KIND_FLOAT } elem_kind_t;

typedef struct dtype_info {
    const char *name;
    const char *aliases[3];
    size_t size;
    elem_kind_t kind;
    double epsilon; /* 2^-(significand bits - 1), floats only */
} dtype_info_t;

static const dtype_info_t dtypes[PERF_NUM_DTYPES] = {
    [PERF_INT8] = {"int8", {"char"}, 1, KIND_SIGNED, 0},
    [PERF_UINT8] = {"uint8", {NULL}, 1, KIND_UNSIGNED, 0},
    [PERF_INT32] = {"int32", {"int"}, 4, KIND_SIGNED, 0},
    [PERF_UINT32] = {"uint32", {NULL}, 4, KIND_UNSIGNED, 0},
    [PERF_INT64] = {"int64", {NULL}, 8, KIND_SIGNED, 0},
    [PERF_UINT64] = {"uint64", {NULL}, 8, KIND_UNSIGNED, 0},
    [PERF_FP16] = {"fp16", {"half", "float16"}, 2, KIND_FLOAT, 0x1p-10},
    [PERF_BF16] = {"bf16", {"bfloat16"}, 2, KIND_FLOAT, 0x1p-7},
    [PERF_FP32] = {"fp32", {"float", "float32"}, 4, KIND_FLOAT, 0x1p-23},
    [PERF_FP64] = {"fp64", {"double", "float64"}, 8, KIND_FLOAT, 0x1p-52},
};

static const char *const op_names[PERF_NUM_OPS] = {
    [PERF_SUM] = "sum", [PERF_PROD] = "prod", [PERF_MIN] = "min",
    [PERF_MAX] = "max", [PERF_AVG] = "avg",
};

const char *perf_dtype_name(perf_dtype_t dtype)
{
    return (unsigned)dtype < PERF_NUM_DTYPES ? dtypes[dtype].name : "?";
}

const char *perf_op_name(perf_op_t op)
{
    return (unsigned)op < PERF_NUM_OPS ? op_names[op] : "?";
}

/* ------------------------------------------------------------------------ */
/* 16-bit floats, converted by hand: only standard C is available here      */
/* ------------------------------------------------------------------------ */

static float float_from_bits(uint32_t x)
{
    float f;
    memcpy(&f, &x, sizeof(f));
    return f;
}

static uint32_t float_bits(float f)
{
    uint32_t x;
    memcpy(&x, &f, sizeof(x));
    return x;
}

static float fp16_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff;

    if (exp == 0) {
        /* Zero or subnormal: man units of 2^-24, exact in a float. */
        float v = (float)man * 0x1p-24f;
        return sign ? -v : v;
    }
    if (exp == 31)
        return float_from_bits(sign | 0x7f800000u | man << 13);
    return float_from_bits(sign | (exp + 112) << 23 | man << 13);
}

/* Round @p value to nearest even after dropping the low @p shift bits. */
static uint32_t round_shift(uint32_t value, unsigned shift)
{
    uint32_t kept = value >> shift, rest = value & ((1u << shift) - 1), half = 1u << (shift - 1);
    return kept + (rest > half || (rest == half && (kept & 1)));
}

static uint16_t float_to_fp16(float f)
{
    uint32_t x = float_bits(f), sign = (x >> 16) & 0x8000, ax = x & 0x7fffffff;
    uint32_t exp = ax >> 23;

    if (ax > 0x7f800000u)
        return (uint16_t)(sign | 0x7e00); /* NaN */
    if (ax >= 0x477ff000u)
        return (uint16_t)(sign | 0x7c00); /* 65520 and up round to infinity */
    if (exp < 113) {
        /* Below 2^-14: a subnormal in units of 2^-24 (or zero). */
        if (exp < 102)
            return (uint16_t)sign;
        return (uint16_t)(sign | round_shift((ax & 0x7fffff) | 0x800000, 126 - exp));
    }
    /* A carry out of the significand correctly bumps the exponent. */
    return (uint16_t)(sign | round_shift(ax - (112u << 23), 13));
}

static float bf16_to_float(uint16_t h)
{
    return float_from_bits((uint32_t)h << 16);
}

static uint16_t float_to_bf16(float f)
{
    uint32_t x = float_bits(f);
    if ((x & 0x7fffffff) > 0x7f800000u)
        return (uint16_t)((x >> 16) | 0x40); /* NaN stays NaN */
    return (uint16_t)((x + 0x7fff + ((x >> 16) & 1)) >> 16);
}

/* ------------------------------------------------------------------------ */
/* Element access                                                           */
/* ------------------------------------------------------------------------ */

/* Wrap @p v to the type's width and extend it back, as the type would hold it. */
static int64_t wrap_int(const dtype_info_t *t, int64_t v)
{
    unsigned bits = (unsigned)t->size * 8;
    uint64_t u = (uint64_t)v, mask;

    if (bits == 64)
        return v;
    mask = ((uint64_t)1 << bits) - 1;
    u &= mask;
    if (t->kind == KIND_SIGNED && (u >> (bits - 1)))
        u |= ~mask;
    return (int64_t)u;
}

/* Integer element @p i, extended to 64 bits (the bit pattern for uint64). */
static int64_t load_int(perf_dtype_t dtype, const void *buf, size_t i)
{
    const unsigned char *p = (const unsigned char *)buf + i * dtypes[dtype].size;
    union {
        int8_t i8;
        uint8_t u8;
        int32_t i32;
        uint32_t u32;
        int64_t i64;
    } u;

    memcpy(&u, p, dtypes[dtype].size);
    switch (dtype) {
    case PERF_INT8: return u.i8;
    case PERF_UINT8: return u.u8;
    case PERF_INT32: return u.i32;
    case PERF_UINT32: return u.u32;
    default: return u.i64;
    }
}

static void store_int(perf_dtype_t dtype, void *buf, size_t i, int64_t v)
{
    unsigned char *p = (unsigned char *)buf + i * dtypes[dtype].size;
    int8_t i8 = (int8_t)v;
    int32_t i32 = (int32_t)v;

    /* Little and big endian alike: store through the type, not the low bytes. */
    switch (dtypes[dtype].size) {
    case 1: memcpy(p, &i8, 1); break;
    case 4: memcpy(p, &i32, 4); break;
    default: memcpy(p, &v, 8); break;
    }
}

static double load_float(perf_dtype_t dtype, const void *buf, size_t i)
{
    const unsigned char *p = (const unsigned char *)buf + i * dtypes[dtype].size;
    uint16_t h;
    float f;
    double d;

    switch (dtype) {
    case PERF_FP16: memcpy(&h, p, 2); return fp16_to_float(h);
    case PERF_BF16: memcpy(&h, p, 2); return bf16_to_float(h);
    case PERF_FP32: memcpy(&f, p, 4); return f;
    default: memcpy(&d, p, 8); return d;
    }
}

static void store_float(perf_dtype_t dtype, void *buf, size_t i, double v)
{
    unsigned char *p = (unsigned char *)buf + i * dtypes[dtype].size;
    uint16_t h;
    float f = (float)v;

    switch (dtype) {
    case PERF_FP16:
        h = float_to_fp16(f);
        memcpy(p, &h, 2);
        break;
    case PERF_BF16:
        h = float_to_bf16(f);
        memcpy(p, &h, 2);
        break;
    case PERF_FP32: memcpy(p, &f, 4); break;
    default: memcpy(p, &v, 8); break;
    }
}

/* Store a small integer in any type (exact: see the top of the file). */
static void store_value(perf_dtype_t dtype, void *buf, size_t i, int64_t v)
{
    if (dtypes[dtype].kind == KIND_FLOAT)
        store_float(dtype, buf, i, (double)v);
    else
        store_int(dtype, buf, i, v);
}

/* ------------------------------------------------------------------------ */
/* Runs, inputs and expected values                                         */
/* ------------------------------------------------------------------------ */

typedef struct perf_coll perf_coll_t;

typedef struct perf_opts {
    const perf_coll_t *coll;
    size_t min_bytes, max_bytes, step_bytes; /* step_bytes 0: multiply by factor */
    size_t factor;
    long iters, warmup;
    int check, root, corrupt;
    perf_dtype_t dtype_list[PERF_NUM_DTYPES];
    int ndtypes;
    perf_op_t op_list[PERF_NUM_OPS];
    int nops;
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
    double busbw_sum;
    long busbw_rows;
    double wrong_total;
} perf_run_t;

/* What an element must hold: value / divisor, the division rounded as the type does. */
typedef struct perf_expect {
    int64_t value;
    int64_t divisor;
} perf_expect_t;

/* A collective: how big its buffers are, what in place means, what it computes. */
struct perf_coll {
    const char *name;
    perf_coll_kind_t kind;
    int has_op, has_root;
    /* Count argument for a row of @p bytes; at least 1. */
    size_t (*count_of)(size_t bytes, size_t elem_size, int nranks);
    /* Bytes the size column shows and algbw divides by. */
    size_t (*bytes_of)(size_t count, size_t elem_size, int nranks);
    /* Elements in this rank's send and receive buffers. */
    void (*buffers)(const perf_run_t *run, size_t count, size_t *send_p, size_t *recv_p);
    /* Element offset in recvbuf where the in-place form puts the input. */
    size_t (*in_place_offset)(const perf_run_t *run, size_t count);
    /* busbw = algbw * factor: how much each rank's link must carry. */
    double (*busbw_factor)(int nranks);
    /* What receive element @p i must hold on this rank. */
    perf_expect_t (*expected)(const perf_run_t *run, size_t count, size_t i);
};

static uint64_t mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 31)) * 0xd6e8feb86659fd93ull;
    x = (x ^ (x >> 29)) * 0xbf58476d1ce4e5b9ull;
    return x ^ (x >> 32);
}

/* Input element @p i of @p rank. Independent of the count, so a buffer filled once serves every
 * size. */
static int64_t input_value(const perf_run_t *run, int rank, size_t i)
{
    uint64_t h = mix64((uint64_t)i << 20 ^ (uint64_t)(unsigned)rank);
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
        if (dtypes[run->dtype].kind == KIND_UNSIGNED)
            return (int64_t)(h % 100);
        return (int64_t)(h % 100) - 50;
    }
}

static void fill_inputs(const perf_run_t *run, void *buf, size_t n)
{
    for (size_t i = 0; i < n; i++)
        store_value(run->dtype, buf, i, input_value(run, run->rank, i));
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

/* Does element @p i of @p buf hold what @p e says? */
static int element_ok(const perf_run_t *run, const void *buf, size_t i, perf_expect_t e)
{
    const dtype_info_t *t = &dtypes[run->dtype];
    double want, got, diff;

    if (t->kind != KIND_FLOAT) {
        /* As the type computes it: wrap the sum, then divide (truncating). */
        int64_t w = wrap_int(t, e.value);
        if (e.divisor != 1)
            w = t->kind == KIND_SIGNED ? w / e.divisor
                                       : (int64_t)((uint64_t)w / (uint64_t)e.divisor);
        return load_int(run->dtype, buf, i) == wrap_int(t, w);
    }
    got = load_float(run->dtype, buf, i);
    want = (double)e.value / (double)e.divisor;
    if (e.divisor == 1)
        return got == want;
    diff = got > want ? got - want : want - got;
    return diff <= 2 * t->epsilon * (want < 0 ? -want : want);
}

/* Make element @p i wrong on purpose (--corrupt). */
static void perturb(const perf_run_t *run, void *buf, size_t i)
{
    if (dtypes[run->dtype].kind == KIND_FLOAT)
        store_float(run->dtype, buf, i, load_float(run->dtype, buf, i) + 1.0);
    else
        store_int(run->dtype, buf, i, load_int(run->dtype, buf, i) + 1);
}

/* ---------------------------------------------------------------- allreduce */

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

static void allreduce_buffers(const perf_run_t *run, size_t count, size_t *send_p, size_t *recv_p)
{
    (void)run;
    *send_p = *recv_p = count;
}

static size_t in_place_at_start(const perf_run_t *run, size_t count)
{
    (void)run;
    (void)count;
    return 0;
}

static double allreduce_busbw(int nranks)
{
    return 2.0 * (nranks - 1) / nranks;
}

static perf_expect_t allreduce_expected(const perf_run_t *run, size_t count, size_t i)
{
    perf_expect_t e = {input_value(run, 0, i), run->op == PERF_AVG ? run->nranks : 1};
    (void)count;
    for (int r = 1; r < run->nranks; r++)
        e.value = reduce_pair(run->op, e.value, input_value(run, r, i));
    return e;
}

static const perf_coll_t colls[] = {
    {"allreduce", PERF_ALLREDUCE, 1, 0, count_per_rank, bytes_per_rank, allreduce_buffers,
     in_place_at_start, allreduce_busbw, allreduce_expected},
};

/* ------------------------------------------------------------------------ */
/* Flags                                                                    */
/* ------------------------------------------------------------------------ */

static void usage(FILE *out, const char *program)
{
    fprintf(out,
            "usage: %s COLLECTIVE [flags]\n"
            "  COLLECTIVE              allreduce\n"
            "  -b, --minbytes N        smallest size in bytes (default 8); suffixes K M G\n"
            "                          (powers of 1024); below one element means one element\n"
            "  -e, --maxbytes N        largest size (default 64M)\n"
            "  -f, --stepfactor F      multiply the size by F from row to row (default 2)\n"
            "  -i, --stepbytes N       add N bytes from row to row instead\n"
            "  -n, --iters N           timed calls per size and placement (default 20)\n"
            "  -w, --warmup_iters N    untimed calls before them (default 5)\n"
            "  -c, --check 0|1         check every result element (default 1)\n"
            "  -d, --datatype T        int8 uint8 int32 uint32 int64 uint64 fp16 bf16 fp32\n"
            "                          fp64 (also char int half float16 bfloat16 float\n"
            "                          float32 double float64), a comma list, or all\n"
            "                          (default fp32)\n"
            "  -o, --op OP             sum prod min max avg, a comma list, or all\n"
            "                          (default sum)\n"
            "  -r, --root R            root rank of rooted collectives (default 0)\n"
            "  -h, --help              this text\n"
            "      --corrupt           for testing the checker only: change one result\n"
            "                          element on the last rank before every check\n"
            "Each size runs out of place, then in place. time is the mean time of one\n"
            "call, over iterations and ranks; algbw = size / time; busbw = algbw times\n"
            "the collective's factor (allreduce: 2(n-1)/n). Exit status: 0 all right,\n"
            "1 wrong results, 2 bad flags, 3 a library call failed.\n",
            program);
}

/* "64M" -> 67108864. Returns 0 on success. */
static int parse_size(const char *text, size_t *bytes_p)
{
    char *end;
    unsigned long long v;
    unsigned shift = 0;

    errno = 0;
    if (*text == '-')
        return -1;
    v = strtoull(text, &end, 10);
    if (errno != 0 || end == text)
        return -1;
    switch (*end) {
    case 'k':
    case 'K':
        shift = 10;
        end++;
        break;
    case 'm':
    case 'M':
        shift = 20;
        end++;
        break;
    case 'g':
    case 'G':
        shift = 30;
        end++;
        break;
    default: break;
    }
    if (shift > 0 && (*end == 'i' || *end == 'I'))
        end++;
    if (*end == 'b' || *end == 'B')
        end++;
    if (*end != '\0' || v > (SIZE_MAX >> shift))
        return -1;
    *bytes_p = (size_t)v << shift;
    return 0;
}

static int parse_long(const char *text, long min, long *v_p)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || v < min)
        return -1;
    *v_p = v;
    return 0;
}

static int find_dtype(const char *name, size_t len)
{
    for (int d = 0; d < PERF_NUM_DTYPES; d++) {
        if (strlen(dtypes[d].name) == len && strncmp(name, dtypes[d].name, len) == 0)
            return d;
        for (int a = 0; a < 3 && dtypes[d].aliases[a] != NULL; a++)
            if (strlen(dtypes[d].aliases[a]) == len &&
                strncmp(name, dtypes[d].aliases[a], len) == 0)
                return d;
    }
    return -1;
}

static int find_op(const char *name, size_t len)
{
    for (int o = 0; o < PERF_NUM_OPS; o++)
        if (strlen(op_names[o]) == len && strncmp(name, op_names[o], len) == 0)
            return o;
    return -1;
}

/* A comma list of names (or "all") into @p list; returns the count or -1. */
static int parse_list(const char *text, int (*find)(const char *, size_t), int nall, int *list)
{
    int n = 0;

    if (strcmp(text, "all") == 0) {
        for (int v = 0; v < nall; v++)
            list[v] = v;
        return nall;
    }
    while (*text != '\0') {
        size_t len = strcspn(text, ",");
        int v = find(text, len);
        if (v < 0 || n == nall)
            return -1;
        list[n++] = v;
        text += len + (text[len] == ',');
    }
    return n;
}

/* Ranks other than 0 keep quiet about bad flags: every rank would say the same. */
static int quiet_rank(void)
{
    static const char *const names[] = {"TUTTI_RANK", "OMPI_COMM_WORLD_RANK", "PMI_RANK", "RANK"};
    for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++) {
        const char *v = getenv(names[k]);
        if (v != NULL)
            return strcmp(v, "0") != 0;
    }
    return 0;
}

/* Returns -1 to exit with PERF_EXIT_USAGE, 1 to exit at once with success (--help), else 0. */
static int parse_flags(int argc, char **argv, const char *program, perf_opts_t *o)
{
    enum { OPT_CORRUPT = 256 };
    static const struct option longopts[] = {
        {"minbytes", required_argument, NULL, 'b'},
        {"maxbytes", required_argument, NULL, 'e'},
        {"stepfactor", required_argument, NULL, 'f'},
        {"stepbytes", required_argument, NULL, 'i'},
        {"iters", required_argument, NULL, 'n'},
        {"warmup_iters", required_argument, NULL, 'w'},
        {"check", required_argument, NULL, 'c'},
        {"datatype", required_argument, NULL, 'd'},
        {"op", required_argument, NULL, 'o'},
        {"root", required_argument, NULL, 'r'},
        {"help", no_argument, NULL, 'h'},
        {"corrupt", no_argument, NULL, OPT_CORRUPT},
        {NULL, 0, NULL, 0},
    };
    int list[PERF_NUM_DTYPES + PERF_NUM_OPS], n, c;
    long v;
    const char *bad = NULL;
    char flag_text[96];

    memset(o, 0, sizeof(*o));
    o->min_bytes = 8;
    o->max_bytes = (size_t)64 << 20;
    o->factor = 2;
    o->iters = 20;
    o->warmup = 5;
    o->check = 1;
    o->dtype_list[0] = PERF_FP32;
    o->ndtypes = 1;
    o->op_list[0] = PERF_SUM;
    o->nops = 1;

    if (argc >= 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
        usage(stdout, program);
        return 1;
    }
    if (argc < 2 || argv[1][0] == '-') {
        bad = "name a collective first";
        goto err;
    }
    for (size_t k = 0; k < sizeof(colls) / sizeof(colls[0]); k++)
        if (strcmp(argv[1], colls[k].name) == 0)
            o->coll = &colls[k];
    if (o->coll == NULL) {
        bad = "unknown or not yet supported collective";
        goto err;
    }
    optind = 2;
    opterr = 0; /* getopt's own messages would come from every rank */
    while ((c = getopt_long(argc, argv, "b:e:f:i:n:w:c:d:o:r:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'b':
            if (parse_size(optarg, &o->min_bytes) != 0)
                bad = "-b wants a size such as 8, 4K or 1M";
            break;
        case 'e':
            if (parse_size(optarg, &o->max_bytes) != 0)
                bad = "-e wants a size such as 8, 4K or 1M";
            break;
        case 'f':
            if (parse_long(optarg, 2, &v) != 0)
                bad = "-f wants an integer >= 2";
            else
                o->factor = (size_t)v;
            break;
        case 'i':
            if (parse_size(optarg, &o->step_bytes) != 0 || o->step_bytes == 0)
                bad = "-i wants a size > 0";
            break;
        case 'n':
            if (parse_long(optarg, 1, &o->iters) != 0)
                bad = "-n wants an integer >= 1";
            break;
        case 'w':
            if (parse_long(optarg, 0, &o->warmup) != 0)
                bad = "-w wants an integer >= 0";
            break;
        case 'c':
            if (parse_long(optarg, 0, &v) != 0 || v > 1)
                bad = "-c wants 0 or 1";
            else
                o->check = (int)v;
            break;
        case 'd':
            n = parse_list(optarg, find_dtype, PERF_NUM_DTYPES, list);
            if (n <= 0)
                bad = "-d wants datatypes from the list in --help, or all";
            for (int k = 0; k < n; k++)
                o->dtype_list[k] = (perf_dtype_t)list[k];
            o->ndtypes = n > 0 ? n : o->ndtypes;
            break;
        case 'o':
            n = parse_list(optarg, find_op, PERF_NUM_OPS, list);
            if (n <= 0)
                bad = "-o wants sum, prod, min, max, avg, a comma list or all";
            for (int k = 0; k < n; k++)
                o->op_list[k] = (perf_op_t)list[k];
            o->nops = n > 0 ? n : o->nops;
            break;
        case 'r':
            if (parse_long(optarg, 0, &v) != 0 || v > 1 << 30)
                bad = "-r wants a rank";
            else
                o->root = (int)v;
            break;
        case 'h': usage(stdout, program); return 1;
        case OPT_CORRUPT: o->corrupt = 1; break;
        default:
            snprintf(flag_text, sizeof(flag_text), "%s: %s", argv[optind - 1],
                     optopt != 0 && strchr("befinwcdor", optopt) != NULL ? "missing value"
                                                                         : "unknown flag");
            bad = flag_text;
            break;
        }
        if (bad != NULL)
            goto err;
    }
    if (optind < argc)
        bad = "unexpected argument after the flags";
    else if (o->min_bytes > o->max_bytes)
        bad = "-b is larger than -e";
    if (bad == NULL)
        return 0;
err:
    if (!quiet_rank())
        fprintf(stderr, "%s: %s\n(%s --help lists the flags)\n", program, bad, program);
    return -1;
}

/* ------------------------------------------------------------------------ */
/* Measuring                                                                */
/* ------------------------------------------------------------------------ */

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* A library call failed: nothing after it can be trusted. Tell the peers and leave. */
static void fail(const perf_run_t *run, const char *what, int err)
{
    fprintf(stderr, "%s: rank %d: %s failed: %s\n", run->be->program, run->rank, what,
            run->be->error_string(err));
    fflush(stderr);
    run->be->abort(run->ctx);
    exit(PERF_EXIT_FAILED);
}

static void run_call(const perf_run_t *run, const perf_call_t *call)
{
    const perf_coll_t *coll = run->opts->coll;
    int err = run->be->run(run->ctx, call);

    if (err != 0) {
        char what[128];
        snprintf(what, sizeof(what), "%s%s of %zu %s%s%s", call->in_place ? "in-place " : "",
                 coll->name, call->count, perf_dtype_name(call->dtype), coll->has_op ? " " : "",
                 coll->has_op ? perf_op_name(call->op) : "");
        fail(run, what, err);
    }
}

/* Mean time of one call on this rank, in microseconds. */
static double time_calls(const perf_run_t *run, const perf_call_t *call)
{
    double start;
    int err;

    for (long k = 0; k < run->opts->warmup; k++)
        run_call(run, call);
    err = run->be->barrier(run->ctx);
    if (err != 0)
        fail(run, "barrier", err);
    start = now_seconds();
    for (long k = 0; k < run->opts->iters; k++)
        run_call(run, call);
    return (now_seconds() - start) * 1e6 / (double)run->opts->iters;
}

/*
 * One checked call. @p call's buffers hold the inputs already (out of
 * place: the send buffer; in place: refilled by the caller). Returns the
 * number of wrong elements and clobbered bytes on this rank.
 */
static uint64_t checked_call(const perf_run_t *run, const perf_call_t *call, size_t send_n,
                             size_t recv_n)
{
    const perf_coll_t *coll = run->opts->coll;
    size_t es = dtypes[run->dtype].size;
    uint64_t wrong = 0;

    /* Poison what the call must write (out of place) and the guard after it. */
    if (!call->in_place)
        memset(run->recv, POISON, recv_n * es);
    memset(run->recv + recv_n * es, POISON, GUARD_BYTES);
    run_call(run, call);
    if (run->opts->corrupt && run->rank == run->nranks - 1 && recv_n > 0)
        perturb(run, run->recv, recv_n / 2);

    for (size_t i = 0; i < recv_n; i++)
        wrong += !element_ok(run, run->recv, i, coll->expected(run, call->count, i));
    for (size_t b = 0; b < GUARD_BYTES; b++)
        wrong += run->recv[recv_n * es + b] != POISON;
    if (!call->in_place) {
        for (size_t i = 0; i < send_n; i++) {
            perf_expect_t e = {input_value(run, run->rank, i), 1};
            wrong += !element_ok(run, run->send, i, e);
        }
    }
    return wrong;
}

/* ------------------------------------------------------------------------ */
/* The table                                                                */
/* ------------------------------------------------------------------------ */

/* 67108864 -> "64 MiB"; sizes that are not whole KiB stay in bytes. */
static void format_size(size_t bytes, char *text, size_t len)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB"};
    int u = 0;
    while (u < 3 && bytes >= 1024 && bytes % 1024 == 0) {
        bytes /= 1024;
        u++;
    }
    snprintf(text, len, "%zu %s", bytes, units[u]);
}

static void print_header(const perf_run_t *run, const char *library)
{
    const perf_opts_t *o = run->opts;
    char types[128] = "", ops[64] = "", step[48], lo[32], hi[32];

    for (int k = 0; k < o->ndtypes; k++)
        snprintf(types + strlen(types), sizeof(types) - strlen(types), "%s%s", k ? "," : "",
                 perf_dtype_name(o->dtype_list[k]));
    for (int k = 0; k < o->nops; k++)
        snprintf(ops + strlen(ops), sizeof(ops) - strlen(ops), "%s%s", k ? "," : "",
                 perf_op_name(o->op_list[k]));
    if (o->step_bytes > 0) {
        format_size(o->step_bytes, lo, sizeof(lo));
        snprintf(step, sizeof(step), "step %s", lo);
    } else
        snprintf(step, sizeof(step), "factor %zu", o->factor);

    printf("# %s %s: %d ranks, datatype %s", run->be->program, o->coll->name, run->nranks, types);
    if (o->coll->has_op)
        printf(", op %s", ops);
    printf(", %ld iterations after %ld warm-up, check %s\n", o->iters, o->warmup,
           o->check ? "on" : "off");
    printf("# library: %s\n", library);
    format_size(o->min_bytes, lo, sizeof(lo));
    format_size(o->max_bytes, hi, sizeof(hi));
    printf("# sizes %s to %s, %s; time: mean per call over iterations and ranks;"
           " busbw = algbw * %s\n",
           lo, hi, step, o->coll->kind == PERF_ALLREDUCE ? "2(n-1)/n" : "factor");
    printf("#\n");
    /* The group labels sit over their four columns (the row prefix is 49 wide). */
    printf("#%48s%-37s%s\n", "", "  ---------- out-of-place ---------",
           "  ------------ in-place -----------");
    printf("# %10s %12s %8s %6s %5s  %10s %8s %8s %6s  %10s %8s %8s %6s\n", "size", "count", "type",
           "redop", "root", "time", "algbw", "busbw", "#wrong", "time", "algbw", "busbw", "#wrong");
    printf("# %10s %12s %8s %6s %5s  %10s %8s %8s %6s  %10s %8s %8s %6s\n", "(B)", "(elements)", "",
           "", "", "(us)", "(GB/s)", "(GB/s)", "", "(us)", "(GB/s)", "(GB/s)", "");
    fflush(stdout);
}

static void format_wrong(char *text, size_t len, int checked, double wrong)
{
    if (checked)
        snprintf(text, len, "%.0f", wrong);
    else
        snprintf(text, len, "N/A");
}

/* One size: out of place, then in place; print the row on rank 0. */
static void run_row(perf_run_t *run, size_t count)
{
    const perf_opts_t *o = run->opts;
    const perf_coll_t *coll = o->coll;
    size_t es = dtypes[run->dtype].size, send_n, recv_n, off;
    size_t bytes = coll->bytes_of(count, es, run->nranks);
    int root = coll->has_root ? o->root : -1;
    /* out-of-place time, in-place time, out-of-place wrong, in-place wrong */
    double stats[4] = {0, 0, 0, 0};
    perf_call_t call = {coll->kind, run->send, run->recv, count, run->dtype, run->op, root, 0};
    char prefix[96], w0[24], w1[24];
    int err;

    snprintf(prefix, sizeof(prefix), "  %10zu %12zu %8s %6s %5d  ", bytes, count,
             perf_dtype_name(run->dtype), coll->has_op ? perf_op_name(run->op) : "none", root);
    if (!run->be->supports(coll->kind, run->dtype, coll->has_op ? run->op : PERF_SUM)) {
        if (run->rank == 0)
            printf("%sunsupported by this library: skipped\n", prefix);
        fflush(stdout);
        return;
    }
    coll->buffers(run, count, &send_n, &recv_n);
    off = coll->in_place_offset(run, count);

    stats[0] = time_calls(run, &call);
    if (o->check)
        stats[2] = (double)checked_call(run, &call, send_n, recv_n);

    /* In place: the input moves into the receive buffer, refilled before each use. */
    call.sendbuf = run->recv + off * es;
    call.in_place = 1;
    fill_inputs(run, run->recv + off * es, send_n);
    stats[1] = time_calls(run, &call);
    if (o->check) {
        fill_inputs(run, run->recv + off * es, send_n);
        stats[3] = (double)checked_call(run, &call, send_n, recv_n);
    }

    err = run->be->sum_doubles(run->ctx, stats, 4);
    if (err != 0)
        fail(run, "summing the timings", err);
    run->wrong_total += stats[2] + stats[3];
    if (run->rank == 0) {
        double factor = coll->busbw_factor(run->nranks);
        fputs(prefix, stdout);
        for (int p = 0; p < 2; p++) {
            double us = stats[p] / run->nranks;
            double algbw = us > 0 ? (double)bytes / us * 1e-3 : 0; /* B/us = MB/s */
            run->busbw_sum += algbw * factor;
            run->busbw_rows++;
            format_wrong(p ? w1 : w0, sizeof(w0), o->check, stats[2 + p]);
            printf("%10.2f %8.3f %8.3f %6s%s", us, algbw, algbw * factor, p ? w1 : w0,
                   p ? "\n" : "  ");
        }
        fflush(stdout);
    }
}

/* Every row of one type and op. */
static void run_block(perf_run_t *run)
{
    const perf_opts_t *o = run->opts;
    size_t es = dtypes[run->dtype].size, prev = 0;

    /* Inputs do not depend on the count: fill the send buffer once, at its largest. */
    run->sum_max = 127 / run->nranks > 0 ? 127 / run->nranks : 1;
    fill_inputs(run, run->send, run->send_bytes / es);

    for (size_t bytes = o->min_bytes; bytes <= o->max_bytes;) {
        size_t count = o->coll->count_of(bytes, es, run->nranks);
        if (count != prev)
            run_row(run, count);
        prev = count;
        if (o->step_bytes > 0) {
            if (bytes > SIZE_MAX - o->step_bytes)
                break;
            bytes += o->step_bytes;
        } else {
            if (bytes > SIZE_MAX / o->factor)
                break;
            bytes = bytes > 0 ? bytes * o->factor : 1;
        }
    }
}

/* Buffers for the largest row of any type in the list, allocated once. */
static int allocate_buffers(perf_run_t *run)
{
    const perf_opts_t *o = run->opts;
    size_t send_max = 0, recv_max = 0;

    for (int k = 0; k < o->ndtypes; k++) {
        size_t es = dtypes[o->dtype_list[k]].size, s, r;
        size_t count = o->coll->count_of(o->max_bytes, es, run->nranks);
        run->dtype = o->dtype_list[k];
        o->coll->buffers(run, count, &s, &r);
        send_max = s * es > send_max ? s * es : send_max;
        recv_max = r * es > recv_max ? r * es : recv_max;
    }
    run->send_bytes = send_max;
    run->recv_bytes = recv_max;
    /* Round up to the alignment; the receive side keeps room for the guard. */
    send_max = (send_max + BUFFER_ALIGN - 1) / BUFFER_ALIGN * BUFFER_ALIGN;
    recv_max = (recv_max + GUARD_BYTES + BUFFER_ALIGN - 1) / BUFFER_ALIGN * BUFFER_ALIGN;
    if (posix_memalign((void **)&run->send, BUFFER_ALIGN, send_max) != 0)
        return -1;
    if (posix_memalign((void **)&run->recv, BUFFER_ALIGN, recv_max) != 0) {
        free(run->send);
        return -1;
    }
    /* Touch every page now, so that no timed call pays for first faults. */
    memset(run->send, 0, send_max);
    memset(run->recv, POISON, recv_max);
    return 0;
}

int perf_main(int argc, char **argv, const perf_backend_t *be)
{
    perf_opts_t opts;
    perf_run_t run;
    char library[256] = "";
    int err, status;

    if (be->size != sizeof(perf_backend_t)) {
        fprintf(stderr, "%s: backend built against another perf_common.h\n", be->program);
        return PERF_EXIT_USAGE;
    }
    status = parse_flags(argc, argv, be->program, &opts);
    if (status != 0)
        return status > 0 ? PERF_EXIT_OK : PERF_EXIT_USAGE;

    memset(&run, 0, sizeof(run));
    run.be = be;
    run.opts = &opts;
    err = be->init(&run.ctx, &run.rank, &run.nranks);
    if (err != 0) {
        fprintf(stderr, "%s: cannot join the job: %s\n", be->program, be->error_string(err));
        return PERF_EXIT_FAILED;
    }
    if (opts.coll->has_root && opts.root >= run.nranks) {
        if (run.rank == 0)
            fprintf(stderr, "%s: root %d is not a rank (0..%d)\n", be->program, opts.root,
                    run.nranks - 1);
        be->fini(run.ctx);
        return PERF_EXIT_USAGE;
    }
    if (allocate_buffers(&run) != 0) {
        fprintf(stderr, "%s: rank %d: cannot allocate buffers for %zu bytes\n", be->program,
                run.rank, opts.max_bytes);
        be->abort(run.ctx);
        return PERF_EXIT_FAILED;
    }

    if (run.rank == 0) {
        be->describe(run.ctx, library, sizeof(library));
        print_header(&run, library);
    }
    for (int d = 0; d < opts.ndtypes; d++) {
        for (int p = 0; p < (opts.coll->has_op ? opts.nops : 1); p++) {
            run.dtype = opts.dtype_list[d];
            run.op = opts.op_list[p];
            run_block(&run);
        }
    }
    if (run.rank == 0) {
        if (opts.check)
            printf("# Out of bounds values : %.0f %s\n", run.wrong_total,
                   run.wrong_total == 0 ? "OK" : "FAILED");
        else
            printf("# Out of bounds values : not checked (-c 0)\n");
        printf("# Avg bus bandwidth    : %.3f\n",
               run.busbw_rows > 0 ? run.busbw_sum / (double)run.busbw_rows : 0.0);
        printf("#\n");
        fflush(stdout);
    }

    free(run.send);
    free(run.recv);
    err = be->fini(run.ctx);
    if (err != 0) {
        fprintf(stderr, "%s: rank %d: leaving the job failed: %s\n", be->program, run.rank,
                be->error_string(err));
        return PERF_EXIT_FAILED;
    }
    return run.wrong_total > 0 ? PERF_EXIT_WRONG : PERF_EXIT_OK;
}
