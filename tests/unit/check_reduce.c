/*
 * Unit tests for src/reduce: the fp16/bf16 conversions, every kernel of
 * every kernel set this machine runs against a reference written here from
 * the definitions, agreement between the kernel sets, and dispatch.
 *
 * The references deliberately work differently from the library: integers
 * in 128-bit arithmetic, 16-bit floats decoded and rounded with double
 * arithmetic (ldexp, frexp, nearbyint) instead of bit manipulation.
 */
#include "config.h"

#include "reduce/reduce.h"

#include "tests/lib/unit.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#include <immintrin.h>
#define TEST_X86 1
#else
#define TEST_X86 0
#endif

/* ------------------------------------------------------------------------ */
/* Helpers                                                                  */
/* ------------------------------------------------------------------------ */

/*
 * ck_assert_msg() for loops over millions of values: in fork mode every
 * passing Check assertion writes a note to a pipe, which made this suite
 * spend most of its time in write(). Same report on failure.
 */
#define EXPECT(cond, ...)              \
    do {                               \
        if (!(cond))                   \
            ck_abort_msg(__VA_ARGS__); \
    } while (0)

static const char *const dt_names[TUTTI_NUM_DATATYPES] = {
    "int8", "uint8", "int32", "uint32", "int64", "uint64", "fp16", "bf16", "fp32", "fp64",
};
static const size_t dt_sizes[TUTTI_NUM_DATATYPES] = {1, 1, 4, 4, 8, 8, 2, 2, 4, 8};
static const char *const op_names[TUTTI_NUM_OPS] = {"sum", "prod", "min", "max", "avg"};

/* splitmix64: small, good enough, and the same sequence on every run. */
typedef struct rng {
    uint64_t state;
} rng_t;

static uint64_t rng_next(rng_t *g)
{
    uint64_t z = (g->state += 0x9e3779b97f4a7c15ull);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint32_t f32_bits(float f)
{
    uint32_t u;

    memcpy(&u, &f, sizeof(u));
    return u;
}

static float f32_from(uint32_t u)
{
    float f;

    memcpy(&f, &u, sizeof(f));
    return f;
}

static uint64_t f64_bits(double d)
{
    uint64_t u;

    memcpy(&u, &d, sizeof(u));
    return u;
}

static double f64_from(uint64_t u)
{
    double d;

    memcpy(&d, &u, sizeof(d));
    return d;
}

/* Element @p i of a buffer of @p size-byte elements, as bits. */
static uint64_t load_bits(const void *buf, size_t size, size_t i)
{
    const unsigned char *p = (const unsigned char *)buf + i * size;
    uint8_t u8;
    uint16_t u16;
    uint32_t u32;
    uint64_t u64;

    switch (size) {
    case 1: memcpy(&u8, p, 1); return u8;
    case 2: memcpy(&u16, p, 2); return u16;
    case 4: memcpy(&u32, p, 4); return u32;
    default: memcpy(&u64, p, 8); return u64;
    }
}

static void store_bits(void *buf, size_t size, size_t i, uint64_t v)
{
    unsigned char *p = (unsigned char *)buf + i * size;
    uint8_t u8 = (uint8_t)v;
    uint16_t u16 = (uint16_t)v;
    uint32_t u32 = (uint32_t)v;

    switch (size) {
    case 1: memcpy(p, &u8, 1); break;
    case 2: memcpy(p, &u16, 2); break;
    case 4: memcpy(p, &u32, 4); break;
    default: memcpy(p, &v, 8); break;
    }
}

#if TEST_X86
/* CPUID leaf 1, ECX bit 29 (clang before 16 lacks __builtin_cpu_supports("f16c")). */
static int cpu_has_f16c(void)
{
    unsigned int eax, ebx, ecx, edx;

    return __get_cpuid(1, &eax, &ebx, &ecx, &edx) && (ecx & (1u << 29)) != 0;
}
#endif

/* Whether the CPU and the build give us kernel set @p isa. */
static int set_available(tt_reduce_isa_t isa)
{
    return tt_reduce_kernel(isa, TUTTI_FP32, TUTTI_SUM) != NULL;
}

/* ------------------------------------------------------------------------ */
/* Reference: 16-bit float formats by arithmetic                            */
/* ------------------------------------------------------------------------ */

/* A binary floating-point format with @p man mantissa bits and exponent bias @p bias. */
typedef struct fmt {
    int man;
    int bias;
} fmt_t;

static const fmt_t fmt_fp16 = {10, 15};
static const fmt_t fmt_bf16 = {7, 127};

/*
 * Decode 16 bits of format @p f as a float: (2^man + m) * 2^(e - bias - man)
 * for normal numbers, m * 2^(1 - bias - man) for subnormal ones. A NaN
 * becomes the fp32 NaN with the same sign and payload; @p quiet sets the
 * quiet bit (F16C does that for fp16; bf16 widening is a plain shift).
 */
static float ref_decode(fmt_t f, uint16_t h, int quiet)
{
    int emax = (1 << (15 - f.man)) - 1;
    int e = (h >> f.man) & emax;
    uint32_t m = h & ((1u << f.man) - 1);
    int negative = h >> 15;
    double v;

    if (e == emax) {
        if (m == 0)
            return negative ? -INFINITY : INFINITY;
        return f32_from(((uint32_t)negative << 31) | 0x7f800000 | (m << (23 - f.man)) |
                        (quiet ? 0x400000u : 0));
    }
    if (e == 0)
        v = ldexp((double)m, 1 - f.bias - f.man);
    else
        v = ldexp((double)((1u << f.man) + m), e - f.bias - f.man);
    return (float)(negative ? -v : v);
}

/*
 * Round a float to format @p f, to nearest with ties to even: find the
 * spacing q of the format's numbers around |x|, take nearbyint(|x| / q)
 * (exact division by a power of two, default rounding mode), and encode.
 * A NaN keeps its sign and the top of its payload and is quieted.
 */
static uint16_t ref_encode(fmt_t f, float x)
{
    uint32_t u = f32_bits(x);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000);
    uint16_t inf = (uint16_t)(((1u << (15 - f.man)) - 1) << f.man);
    int emin = 1 - f.bias, emax = f.bias;
    double a = fabs((double)x), q, r;
    int e;

    if (isnan(x))
        return (uint16_t)(sign | inf | (1u << (f.man - 1)) | ((u & 0x7fffff) >> (23 - f.man)));
    /* From halfway between the largest finite number and 2^(emax+1) up. */
    if (a >= ldexp(2.0 - ldexp(1.0, -(f.man + 1)), emax))
        return sign | inf;
    frexp(a, &e); /* a = m * 2^e with 0.5 <= m < 1, so a's exponent is e - 1 */
    e = a == 0 ? emin : (e - 1 < emin ? emin : e - 1);
    q = ldexp(1.0, e - f.man);
    r = nearbyint(a / q);
    /*
     * r is in [2^man, 2^(man+1)] for normal numbers (2^(man+1) carrying into
     * the exponent) and below 2^man for subnormal ones, so one formula
     * encodes both.
     */
    return (uint16_t)(sign | (((uint32_t)(e - emin) << f.man) + (uint32_t)r));
}

/* ------------------------------------------------------------------------ */
/* Reference: the operations                                                */
/* ------------------------------------------------------------------------ */

/* Two's-complement integers of @p width bits, worked out in 128 bits. */
static uint64_t ref_int(int width, int is_signed, tutti_op_t op, uint64_t a, uint64_t b,
                        uint32_t divisor)
{
    unsigned __int128 mask = ((unsigned __int128)1 << width) - 1;
    __int128 half = (__int128)1 << (width - 1);
    __int128 x = (__int128)a, y = (__int128)b, r = 0, s;

    if (is_signed) {
        if (x >= half)
            x -= half * 2;
        if (y >= half)
            y -= half * 2;
    }
    switch (op) {
    case TUTTI_SUM: r = x + y; break;
    case TUTTI_PROD:
        /* Modulo 2^128 is modulo 2^width too. */
        r = (__int128)((unsigned __int128)x * (unsigned __int128)y & mask);
        break;
    case TUTTI_MIN: r = x < y ? x : y; break;
    case TUTTI_MAX: r = x > y ? x : y; break;
    case TUTTI_AVG:
        /* The sum wrapped to the element type, then divided truncating toward zero. */
        s = (__int128)((unsigned __int128)(x + y) & mask);
        if (is_signed && s >= half)
            s -= half * 2;
        r = s / (__int128)divisor;
        break;
    default: break;
    }
    return (uint64_t)((unsigned __int128)r & mask);
}

/*
 * Floats, from the definitions in reduce.h and tutti.h: min and max are
 * (a < b ? a : b) and (a > b ? a : b); otherwise a NaN operand a gives a,
 * else a NaN b gives b, quieted; otherwise the IEEE result.
 */
static float ref_fp32(tutti_op_t op, float a, float b, float k)
{
    if (op == TUTTI_MIN)
        return a < b ? a : b;
    if (op == TUTTI_MAX)
        return a > b ? a : b;
    if (isnan(a))
        return f32_from(f32_bits(a) | 0x400000);
    if (isnan(b))
        return f32_from(f32_bits(b) | 0x400000);
    if (op == TUTTI_SUM)
        return a + b;
    if (op == TUTTI_PROD)
        return a * b;
    return (a + b) / k;
}

static double ref_fp64(tutti_op_t op, double a, double b, double k)
{
    if (op == TUTTI_MIN)
        return a < b ? a : b;
    if (op == TUTTI_MAX)
        return a > b ? a : b;
    if (isnan(a))
        return f64_from(f64_bits(a) | 0x8000000000000ull);
    if (isnan(b))
        return f64_from(f64_bits(b) | 0x8000000000000ull);
    if (op == TUTTI_SUM)
        return a + b;
    if (op == TUTTI_PROD)
        return a * b;
    return (a + b) / k;
}

/* The expected bits of a[i] op b[i]. */
static uint64_t ref_elem(tutti_datatype_t dt, tutti_op_t op, uint64_t a, uint64_t b,
                         uint32_t divisor)
{
    switch (dt) {
    case TUTTI_INT8: return ref_int(8, 1, op, a, b, divisor);
    case TUTTI_UINT8: return ref_int(8, 0, op, a, b, divisor);
    case TUTTI_INT32: return ref_int(32, 1, op, a, b, divisor);
    case TUTTI_UINT32: return ref_int(32, 0, op, a, b, divisor);
    case TUTTI_INT64: return ref_int(64, 1, op, a, b, divisor);
    case TUTTI_UINT64: return ref_int(64, 0, op, a, b, divisor);
    case TUTTI_FP16:
        return ref_encode(fmt_fp16, ref_fp32(op, ref_decode(fmt_fp16, (uint16_t)a, 1),
                                             ref_decode(fmt_fp16, (uint16_t)b, 1), (float)divisor));
    case TUTTI_BF16:
        return ref_encode(fmt_bf16, ref_fp32(op, ref_decode(fmt_bf16, (uint16_t)a, 0),
                                             ref_decode(fmt_bf16, (uint16_t)b, 0), (float)divisor));
    case TUTTI_FP32:
        return f32_bits(ref_fp32(op, f32_from((uint32_t)a), f32_from((uint32_t)b), (float)divisor));
    case TUTTI_FP64: return f64_bits(ref_fp64(op, f64_from(a), f64_from(b), (double)divisor));
    default: return 0;
    }
}

/* ------------------------------------------------------------------------ */
/* Test data                                                                */
/* ------------------------------------------------------------------------ */

/* Values worth meeting often: zeros, infinities, NaNs of all kinds, subnormals, extremes. */
static const uint64_t specials_fp16[] = {
    0x0000, 0x8000, 0x7c00, 0xfc00, 0x7e00, 0xfe00, 0x7c01, 0xfd55, 0x7fff,
    0x0001, 0x83ff, 0x0400, 0x7bff, 0xfbff, 0x3c00, 0xbc00, 0x3c01, 0x0200,
};
static const uint64_t specials_bf16[] = {
    0x0000, 0x8000, 0x7f80, 0xff80, 0x7fc0, 0xffc0, 0x7f81, 0xffa5, 0x7fff,
    0x0001, 0x807f, 0x0080, 0x7f7f, 0xff7f, 0x3f80, 0xbf80, 0x3f81, 0x0040,
};
static const uint64_t specials_fp32[] = {
    0x00000000, 0x80000000, 0x7f800000, 0xff800000, 0x7fc00000, 0xffc00000,
    0x7f800001, 0xff812345, 0x7fd55555, 0x00000001, 0x807fffff, 0x00800000,
    0x7f7fffff, 0xff7fffff, 0x3f800000, 0xbf800000, 0x3f800001, 0x00400000,
};
static const uint64_t specials_fp64[] = {
    0x0000000000000000, 0x8000000000000000, 0x7ff0000000000000, 0xfff0000000000000,
    0x7ff8000000000000, 0xfff8000000000000, 0x7ff0000000000001, 0xfff0123456789abc,
    0x7ffaaaaaaaaaaaaa, 0x0000000000000001, 0x800fffffffffffff, 0x0010000000000000,
    0x7fefffffffffffff, 0xffefffffffffffff, 0x3ff0000000000000, 0xbff0000000000000,
};
static const uint64_t specials_int[] = {
    0,
    1,
    2,
    3,
    0x7f,
    0x80,
    0xff,
    0x7fffffff,
    0x80000000,
    0xffffffff,
    0x7fffffffffffffff,
    0x8000000000000000,
    0xffffffffffffffff,
    0xfffffffffffffffe,
};

static uint64_t special(tutti_datatype_t dt, uint64_t r)
{
    switch (dt) {
    case TUTTI_FP16: return specials_fp16[r % (sizeof(specials_fp16) / sizeof(specials_fp16[0]))];
    case TUTTI_BF16: return specials_bf16[r % (sizeof(specials_bf16) / sizeof(specials_bf16[0]))];
    case TUTTI_FP32: return specials_fp32[r % (sizeof(specials_fp32) / sizeof(specials_fp32[0]))];
    case TUTTI_FP64: return specials_fp64[r % (sizeof(specials_fp64) / sizeof(specials_fp64[0]))];
    default: return specials_int[r % (sizeof(specials_int) / sizeof(specials_int[0]))];
    }
}

/*
 * Fill a[0..n) and b[0..n) with pairs that exercise the kernels: random bit
 * patterns (so NaN, infinity and subnormals of every payload turn up),
 * special values, and b related to a (equal, negated, a few ulps away) for
 * ties in min/max, cancellation and rounding ties.
 */
static void fill_pairs(tutti_datatype_t dt, void *a, void *b, size_t n, rng_t *g)
{
    size_t size = dt_sizes[dt];
    uint64_t mask = size == 8 ? ~0ull : (1ull << (8 * size)) - 1;
    uint64_t sign = 1ull << (8 * size - 1);

    for (size_t i = 0; i < n; i++) {
        uint64_t r = rng_next(g), x, y;

        x = (r & 3) == 0 ? special(dt, r >> 8) : rng_next(g) & mask;
        switch ((r >> 2) & 7) {
        case 0: y = x; break;
        case 1: y = x ^ sign; break;
        case 2: y = x ^ ((r >> 40) & 7); break;
        case 3:
        case 4: y = special(dt, r >> 16); break;
        default: y = rng_next(g) & mask; break;
        }
        store_bits(a, size, i, x);
        store_bits(b, size, i, y);
    }
}

/* A buffer with guard bytes on both sides; data starts @p offset bytes into the usable part. */
#define GUARD 64
#define GUARD_BYTE 0xa5

typedef struct guarded {
    unsigned char *block;
    size_t total;
    unsigned char *data;
    size_t bytes;
} guarded_t;

static guarded_t guarded_alloc(size_t bytes, size_t offset)
{
    guarded_t g;

    g.total = bytes + offset + 2 * GUARD;
    g.block = malloc(g.total);
    ck_assert_ptr_nonnull(g.block);
    memset(g.block, GUARD_BYTE, g.total);
    g.data = g.block + GUARD + offset;
    g.bytes = bytes;
    return g;
}

/* True if nothing outside [data, data + bytes) was written. */
static int guarded_intact(const guarded_t *g)
{
    size_t start = (size_t)(g->data - g->block);

    for (size_t i = 0; i < g->total; i++)
        if ((i < start || i >= start + g->bytes) && g->block[i] != GUARD_BYTE)
            return 0;
    return 1;
}

/* ------------------------------------------------------------------------ */
/* Conversions                                                              */
/* ------------------------------------------------------------------------ */

/* Every fp16 value widens to the float the arithmetic decoder gives, NaNs quieted. */
START_TEST(test_fp16_to_float_all)
{
    for (uint32_t h = 0; h < 65536; h++) {
        uint32_t got = f32_bits(tt_fp16_to_float((uint16_t)h));
        uint32_t want = f32_bits(ref_decode(fmt_fp16, (uint16_t)h, 1));

        EXPECT(got == want, "fp16 %04x: got %08x, want %08x", h, got, want);
    }
    /* A few by hand, so the reference decoder is checked too. */
    ck_assert_uint_eq(f32_bits(tt_fp16_to_float(0x3c00)), 0x3f800000);
    ck_assert_uint_eq(f32_bits(tt_fp16_to_float(0xc000)), 0xc0000000);
    ck_assert_uint_eq(f32_bits(tt_fp16_to_float(0x7bff)), f32_bits(65504.0f));
    ck_assert_uint_eq(f32_bits(tt_fp16_to_float(0x0001)), f32_bits(0x1p-24f));
    ck_assert_uint_eq(f32_bits(tt_fp16_to_float(0x83ff)), f32_bits(-0x1.ff8p-15f));
    ck_assert_uint_eq(f32_bits(tt_fp16_to_float(0x8000)), 0x80000000);
    ck_assert_uint_eq(f32_bits(tt_fp16_to_float(0xfc00)), 0xff800000);
    ck_assert_uint_eq(f32_bits(tt_fp16_to_float(0x7c01)), 0x7fc02000);
    ck_assert_uint_eq(f32_bits(tt_fp16_to_float(0xfe00)), 0xffc00000);
}
END_TEST

/* fp16 -> float -> fp16 gives back every value; a NaN comes back quieted, same sign and payload. */
START_TEST(test_fp16_round_trip_all)
{
    for (uint32_t h = 0; h < 65536; h++) {
        float f = tt_fp16_to_float((uint16_t)h);
        uint16_t back = tt_float_to_fp16(f);
        int nan = (h & 0x7c00) == 0x7c00 && (h & 0x3ff) != 0;

        EXPECT(nan == !!isnan(f), "fp16 %04x: NaN-ness lost", h);
        EXPECT(back == (nan ? (h | 0x200) : h), "fp16 %04x came back as %04x", h, back);
    }
}
END_TEST

typedef struct conv_case {
    float in;
    uint16_t out;
} conv_case_t;

START_TEST(test_float_to_fp16_cases)
{
    static const conv_case_t cases[] = {
        {1.0f, 0x3c00},
        {-2.0f, 0xc000},
        {0.0f, 0x0000},
        {-0.0f, 0x8000},
        {0x1.002p0f, 0x3c00},     /* halfway between 0x3c00 and 0x3c01: to even */
        {0x1.006p0f, 0x3c02},     /* halfway between 0x3c01 and 0x3c02: to even */
        {0x1.002002p0f, 0x3c01},  /* just above halfway */
        {0x1.001ffep0f, 0x3c00},  /* just below halfway */
        {65504.0f, 0x7bff},       /* largest finite */
        {0x1.ffdffep15f, 0x7bff}, /* just below 65520 */
        {65520.0f, 0x7c00},       /* halfway to 2^16: to even, which is infinity */
        {-65520.0f, 0xfc00},
        {0x1.fffffep127f, 0x7c00},
        {-INFINITY, 0xfc00},
        {0x1p-14f, 0x0400},        /* smallest normal */
        {0x1.ffcp-15f, 0x0400},    /* halfway between largest subnormal and smallest normal */
        {0x1.ff8p-15f, 0x03ff},    /* largest subnormal */
        {0x1p-24f, 0x0001},        /* smallest subnormal */
        {0x1.8p-24f, 0x0002},      /* 1.5 units: to even */
        {0x1.4p-23f, 0x0002},      /* 2.5 units: to even */
        {0x1p-25f, 0x0000},        /* half a unit: to even, which is zero */
        {0x1.000002p-25f, 0x0001}, /* just above half a unit */
        {0x1.fffffep-26f, 0x0000}, /* just below half a unit */
        {-0x1p-25f, 0x8000},
        {0x1p-149f, 0x0000}, /* fp32 subnormal */
        {-0x1p-130f, 0x8000},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint16_t got = tt_float_to_fp16(cases[i].in);

        EXPECT(got == cases[i].out, "%a: got %04x, want %04x", (double)cases[i].in, got,
               cases[i].out);
        ck_assert_uint_eq(ref_encode(fmt_fp16, cases[i].in), cases[i].out);
    }
    /* NaNs: quiet bit set, sign and top payload bits kept. */
    ck_assert_uint_eq(tt_float_to_fp16(f32_from(0x7f800001)), 0x7e00);
    ck_assert_uint_eq(tt_float_to_fp16(f32_from(0xff800001)), 0xfe00);
    ck_assert_uint_eq(tt_float_to_fp16(f32_from(0x7fc00000)), 0x7e00);
    ck_assert_uint_eq(tt_float_to_fp16(f32_from(0x7f802000)), 0x7e01);
    ck_assert_uint_eq(tt_float_to_fp16(f32_from(0x7fa00000)), 0x7f00);
    ck_assert_uint_eq(tt_float_to_fp16(f32_from(0x7fffffff)), 0x7fff);
}
END_TEST

/*
 * Floats worth rounding to a 16-bit format: every midpoint between two
 * neighbouring finite values of the format and the floats either side of
 * it, both signs. Returns how many were written to @p out (at most 6 * 65536).
 */
static size_t rounding_edges(fmt_t f, int quiet, float *out)
{
    uint16_t inf = (uint16_t)(((1u << (15 - f.man)) - 1) << f.man);
    size_t n = 0;

    for (uint32_t h = 0; h < inf; h++) {
        double lo = ref_decode(f, (uint16_t)h, quiet), hi;
        float mid;

        /* Past the largest finite value the next neighbour is 2^(emax+1). */
        hi =
            h + 1 == inf ? ldexp(1.0, f.bias + 1) : (double)ref_decode(f, (uint16_t)(h + 1), quiet);
        mid = (float)((lo + hi) / 2);
        EXPECT((double)mid == (lo + hi) / 2, "midpoint %a not exact", (lo + hi) / 2);
        out[n++] = mid;
        out[n++] = nextafterf(mid, 0.0f);
        out[n++] = nextafterf(mid, INFINITY);
    }
    for (size_t i = 0, m = n; i < m; i++)
        out[n++] = -out[i];
    return n;
}

/*
 * The library's float -> 16-bit @p encode against the reference for format
 * @p f, on every rounding edge and a million random floats from @p seed.
 */
static void check_encoder(fmt_t f, int quiet, uint64_t seed, uint16_t (*encode)(float))
{
    float *edges = malloc(6 * 65536 * sizeof(float));
    size_t n;
    rng_t g = {seed};

    ck_assert_ptr_nonnull(edges);
    n = rounding_edges(f, quiet, edges);
    ck_assert_uint_gt(n, 6 * 30000);
    for (size_t i = 0; i < n; i++) {
        uint16_t got = encode(edges[i]), want = ref_encode(f, edges[i]);

        EXPECT(got == want, "%a: got %04x, want %04x", (double)edges[i], got, want);
    }
    for (int i = 0; i < 1000000; i++) {
        float x = f32_from((uint32_t)rng_next(&g));
        uint16_t got = encode(x), want = ref_encode(f, x);

        EXPECT(got == want, "%08x: got %04x, want %04x", f32_bits(x), got, want);
    }
    free(edges);
}

START_TEST(test_float_to_fp16_rounding)
{
    check_encoder(fmt_fp16, 1, 1, tt_float_to_fp16);
}
END_TEST

#if TEST_X86
__attribute__((target("f16c"))) static void hw_fp16_to_float8(const uint16_t *in, float *out)
{
    _mm256_storeu_ps(out, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)in)));
}

__attribute__((target("f16c"))) static void hw_float_to_fp16_8(const float *in, uint16_t *out)
{
    _mm_storeu_si128(
        (__m128i *)out,
        _mm256_cvtps_ph(_mm256_loadu_ps(in), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}
#endif

/* The software conversions agree with F16C on every fp16 and on many floats. */
START_TEST(test_fp16_matches_f16c)
{
#if TEST_X86
    float *edges;
    size_t n;
    rng_t g = {2};

    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx") || !cpu_has_f16c()) {
        printf("check_reduce: no F16C on this CPU, hardware comparison skipped\n");
        return;
    }
    for (uint32_t h = 0; h < 65536; h += 8) {
        uint16_t in[8];
        float out[8];

        for (int j = 0; j < 8; j++)
            in[j] = (uint16_t)(h + (uint32_t)j);
        hw_fp16_to_float8(in, out);
        for (int j = 0; j < 8; j++)
            EXPECT(f32_bits(out[j]) == f32_bits(tt_fp16_to_float(in[j])),
                   "fp16 %04x: F16C %08x, software %08x", in[j], f32_bits(out[j]),
                   f32_bits(tt_fp16_to_float(in[j])));
    }

    edges = malloc((6 * 65536 + 1048576) * sizeof(float));
    ck_assert_ptr_nonnull(edges);
    n = rounding_edges(fmt_fp16, 1, edges);
    for (int i = 0; i < 1048576; i++)
        edges[n++] = f32_from((uint32_t)rng_next(&g));
    n &= ~(size_t)7;
    for (size_t i = 0; i < n; i += 8) {
        uint16_t out[8];

        hw_float_to_fp16_8(edges + i, out);
        for (int j = 0; j < 8; j++)
            EXPECT(out[j] == tt_float_to_fp16(edges[i + j]), "float %08x: F16C %04x, software %04x",
                   f32_bits(edges[i + j]), out[j], tt_float_to_fp16(edges[i + j]));
    }
    free(edges);
#else
    printf("check_reduce: not x86, F16C comparison skipped\n");
#endif
}
END_TEST

/* bf16 widening is exact and keeps every bit, NaNs included. */
START_TEST(test_bf16_to_float_all)
{
    for (uint32_t h = 0; h < 65536; h++) {
        uint32_t got = f32_bits(tt_bf16_to_float((uint16_t)h));
        uint32_t want = f32_bits(ref_decode(fmt_bf16, (uint16_t)h, 0));

        EXPECT(got == want, "bf16 %04x: got %08x, want %08x", h, got, want);
        ck_assert_uint_eq(got, h << 16);
    }
    ck_assert_uint_eq(f32_bits(tt_bf16_to_float(0x3f80)), 0x3f800000);
    ck_assert_uint_eq(f32_bits(tt_bf16_to_float(0x0001)), f32_bits(0x1p-133f));
}
END_TEST

START_TEST(test_bf16_round_trip_all)
{
    for (uint32_t h = 0; h < 65536; h++) {
        float f = tt_bf16_to_float((uint16_t)h);
        uint16_t back = tt_float_to_bf16(f);
        int nan = (h & 0x7f80) == 0x7f80 && (h & 0x7f) != 0;

        EXPECT(nan == !!isnan(f), "bf16 %04x: NaN-ness lost", h);
        EXPECT(back == (nan ? (h | 0x40) : h), "bf16 %04x came back as %04x", h, back);
    }
}
END_TEST

START_TEST(test_float_to_bf16_cases)
{
    static const conv_case_t cases[] = {
        {1.0f, 0x3f80},
        {-0.0f, 0x8000},
        {0x1.01p0f, 0x3f80},       /* halfway between 0x3f80 and 0x3f81: to even */
        {0x1.03p0f, 0x3f82},       /* halfway between 0x3f81 and 0x3f82: to even */
        {0x1.010002p0f, 0x3f81},   /* just above halfway */
        {0x1.00fffep0f, 0x3f80},   /* just below halfway */
        {0x1.fep127f, 0x7f7f},     /* largest finite */
        {0x1.fefffep127f, 0x7f7f}, /* just below the overflow tie */
        {0x1.ffp127f, 0x7f80},     /* halfway to 2^128: to even, which is infinity */
        {-0x1.fffffep127f, 0xff80},
        {INFINITY, 0x7f80},
        {0x1p-126f, 0x0080},      /* smallest normal */
        {0x1.fep-127f, 0x0080},   /* halfway from the largest subnormal: to even */
        {0x1.fcp-127f, 0x007f},   /* largest subnormal */
        {0x1p-133f, 0x0001},      /* smallest subnormal */
        {0x1.8p-133f, 0x0002},    /* 1.5 units: to even */
        {0x1p-134f, 0x0000},      /* half a unit: to even, which is zero */
        {0x1.0002p-134f, 0x0001}, /* just above half a unit */
        {0x1.fffcp-135f, 0x0000}, /* just below half a unit */
        {-0x1p-149f, 0x8000},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint16_t got = tt_float_to_bf16(cases[i].in);

        EXPECT(got == cases[i].out, "%a: got %04x, want %04x", (double)cases[i].in, got,
               cases[i].out);
        ck_assert_uint_eq(ref_encode(fmt_bf16, cases[i].in), cases[i].out);
    }
    ck_assert_uint_eq(tt_float_to_bf16(f32_from(0x7f800001)), 0x7fc0);
    ck_assert_uint_eq(tt_float_to_bf16(f32_from(0xff800001)), 0xffc0);
    ck_assert_uint_eq(tt_float_to_bf16(f32_from(0x7fa00000)), 0x7fe0);
    ck_assert_uint_eq(tt_float_to_bf16(f32_from(0x7f810000)), 0x7fc1);
    ck_assert_uint_eq(tt_float_to_bf16(f32_from(0xffffffff)), 0xffff);
}
END_TEST

START_TEST(test_float_to_bf16_rounding)
{
    check_encoder(fmt_bf16, 0, 3, tt_float_to_bf16);
}
END_TEST

#if TEST_X86
__attribute__((target("avx512bf16,avx512vl,avx512f"))) static void
hw_float_to_bf16_16(const float *in, uint16_t *out)
{
    __m256bh r = _mm512_cvtneps_pbh(_mm512_loadu_ps(in));

    _mm256_storeu_si256((__m256i *)out, (__m256i)r);
}
#endif

/*
 * There is no F16C for bf16, but AVX512_BF16's vcvtneps2bf16 rounds the
 * same way except that it flushes subnormals (which is why the kernels do
 * not use it): compare wherever the input is not a subnormal.
 */
START_TEST(test_bf16_matches_avx512bf16)
{
#if TEST_X86
    float *in;
    size_t n, compared = 0;
    rng_t g = {4};

    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx512bf16")) {
        printf("check_reduce: no AVX512_BF16 on this CPU, hardware comparison skipped\n");
        return;
    }
    in = malloc((6 * 65536 + 1048576) * sizeof(float));
    ck_assert_ptr_nonnull(in);
    n = rounding_edges(fmt_bf16, 0, in);
    for (int i = 0; i < 1048576; i++)
        in[n++] = f32_from((uint32_t)rng_next(&g));
    n &= ~(size_t)15;
    for (size_t i = 0; i < n; i += 16) {
        uint16_t out[16];

        hw_float_to_bf16_16(in + i, out);
        for (int j = 0; j < 16; j++) {
            uint32_t u = f32_bits(in[i + j]);

            if ((u & 0x7f800000) == 0 && (u & 0x7fffff) != 0)
                continue; /* subnormal: the instruction flushes it */
            EXPECT(out[j] == tt_float_to_bf16(in[i + j]),
                   "float %08x: vcvtneps2bf16 %04x, software %04x", u, out[j],
                   tt_float_to_bf16(in[i + j]));
            compared++;
        }
    }
    ck_assert_uint_gt(compared, n / 2);
    free(in);
#else
    printf("check_reduce: not x86, AVX512_BF16 comparison skipped\n");
#endif
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Kernels against the reference                                            */
/* ------------------------------------------------------------------------ */

enum { ALIAS_NONE, ALIAS_DST_A, ALIAS_DST_B };

typedef struct layout {
    size_t off_a, off_b, off_d;
    int alias;
} layout_t;

static const layout_t layouts[] = {
    {0, 0, 0, ALIAS_NONE},  {1, 2, 3, ALIAS_NONE},  {3, 1, 2, ALIAS_NONE},  {2, 3, 1, ALIAS_NONE},
    {0, 0, 0, ALIAS_DST_A}, {1, 3, 0, ALIAS_DST_A}, {0, 0, 0, ALIAS_DST_B}, {3, 2, 0, ALIAS_DST_B},
};
static const size_t counts[] = {0, 1, 7, 31, 33, 1003};

/*
 * Run one kernel on fresh random data laid out as @p l and compare every
 * element with the reference; also check that nothing outside dst was
 * written and that an input that is not dst was left alone.
 */
static void check_one(tt_reduce_isa_t isa, tutti_datatype_t dt, tutti_op_t op, size_t count,
                      const layout_t *l, uint32_t divisor, rng_t *g)
{
    tt_reduce_fn_t fn = tt_reduce_kernel(isa, dt, op);
    size_t size = dt_sizes[dt], bytes = count * size;
    guarded_t a = guarded_alloc(bytes, l->off_a), b = guarded_alloc(bytes, l->off_b);
    guarded_t d = guarded_alloc(bytes, l->off_d);
    unsigned char *a0 = malloc(bytes + 1), *b0 = malloc(bytes + 1);
    void *dst = l->alias == ALIAS_DST_A ? a.data : l->alias == ALIAS_DST_B ? b.data : d.data;

    ck_assert_ptr_nonnull(fn);
    ck_assert_ptr_nonnull(a0);
    ck_assert_ptr_nonnull(b0);
    fill_pairs(dt, a.data, b.data, count, g);
    memcpy(a0, a.data, bytes);
    memcpy(b0, b.data, bytes);
    if (l->alias == ALIAS_NONE)
        memset(d.data, 0x5a, bytes);

    fn(dst, a.data, b.data, count, divisor);

    for (size_t i = 0; i < count; i++) {
        uint64_t x = load_bits(a0, size, i), y = load_bits(b0, size, i);
        uint64_t want = ref_elem(dt, op, x, y, divisor), got = load_bits(dst, size, i);

        EXPECT(got == want,
               "%s %s %s, count %zu, offsets %zu/%zu/%zu, alias %d, divisor %u: "
               "element %zu: %#llx op %#llx = %#llx, want %#llx",
               tt_reduce_isa_names[isa], dt_names[dt], op_names[op], count, l->off_a, l->off_b,
               l->off_d, l->alias, divisor, i, (unsigned long long)x, (unsigned long long)y,
               (unsigned long long)got, (unsigned long long)want);
    }
    EXPECT(guarded_intact(&a) && guarded_intact(&b) && guarded_intact(&d),
           "%s %s %s count %zu: wrote outside its buffer", tt_reduce_isa_names[isa], dt_names[dt],
           op_names[op], count);
    if (l->alias != ALIAS_DST_A)
        EXPECT(memcmp(a.data, a0, bytes) == 0, "input a changed");
    if (l->alias != ALIAS_DST_B)
        EXPECT(memcmp(b.data, b0, bytes) == 0, "input b changed");
    free(a.block);
    free(b.block);
    free(d.block);
    free(a0);
    free(b0);
}

/* Every datatype x op x count x layout x divisor, for kernel set _i. */
START_TEST(test_kernels_match_reference)
{
    tt_reduce_isa_t isa = (tt_reduce_isa_t)_i;
    rng_t g = {100 + (uint64_t)_i};

    if (!set_available(isa)) {
        printf("check_reduce: kernel set %s not available here, skipped\n",
               tt_reduce_isa_names[isa]);
        return;
    }
    for (int dt = 0; dt < TUTTI_NUM_DATATYPES; dt++)
        for (int op = 0; op < TUTTI_NUM_OPS; op++)
            for (size_t c = 0; c < sizeof(counts) / sizeof(counts[0]); c++)
                for (size_t l = 0; l < sizeof(layouts) / sizeof(layouts[0]); l++) {
                    if (op == TUTTI_AVG) {
                        check_one(isa, dt, op, counts[c], &layouts[l], 1, &g);
                        check_one(isa, dt, op, counts[c], &layouts[l], 3, &g);
                        check_one(isa, dt, op, counts[c], &layouts[l], 8, &g);
                    } else {
                        /* Other ops must ignore the divisor. */
                        check_one(isa, dt, op, counts[c], &layouts[l], 5, &g);
                    }
                }
}
END_TEST

/* count 0 touches nothing, so NULL buffers are fine. */
START_TEST(test_kernels_count_zero_null)
{
    for (int isa = TT_REDUCE_ISA_GENERIC; isa < TT_REDUCE_ISA_COUNT; isa++) {
        if (!set_available(isa))
            continue;
        for (int dt = 0; dt < TUTTI_NUM_DATATYPES; dt++)
            for (int op = 0; op < TUTTI_NUM_OPS; op++)
                tt_reduce_kernel(isa, dt, op)(NULL, NULL, NULL, 0, 1);
    }
}
END_TEST

/*
 * Run @p op on one pair of values, both through the scalar path (count 1)
 * and through the vector path (the pair repeated 300 times), in every
 * available set; every result must be @p want.
 */
static void check_pair(tutti_datatype_t dt, tutti_op_t op, uint64_t x, uint64_t y, uint32_t divisor,
                       uint64_t want)
{
    enum { n = 300 };
    size_t size = dt_sizes[dt];
    unsigned char a[n * 8], b[n * 8], d[n * 8];

    for (size_t i = 0; i < n; i++) {
        store_bits(a, size, i, x);
        store_bits(b, size, i, y);
    }
    for (int isa = TT_REDUCE_ISA_GENERIC; isa < TT_REDUCE_ISA_COUNT; isa++) {
        if (!set_available(isa))
            continue;
        for (size_t count = 1; count <= n; count += n - 1) {
            memset(d, 0, sizeof(d));
            tt_reduce_kernel(isa, dt, op)(d, a, b, count, divisor);
            for (size_t i = 0; i < count; i++) {
                uint64_t got = load_bits(d, size, i);

                EXPECT(got == want,
                       "%s %s: %#llx %s %#llx (divisor %u), element %zu of %zu: %#llx, want %#llx",
                       tt_reduce_isa_names[isa], dt_names[dt], (unsigned long long)x, op_names[op],
                       (unsigned long long)y, divisor, i, count, (unsigned long long)got,
                       (unsigned long long)want);
            }
        }
    }
}

START_TEST(test_integer_wraparound)
{
    check_pair(TUTTI_INT8, TUTTI_SUM, 0x7f, 0x01, 1, 0x80); /* 127 + 1 = -128 */
    check_pair(TUTTI_INT8, TUTTI_SUM, 0x80, 0xff, 1, 0x7f); /* -128 + -1 = 127 */
    check_pair(TUTTI_UINT8, TUTTI_SUM, 0xff, 0x02, 1, 0x01);
    check_pair(TUTTI_INT32, TUTTI_SUM, 0x7fffffff, 1, 1, 0x80000000);
    check_pair(TUTTI_UINT32, TUTTI_SUM, 0xffffffff, 0xffffffff, 1, 0xfffffffe);
    check_pair(TUTTI_INT64, TUTTI_SUM, 0x7fffffffffffffff, 1, 1, 0x8000000000000000);
    check_pair(TUTTI_UINT64, TUTTI_SUM, 0xffffffffffffffff, 1, 1, 0);
    check_pair(TUTTI_INT8, TUTTI_PROD, 16, 16, 1, 0);        /* 256 wraps to 0 */
    check_pair(TUTTI_INT8, TUTTI_PROD, 0x80, 0xff, 1, 0x80); /* -128 * -1 = -128 */
    check_pair(TUTTI_INT8, TUTTI_PROD, 0xf6, 0x0d, 1, 0x7e); /* -10 * 13 = -130 = 126 */
    check_pair(TUTTI_UINT8, TUTTI_PROD, 0xff, 0xff, 1, 0x01);
    check_pair(TUTTI_INT32, TUTTI_PROD, 0x80000000, 0xffffffff, 1, 0x80000000);
    check_pair(TUTTI_UINT32, TUTTI_PROD, 0x10000, 0x10000, 1, 0);
    check_pair(TUTTI_INT64, TUTTI_PROD, 0x8000000000000000, 0xffffffffffffffff, 1,
               0x8000000000000000);
    check_pair(TUTTI_UINT64, TUTTI_PROD, 0x100000000, 0x100000001, 1, 0x100000000);
    /* avg: the wrapped sum, then division truncating toward zero. */
    check_pair(TUTTI_INT8, TUTTI_AVG, 100, 100, 3, 0xee);   /* 200 = -56; -56/3 = -18 */
    check_pair(TUTTI_INT8, TUTTI_AVG, 0xf9, 0, 2, 0xfd);    /* -7/2 = -3 */
    check_pair(TUTTI_INT8, TUTTI_AVG, 0x9c, 0xff, 8, 0xf4); /* -101/8 = -12 */
    check_pair(TUTTI_UINT8, TUTTI_AVG, 0xff, 0x02, 8, 0);   /* 257 = 1; 1/8 = 0 */
    check_pair(TUTTI_UINT8, TUTTI_AVG, 0xff, 0x00, 8, 31);
    check_pair(TUTTI_INT32, TUTTI_AVG, 0x7fffffff, 1, 2, 0xc0000000); /* INT32_MIN / 2 */
    /* Divisors beyond INT32_MAX must not turn negative. */
    check_pair(TUTTI_INT8, TUTTI_AVG, 0xf9, 0, 0xffffffff, 0);
    check_pair(TUTTI_INT8, TUTTI_AVG, 0x7f, 0, 0xfffffffe, 0);
    check_pair(TUTTI_INT32, TUTTI_AVG, 0xfffffff9, 0, 0xffffffff, 0); /* -7 / (2^32 - 1) */
    check_pair(TUTTI_INT64, TUTTI_AVG, 0x7fffffffffffffff, 0, 0xffffffff, 0x80000000);
    check_pair(TUTTI_INT32, TUTTI_AVG, 0x80000000, 0, 0x80000000, 0xffffffff); /* -1 */
    check_pair(TUTTI_UINT32, TUTTI_AVG, 0xffffffff, 0xffffffff, 3, 0x55555554);
    check_pair(TUTTI_INT64, TUTTI_AVG, 0x8000000000000000, 0, 1, 0x8000000000000000);
    check_pair(TUTTI_INT64, TUTTI_AVG, 0xfffffffffffffff9, 0, 3, 0xfffffffffffffffe); /* -2 */
    check_pair(TUTTI_UINT64, TUTTI_AVG, 0xffffffffffffffff, 1, 3, 0);
    check_pair(TUTTI_UINT64, TUTTI_AVG, 0xfffffffffffffffe, 0, 8, 0x1fffffffffffffff);
    /* min and max compare as signed or unsigned as the type says. */
    check_pair(TUTTI_INT8, TUTTI_MIN, 0x80, 0x7f, 1, 0x80);
    check_pair(TUTTI_UINT8, TUTTI_MIN, 0x80, 0x7f, 1, 0x7f);
    check_pair(TUTTI_INT32, TUTTI_MAX, 0x80000000, 0x7fffffff, 1, 0x7fffffff);
    check_pair(TUTTI_UINT32, TUTTI_MAX, 0x80000000, 0x7fffffff, 1, 0x80000000);
    check_pair(TUTTI_INT64, TUTTI_MIN, 0xffffffffffffffff, 0, 1, 0xffffffffffffffff);
    check_pair(TUTTI_UINT64, TUTTI_MIN, 0xffffffffffffffff, 0, 1, 0);
}
END_TEST

/* NaN, infinity and signed zeros, one pair at a time, with the results spelled out. */
START_TEST(test_float_specials)
{
    const uint32_t qnan1 = 0x7fc12345, qnan2 = 0xffd54321, snan = 0x7f800abc;

    check_pair(TUTTI_FP32, TUTTI_MIN, f32_bits(0.0f), f32_bits(-0.0f), 1, f32_bits(-0.0f));
    check_pair(TUTTI_FP32, TUTTI_MIN, f32_bits(-0.0f), f32_bits(0.0f), 1, f32_bits(0.0f));
    check_pair(TUTTI_FP32, TUTTI_MAX, f32_bits(0.0f), f32_bits(-0.0f), 1, f32_bits(-0.0f));
    check_pair(TUTTI_FP32, TUTTI_MIN, qnan1, f32_bits(1.0f), 1, f32_bits(1.0f));
    check_pair(TUTTI_FP32, TUTTI_MIN, f32_bits(1.0f), snan, 1, snan); /* b as it is */
    check_pair(TUTTI_FP32, TUTTI_MAX, f32_bits(1.0f), qnan2, 1, qnan2);
    check_pair(TUTTI_FP32, TUTTI_SUM, qnan1, qnan2, 1, qnan1); /* a's NaN wins */
    check_pair(TUTTI_FP32, TUTTI_SUM, qnan2, qnan1, 1, qnan2);
    check_pair(TUTTI_FP32, TUTTI_PROD, snan, qnan2, 1, snan | 0x400000);
    check_pair(TUTTI_FP32, TUTTI_AVG, qnan2, snan, 3, qnan2);
    check_pair(TUTTI_FP32, TUTTI_SUM, f32_bits(1.0f), snan, 1, snan | 0x400000);
    {
        /*
         * inf - inf is the CPU's default NaN (negative on x86); volatile, so
         * that the compiler's own folding (clang folds to +NaN) stays out.
         */
        volatile float inf = INFINITY;
        float dflt = inf - inf;

        check_pair(TUTTI_FP32, TUTTI_SUM, f32_bits(INFINITY), f32_bits(-INFINITY), 1,
                   f32_bits(dflt));
        check_pair(TUTTI_FP16, TUTTI_SUM, 0x7c00, 0xfc00, 1, tt_float_to_fp16(dflt));
    }
    check_pair(TUTTI_FP32, TUTTI_SUM, f32_bits(-0.0f), f32_bits(-0.0f), 1, f32_bits(-0.0f));
    check_pair(TUTTI_FP32, TUTTI_SUM, f32_bits(-0.0f), f32_bits(0.0f), 1, f32_bits(0.0f));
    check_pair(TUTTI_FP32, TUTTI_SUM, 0x00000001, 0x00000001, 1, 0x00000002); /* subnormals stay */
    check_pair(TUTTI_FP32, TUTTI_AVG, f32_bits(1.0f), f32_bits(2.0f), 3, f32_bits(1.0f));
    check_pair(TUTTI_FP64, TUTTI_SUM, 0x7ff8000000000001, 0xfff8000000000002, 1,
               0x7ff8000000000001);
    check_pair(TUTTI_FP64, TUTTI_SUM, 0xfff8000000000002, 0x7ff8000000000001, 1,
               0xfff8000000000002);
    check_pair(TUTTI_FP64, TUTTI_MIN, 0x8000000000000000, 0, 1, 0);
    /* fp16: NaNs quieted with payload; sums round once; overflow to infinity. */
    check_pair(TUTTI_FP16, TUTTI_SUM, 0x7d01, 0xfd02, 1, 0x7f01);
    check_pair(TUTTI_FP16, TUTTI_MIN, 0x3c00, 0x7c01, 1, 0x7e01);
    check_pair(TUTTI_FP16, TUTTI_SUM, 0x7bff, 0x7bff, 1, 0x7c00);
    check_pair(TUTTI_FP16, TUTTI_SUM, 0x0001, 0x0001, 1, 0x0002);
    check_pair(TUTTI_FP16, TUTTI_SUM, 0x3c00, 0x1000, 1, 0x3c00); /* 1 + 2^-11: tie to even */
    check_pair(TUTTI_FP16, TUTTI_MIN, 0x0000, 0x8000, 1, 0x8000);
    /* (1 + 2) / 3 in fp32 is exactly 1. */
    check_pair(TUTTI_FP16, TUTTI_AVG, 0x3c00, 0x4000, 3, 0x3c00);
    check_pair(TUTTI_BF16, TUTTI_SUM, 0x7f81, 0xff82, 1, 0x7fc1);
    check_pair(TUTTI_BF16, TUTTI_MAX, 0x3f80, 0xff81, 1, 0xffc1);
    check_pair(TUTTI_BF16, TUTTI_SUM, 0x7f7f, 0x7f7f, 1, 0x7f80);
    check_pair(TUTTI_BF16, TUTTI_SUM, 0x0001, 0x0001, 1, 0x0002);
    check_pair(TUTTI_BF16, TUTTI_SUM, 0x3f80, 0x3b80, 1, 0x3f80); /* 1 + 2^-8: tie to even */
    check_pair(TUTTI_BF16, TUTTI_SUM, 0x3f81, 0x3b80, 1, 0x3f82);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Kernel sets agree                                                        */
/* ------------------------------------------------------------------------ */

/*
 * For each kernel set other than generic, random data (offsets, aliasing
 * and lengths that use vector bodies and scalar tails) must give the
 * generic set's bits exactly. A second pass pairs NaNs with NaNs, the case
 * where operand order would show. Run twice: as the process starts, and
 * (_i == 1) with flush-to-zero and denormals-are-zero set in MXCSR, as some
 * training frameworks do; the sets must still agree with each other.
 */
START_TEST(test_sets_agree)
{
    enum { n = 100003 };
    rng_t g = {7};
    unsigned char *a, *b, *want, *got;
    int other_sets = 0;

    if (_i == 1) {
#if TEST_X86
        float tiny = 0x1p-149f, sum;

        _mm_setcsr(_mm_getcsr() | _MM_FLUSH_ZERO_ON | _MM_DENORMALS_ZERO_ON);
        /* Make sure the mode took (valgrind, for one, ignores it). */
        tt_reduce_kernel(TT_REDUCE_ISA_GENERIC, TUTTI_FP32, TUTTI_SUM)(&sum, &tiny, &tiny, 1, 1);
        if (sum != 0.0f)
            printf("check_reduce: FTZ/DAZ not in effect here, second pass is a repeat\n");
        /* 16-bit min and max compare encodings, so a subnormal survives DAZ. */
        check_pair(TUTTI_BF16, TUTTI_MIN, 0x7ee1, 0x0040, 1, 0x0040);
        check_pair(TUTTI_FP16, TUTTI_MAX, 0x8001, 0x8002, 1, 0x8001);
#else
        printf("check_reduce: not x86, FTZ/DAZ pass skipped\n");
        return;
#endif
    }
    a = malloc(n * 8 + 8);
    b = malloc(n * 8 + 8);
    want = malloc(n * 8 + 8);
    got = malloc(n * 8 + 8);
    ck_assert(a && b && want && got);
    for (int isa = TT_REDUCE_ISA_GENERIC + 1; isa < TT_REDUCE_ISA_COUNT; isa++) {
        if (!set_available(isa))
            continue;
        other_sets++;
        for (int dt = 0; dt < TUTTI_NUM_DATATYPES; dt++) {
            size_t size = dt_sizes[dt];

            for (int op = 0; op < TUTTI_NUM_OPS; op++) {
                for (int pass = 0; pass < 2; pass++) {
                    size_t off = (size_t)(dt + op + pass) % 4, count = n - off;

                    fill_pairs(dt, a + off, b + off, count, &g);
                    if (pass == 1 && dt >= TUTTI_FP16) {
                        /* NaN with random payload and sign in every element. */
                        int man = dt == TUTTI_FP16   ? 10
                                  : dt == TUTTI_BF16 ? 7
                                  : dt == TUTTI_FP32 ? 23
                                                     : 52;
                        uint64_t expo =
                            (size == 8 ? ~0ull : (1ull << (8 * size)) - 1) >> 1 >> man << man;

                        for (size_t i = 0; i < count; i++) {
                            uint64_t r1 = rng_next(&g), r2 = rng_next(&g);
                            uint64_t pay = (1ull << man) - 1;

                            store_bits(a + off, size, i,
                                       (r1 & ~(expo | pay)) | expo | ((r1 & pay) | 1));
                            store_bits(b + off, size, i,
                                       (r2 & ~(expo | pay)) | expo | ((r2 & pay) | 2));
                        }
                    }
                    tt_reduce_kernel(TT_REDUCE_ISA_GENERIC, dt, op)(want + off, a + off, b + off,
                                                                    count, 3);
                    tt_reduce_kernel(isa, dt, op)(got + off, a + off, b + off, count, 3);
                    for (size_t i = 0; i < count; i++) {
                        uint64_t w = load_bits(want + off, size, i),
                                 h = load_bits(got + off, size, i);

                        EXPECT(
                            w == h,
                            "%s %s %s pass %d element %zu: %#llx op %#llx: generic %#llx, %s %#llx",
                            tt_reduce_isa_names[isa], dt_names[dt], op_names[op], pass, i,
                            (unsigned long long)load_bits(a + off, size, i),
                            (unsigned long long)load_bits(b + off, size, i), (unsigned long long)w,
                            tt_reduce_isa_names[isa], (unsigned long long)h);
                    }
                    /* In place, as the collectives use it. */
                    tt_reduce_kernel(isa, dt, op)(a + off, a + off, b + off, count, 3);
                    ck_assert(memcmp(a + off, want + off, count * size) == 0);
                }
            }
        }
    }
    if (other_sets == 0)
        printf("check_reduce: only the generic kernel set runs here, nothing to compare\n");
    free(a);
    free(b);
    free(want);
    free(got);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Dispatch and divide                                                      */
/* ------------------------------------------------------------------------ */

START_TEST(test_dispatch)
{
    tt_reduce_isa_t best = tt_reduce_best_isa();

    ck_assert_str_eq(tt_reduce_isa_names[TT_REDUCE_ISA_AUTO], "auto");
    ck_assert_str_eq(tt_reduce_isa_names[TT_REDUCE_ISA_GENERIC], "generic");
    ck_assert_str_eq(tt_reduce_isa_names[TT_REDUCE_ISA_AVX2], "avx2");
    ck_assert_str_eq(tt_reduce_isa_names[TT_REDUCE_ISA_AVX512], "avx512");
    ck_assert_ptr_null(tt_reduce_isa_names[TT_REDUCE_ISA_COUNT]);

    ck_assert(best > TT_REDUCE_ISA_AUTO && best < TT_REDUCE_ISA_COUNT);
    ck_assert(set_available(TT_REDUCE_ISA_GENERIC));
    ck_assert(set_available(best));
    /* best is the widest set that runs. */
    for (int isa = best + 1; isa < TT_REDUCE_ISA_COUNT; isa++)
        ck_assert(!set_available(isa));

    for (int dt = 0; dt < TUTTI_NUM_DATATYPES; dt++)
        for (int op = 0; op < TUTTI_NUM_OPS; op++) {
            ck_assert_ptr_nonnull(tt_reduce_kernel(TT_REDUCE_ISA_GENERIC, dt, op));
            ck_assert(tt_reduce_kernel(TT_REDUCE_ISA_AUTO, dt, op) ==
                      tt_reduce_kernel(best, dt, op));
            for (int isa = TT_REDUCE_ISA_GENERIC; isa < TT_REDUCE_ISA_COUNT; isa++)
                ck_assert((tt_reduce_kernel(isa, dt, op) != NULL) == set_available(isa));
        }

    ck_assert_ptr_null(tt_reduce_kernel(TT_REDUCE_ISA_GENERIC, TUTTI_NUM_DATATYPES, TUTTI_SUM));
    ck_assert_ptr_null(tt_reduce_kernel(TT_REDUCE_ISA_GENERIC, (tutti_datatype_t)-1, TUTTI_SUM));
    ck_assert_ptr_null(tt_reduce_kernel(TT_REDUCE_ISA_GENERIC, TUTTI_FP32, TUTTI_NUM_OPS));
    ck_assert_ptr_null(tt_reduce_kernel(TT_REDUCE_ISA_GENERIC, TUTTI_FP32, (tutti_op_t)-1));
    ck_assert_ptr_null(tt_reduce_kernel(TT_REDUCE_ISA_AUTO, TUTTI_NUM_DATATYPES, TUTTI_SUM));
    ck_assert_ptr_null(tt_reduce_kernel(TT_REDUCE_ISA_COUNT, TUTTI_FP32, TUTTI_SUM));
    ck_assert_ptr_null(tt_reduce_kernel((tt_reduce_isa_t)-1, TUTTI_FP32, TUTTI_SUM));

#if TEST_X86
    /* The choice follows the CPU's features (when the sets were built). */
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx2") || !cpu_has_f16c())
        ck_assert(!set_available(TT_REDUCE_ISA_AVX2));
    if (!__builtin_cpu_supports("avx512f") || !__builtin_cpu_supports("avx512bw") ||
        !__builtin_cpu_supports("avx512vl") || !cpu_has_f16c())
        ck_assert(!set_available(TT_REDUCE_ISA_AVX512));
#if defined(HAVE_REDUCE_AVX512)
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && cpu_has_f16c())
        ck_assert_int_eq(best, TT_REDUCE_ISA_AVX512);
#endif
#if defined(HAVE_REDUCE_AVX2)
    if (__builtin_cpu_supports("avx2") && cpu_has_f16c())
        ck_assert(set_available(TT_REDUCE_ISA_AVX2));
#endif
#endif
    printf("check_reduce: best kernel set here is %s\n", tt_reduce_isa_names[best]);
}
END_TEST

/* divide: x / divisor with the AVG kernels' rounding, in place or not. */
START_TEST(test_divide)
{
    static const uint32_t divisors[] = {1, 3, 8, 0xffffffffu};
    enum { n = 1003 };
    rng_t g = {11};
    unsigned char src[n * 8 + 8], junk[n * 8 + 8], dst[n * 8 + 8];

    for (int dt = 0; dt < TUTTI_NUM_DATATYPES; dt++) {
        size_t size = dt_sizes[dt];

        for (size_t k = 0; k < sizeof(divisors) / sizeof(divisors[0]); k++) {
            uint32_t div = divisors[k];

            fill_pairs(dt, src + 1, junk, n, &g);
            tt_reduce_divide(dst + 3, src + 1, n, dt, div);
            for (size_t i = 0; i < n; i++) {
                uint64_t x = load_bits(src + 1, size, i), got = load_bits(dst + 3, size, i);
                uint64_t want;

                /*
                 * Integers: avg of x and 0. Floats: not so (x + 0 turns -0
                 * into +0), so divide directly, in fp32 for 16-bit formats.
                 */
                switch (dt) {
                case TUTTI_FP32: want = f32_bits(f32_from((uint32_t)x) / (float)div); break;
                case TUTTI_FP64: want = f64_bits(f64_from(x) / (double)div); break;
                case TUTTI_FP16:
                    want = ref_encode(fmt_fp16, ref_decode(fmt_fp16, (uint16_t)x, 1) / (float)div);
                    break;
                case TUTTI_BF16:
                    want = ref_encode(fmt_bf16, ref_decode(fmt_bf16, (uint16_t)x, 0) / (float)div);
                    break;
                default: want = ref_elem(dt, TUTTI_AVG, x, 0, div); break;
                }
                EXPECT(got == want, "divide %s by %u: element %zu: %#llx -> %#llx, want %#llx",
                       dt_names[dt], div, i, (unsigned long long)x, (unsigned long long)got,
                       (unsigned long long)want);
            }
            /* In place gives the same. */
            memcpy(junk, src + 1, n * size);
            tt_reduce_divide(junk, junk, n, dt, div);
            ck_assert(memcmp(junk, dst + 3, n * size) == 0);
        }
    }
    /* Spot checks by hand. */
    {
        int8_t i8 = -7;
        uint16_t h = 0x3c00; /* fp16 1.0 */
        float f = -0.0f;

        tt_reduce_divide(&i8, &i8, 1, TUTTI_INT8, 2);
        ck_assert_int_eq(i8, -3);
        tt_reduce_divide(&h, &h, 1, TUTTI_FP16, 3);
        ck_assert_uint_eq(h, tt_float_to_fp16(1.0f / 3.0f));
        tt_reduce_divide(&f, &f, 1, TUTTI_FP32, 1);
        ck_assert_uint_eq(f32_bits(f), 0x80000000);
    }
}
END_TEST

static Suite *reduce_suite(void)
{
    Suite *s = suite_create("reduce");
    TCase *conv = tcase_create("conversions");
    TCase *kern = tcase_create("kernels");
    TCase *disp = tcase_create("dispatch");

    /* Generous: these walk whole value spaces, and run under valgrind too. */
    tcase_set_timeout(conv, 600);
    tcase_set_timeout(kern, 1200);
    tcase_set_timeout(disp, 120);

    tcase_add_test(conv, test_fp16_to_float_all);
    tcase_add_test(conv, test_fp16_round_trip_all);
    tcase_add_test(conv, test_float_to_fp16_cases);
    tcase_add_test(conv, test_float_to_fp16_rounding);
    tcase_add_test(conv, test_fp16_matches_f16c);
    tcase_add_test(conv, test_bf16_to_float_all);
    tcase_add_test(conv, test_bf16_round_trip_all);
    tcase_add_test(conv, test_float_to_bf16_cases);
    tcase_add_test(conv, test_float_to_bf16_rounding);
    tcase_add_test(conv, test_bf16_matches_avx512bf16);
    suite_add_tcase(s, conv);

    tcase_add_loop_test(kern, test_kernels_match_reference, TT_REDUCE_ISA_GENERIC,
                        TT_REDUCE_ISA_COUNT);
    tcase_add_test(kern, test_kernels_count_zero_null);
    tcase_add_test(kern, test_integer_wraparound);
    tcase_add_test(kern, test_float_specials);
    tcase_add_loop_test(kern, test_sets_agree, 0, 2);
    suite_add_tcase(s, kern);

    tcase_add_test(disp, test_dispatch);
    tcase_add_test(disp, test_divide);
    suite_add_tcase(s, disp);
    return s;
}

TT_UNIT_MAIN(reduce_suite)
