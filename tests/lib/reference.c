/* Reference results for collective tests; see reference.h. */
#include "tests/lib/reference.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* ------------------------------------------------------------------------ */
/* Types                                                                    */
/* ------------------------------------------------------------------------ */

static const char *const datatype_names[TUTTI_NUM_DATATYPES] = {
    "int8", "uint8", "int32", "uint32", "int64", "uint64", "fp16", "bf16", "fp32", "fp64",
};
static const size_t datatype_sizes[TUTTI_NUM_DATATYPES] = {1, 1, 4, 4, 8, 8, 2, 2, 4, 8};
static const char *const op_names[TUTTI_NUM_OPS] = {"sum", "prod", "min", "max", "avg"};

/* A binary floating-point format: mantissa bits (without the implicit one) and exponent bits. */
typedef struct float_format {
    int mant_bits, exp_bits;
} float_format_t;

static const float_format_t formats[TUTTI_NUM_DATATYPES] = {
    [TUTTI_FP16] = {10, 5},
    [TUTTI_BF16] = {7, 8},
    [TUTTI_FP32] = {23, 8},
    [TUTTI_FP64] = {52, 11},
};

static int is_float(tutti_datatype_t t)
{
    return t == TUTTI_FP16 || t == TUTTI_BF16 || t == TUTTI_FP32 || t == TUTTI_FP64;
}

static int is_signed(tutti_datatype_t t)
{
    return t == TUTTI_INT8 || t == TUTTI_INT32 || t == TUTTI_INT64;
}

size_t tt_ref_size(tutti_datatype_t datatype)
{
    return (unsigned)datatype < TUTTI_NUM_DATATYPES ? datatype_sizes[datatype] : 0;
}

const char *tt_ref_datatype_name(tutti_datatype_t datatype)
{
    return (unsigned)datatype < TUTTI_NUM_DATATYPES ? datatype_names[datatype] : "?";
}

const char *tt_ref_op_name(tutti_op_t op)
{
    return (unsigned)op < TUTTI_NUM_OPS ? op_names[op] : "?";
}

static uint64_t width_mask(tutti_datatype_t t)
{
    size_t bits = 8 * datatype_sizes[t];
    return bits == 64 ? ~(uint64_t)0 : ((uint64_t)1 << bits) - 1;
}

static int64_t sign_extend(uint64_t bits, tutti_datatype_t t)
{
    size_t width = 8 * datatype_sizes[t];
    uint64_t sign = (uint64_t)1 << (width - 1);

    bits &= width_mask(t);
    /* (bits ^ sign) - sign, done in unsigned arithmetic, then read as two's complement. */
    uint64_t u = (bits ^ sign) - sign;
    int64_t s;
    memcpy(&s, &u, sizeof(s));
    return s;
}

/* ------------------------------------------------------------------------ */
/* fp16 and bf16, by arithmetic on doubles rather than on bits              */
/* ------------------------------------------------------------------------ */

static double decode_format(uint64_t bits, const float_format_t *f)
{
    int bias = (1 << (f->exp_bits - 1)) - 1;
    uint64_t man = bits & (((uint64_t)1 << f->mant_bits) - 1);
    unsigned exp = (unsigned)(bits >> f->mant_bits) & ((1u << f->exp_bits) - 1);
    int negative = (int)((bits >> (f->mant_bits + f->exp_bits)) & 1);
    double v;

    if (exp == (1u << f->exp_bits) - 1)
        v = man != 0 ? NAN : INFINITY;
    else if (exp == 0)
        v = ldexp((double)man, 1 - bias - f->mant_bits);
    else
        v = ldexp((double)(man | (uint64_t)1 << f->mant_bits), (int)exp - bias - f->mant_bits);
    return negative ? -v : v;
}

/*
 * Round @p v to the nearest value of format @p f, ties to even (nearbyint in
 * the default rounding mode). Overflow gives infinity; a NaN becomes the
 * canonical quiet NaN.
 */
static uint64_t encode_format(double v, const float_format_t *f)
{
    int bias = (1 << (f->exp_bits - 1)) - 1, exp;
    uint64_t sign = signbit(v) ? (uint64_t)1 << (f->mant_bits + f->exp_bits) : 0;
    uint64_t exp_all = (((uint64_t)1 << f->exp_bits) - 1) << f->mant_bits;
    uint64_t one = (uint64_t)1 << f->mant_bits, man;
    double a = fabs(v);

    if (isnan(v))
        return exp_all | one >> 1;
    if (isinf(a))
        return sign | exp_all;
    if (a == 0)
        return sign;
    frexp(a, &exp);
    exp -= 1; /* a = 1.xxx * 2^exp */
    if (exp < 1 - bias)
        exp = 1 - bias; /* subnormal: the scale of the smallest normal */
    man = (uint64_t)nearbyint(ldexp(a, f->mant_bits - exp));
    if (man == 2 * one) { /* rounded up into the next binade */
        man = one;
        exp++;
    }
    if (man < one)
        return sign | man; /* subnormal */
    if (exp > bias)
        return sign | exp_all;
    return sign | (uint64_t)(exp + bias) << f->mant_bits | (man - one);
}

/* Decoding tables: fp16 and bf16 are decoded millions of times per case. */
static double fp16_table[65536], bf16_table[65536];
static int tables_ready;

static void tables_init(void)
{
    if (tables_ready)
        return;
    for (uint32_t h = 0; h < 65536; h++) {
        fp16_table[h] = decode_format(h, &formats[TUTTI_FP16]);
        bf16_table[h] = decode_format(h, &formats[TUTTI_BF16]);
    }
    tables_ready = 1;
}

double tt_ref_fp16_decode(uint16_t h)
{
    return decode_format(h, &formats[TUTTI_FP16]);
}

uint16_t tt_ref_fp16_encode(double v)
{
    return (uint16_t)encode_format(v, &formats[TUTTI_FP16]);
}

double tt_ref_bf16_decode(uint16_t h)
{
    return decode_format(h, &formats[TUTTI_BF16]);
}

uint16_t tt_ref_bf16_encode(double v)
{
    return (uint16_t)encode_format(v, &formats[TUTTI_BF16]);
}

double tt_ref_decode(tutti_datatype_t t, uint64_t bits)
{
    switch (t) {
    case TUTTI_FP16: tables_init(); return fp16_table[bits & 0xffff];
    case TUTTI_BF16: tables_init(); return bf16_table[bits & 0xffff];
    case TUTTI_FP32: {
        uint32_t u = (uint32_t)bits;
        float f;
        memcpy(&f, &u, sizeof(f));
        return f;
    }
    case TUTTI_FP64: {
        double d;
        memcpy(&d, &bits, sizeof(d));
        return d;
    }
    default: return NAN;
    }
}

static uint64_t encode(tutti_datatype_t t, double v)
{
    switch (t) {
    case TUTTI_FP32: {
        float f = (float)v;
        uint32_t u;
        memcpy(&u, &f, sizeof(u));
        return u;
    }
    case TUTTI_FP64: {
        uint64_t u;
        memcpy(&u, &v, sizeof(u));
        return u;
    }
    default: return encode_format(v, &formats[t]);
    }
}

/* ------------------------------------------------------------------------ */
/* Inputs                                                                   */
/* ------------------------------------------------------------------------ */

uint64_t tt_ref_mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static uint64_t input_hash(const tt_ref_case_t *c, int rank, uint64_t index)
{
    return tt_ref_mix(c->seed ^ (uint64_t)(rank + 1) * 0xd1b54a32d192ed03ull ^
                      index * 0x8cb92ba72f3d8dd7ull);
}

/* Bits of a float with the given sign, biased exponent field and mantissa. */
static uint64_t float_bits(const float_format_t *f, uint64_t sign, uint64_t exp, uint64_t man)
{
    return (sign & 1) << (f->mant_bits + f->exp_bits) | exp << f->mant_bits |
           (man & (((uint64_t)1 << f->mant_bits) - 1));
}

/* Random bits that are neither a NaN nor -0, for min and max. */
static uint64_t ordered_bits(const float_format_t *f, uint64_t h)
{
    uint64_t width = (uint64_t)(1 + f->exp_bits + f->mant_bits);
    uint64_t bits = width == 64 ? h : h & (((uint64_t)1 << width) - 1);
    uint64_t exp_all = (((uint64_t)1 << f->exp_bits) - 1) << f->mant_bits;
    uint64_t man_mask = ((uint64_t)1 << f->mant_bits) - 1;

    if ((bits & exp_all) == exp_all && (bits & man_mask) != 0)
        bits &= ~((uint64_t)1 << f->mant_bits); /* a NaN becomes a large finite value */
    if (bits == (uint64_t)1 << (width - 1))
        bits = 0;
    return bits;
}

static uint64_t special_bits(const float_format_t *f, uint64_t h)
{
    uint64_t bias = ((uint64_t)1 << (f->exp_bits - 1)) - 1;
    uint64_t exp_all = ((uint64_t)1 << f->exp_bits) - 1;
    uint64_t quiet = (uint64_t)1 << (f->mant_bits - 1);
    uint64_t sign = h >> 63, man = h >> 8;

    switch (h & 7) {
    case 0: return float_bits(f, sign, exp_all, man | quiet);             /* quiet NaN */
    case 1: return float_bits(f, sign, exp_all, (man & (quiet - 1)) | 1); /* signalling */
    case 2: return float_bits(f, sign, 0, 0);                             /* +-0 */
    case 3: return float_bits(f, sign, exp_all, 0);                       /* +-inf */
    case 4: return float_bits(f, sign, 0, man | 1);                       /* subnormal */
    default: return float_bits(f, sign, bias - 2 + ((h >> 4) & 3), man);  /* [1/4, 4) */
    }
}

/* A float input: its bits and its value. */
static uint64_t float_input(const tt_ref_case_t *c, uint64_t h, double *value_p)
{
    static const double prod_small[4] = {1, 2, -1, 0.5};
    static const double prod_wide[6] = {0.25, 0.5, 1, 1.5, 2, 3};
    const float_format_t *f = &formats[c->datatype];
    uint64_t bias = ((uint64_t)1 << (f->exp_bits - 1)) - 1, bits;
    double v;

    if (!c->reducing || c->inputs == TT_REF_SPECIAL) {
        bits = c->reducing ? special_bits(f, h) : h & width_mask(c->datatype);
        if (value_p != NULL)
            *value_p = tt_ref_decode(c->datatype, bits);
        return bits;
    }
    if (c->op == TUTTI_MIN || c->op == TUTTI_MAX) {
        bits = ordered_bits(f, h);
        if (value_p != NULL)
            *value_p = tt_ref_decode(c->datatype, bits);
        return bits;
    }
    if (c->inputs == TT_REF_ROUNDING) {
        /* sum, avg: magnitudes in [2^-12, 1); prod: in [1/2, 2). Random mantissas. */
        uint64_t exp = c->op == TUTTI_PROD ? bias - 1 + ((h >> 1) & 1) : bias - 1 - (h >> 1) % 12;
        bits = float_bits(f, h, exp, h >> 8);
        if (value_p != NULL)
            *value_p = tt_ref_decode(c->datatype, bits);
        return bits;
    }
    if (c->op == TUTTI_PROD) {
        if (c->datatype == TUTTI_FP16 || c->datatype == TUTTI_BF16)
            v = prod_small[h & 3];
        else
            v = (h & 1 ? -1 : 1) * prod_wide[(h >> 1) % 6];
    } else {
        /*
         * sum, avg: k/4 with |k| < 2^(p-4) for p significand bits, so that
         * any partial sum of up to 8 inputs stays below 2^(p-1) units of
         * 1/4: exact in any order.
         */
        int b = f->mant_bits - 2;
        int64_t k = (int64_t)(h & (((uint64_t)1 << b) - 1)) - ((int64_t)1 << (b - 1));
        v = (double)k * 0.25;
    }
    if (value_p != NULL)
        *value_p = v;
    /* Callers that only want the value skip the (slow) encoding. */
    return value_p != NULL ? 0 : encode(c->datatype, v);
}

static uint64_t int_input(const tt_ref_case_t *c, uint64_t h)
{
    /* Products of random numbers soon end in zeros; keep most factors odd. */
    if (c->reducing && c->op == TUTTI_PROD && (h >> 60) != 0)
        h |= 1;
    return h & width_mask(c->datatype);
}

uint64_t tt_ref_input(const tt_ref_case_t *c, int rank, uint64_t index)
{
    uint64_t h = input_hash(c, rank, index);

    if (is_float(c->datatype))
        return float_input(c, h, NULL);
    return int_input(c, h);
}

static void store(tutti_datatype_t t, uint64_t bits, void *dst)
{
    switch (datatype_sizes[t]) {
    case 1: {
        uint8_t v = (uint8_t)bits;
        memcpy(dst, &v, 1);
        break;
    }
    case 2: {
        uint16_t v = (uint16_t)bits;
        memcpy(dst, &v, 2);
        break;
    }
    case 4: {
        uint32_t v = (uint32_t)bits;
        memcpy(dst, &v, 4);
        break;
    }
    default: memcpy(dst, &bits, 8); break;
    }
}

uint64_t tt_ref_load(tutti_datatype_t t, const void *p)
{
    switch (datatype_sizes[t]) {
    case 1: {
        uint8_t v;
        memcpy(&v, p, 1);
        return v;
    }
    case 2: {
        uint16_t v;
        memcpy(&v, p, 2);
        return v;
    }
    case 4: {
        uint32_t v;
        memcpy(&v, p, 4);
        return v;
    }
    default: {
        uint64_t v;
        memcpy(&v, p, 8);
        return v;
    }
    }
}

void tt_ref_fill(const tt_ref_case_t *c, int rank, uint64_t first, uint64_t count, void *dst)
{
    size_t size = datatype_sizes[c->datatype];
    unsigned char *d = dst;

    for (uint64_t i = 0; i < count; i++)
        store(c->datatype, tt_ref_input(c, rank, first + i), d + i * size);
}

/* ------------------------------------------------------------------------ */
/* Expected results                                                         */
/* ------------------------------------------------------------------------ */

static void expect_int(const tt_ref_case_t *c, uint64_t index, tt_ref_value_t *want)
{
    tutti_datatype_t t = c->datatype;
    uint64_t mask = width_mask(t), acc = 0;
    int sgn = is_signed(t);

    for (int r = 0; r < c->nranks; r++) {
        uint64_t x = tt_ref_input(c, r, index);
        if (r == 0) {
            acc = x;
            continue;
        }
        switch (c->op) {
        case TUTTI_SUM:
        case TUTTI_AVG: acc = (acc + x) & mask; break;
        case TUTTI_PROD: acc = (acc * x) & mask; break;
        case TUTTI_MIN:
            if (sgn ? sign_extend(x, t) < sign_extend(acc, t) : x < acc)
                acc = x;
            break;
        case TUTTI_MAX:
            if (sgn ? sign_extend(x, t) > sign_extend(acc, t) : x > acc)
                acc = x;
            break;
        default: break;
        }
    }
    if (c->op == TUTTI_AVG) {
        /* The wrapped sum, read in the type, divided with truncation toward zero. */
        if (sgn)
            acc = (uint64_t)(sign_extend(acc, t) / (int64_t)c->nranks) & mask;
        else
            acc = acc / (uint64_t)c->nranks;
    }
    want->bits = acc;
    want->value = 0;
    want->magnitude = 0;
}

static void expect_float(const tt_ref_case_t *c, uint64_t index, tt_ref_value_t *want)
{
    double acc = 0, magnitude = 0;

    for (int r = 0; r < c->nranks; r++) {
        double x;
        float_input(c, input_hash(c, r, index), &x);
        magnitude += fabs(x);
        if (r == 0) {
            acc = x;
            continue;
        }
        switch (c->op) {
        case TUTTI_SUM:
        case TUTTI_AVG: acc += x; break;
        case TUTTI_PROD: acc *= x; break;
        case TUTTI_MIN: acc = x < acc ? x : acc; break;
        case TUTTI_MAX: acc = x > acc ? x : acc; break;
        default: break;
        }
    }
    if (c->op == TUTTI_AVG)
        acc /= c->nranks;
    if (c->op == TUTTI_PROD)
        magnitude = fabs(acc);
    want->bits = 0;
    want->value = acc;
    want->magnitude = magnitude;
}

void tt_ref_expect(const tt_ref_case_t *c, uint64_t index, tt_ref_value_t *want)
{
    if (is_float(c->datatype))
        expect_float(c, index, want);
    else
        expect_int(c, index, want);
}

/*
 * Tolerances. With p significand bits (11 fp16, 8 bf16, 24 fp32, 53 fp64)
 * and u = 2^-p (half an ulp, relative):
 * - TT_REF_EXACT, sum/prod/min/max: 0. Every partial result is exact.
 * - TT_REF_EXACT, avg: 2u |expected| (one ulp): the sum is exact, the one
 *   division rounds (fp16/bf16 divide in fp32 and round again to 16 bits,
 *   still within one ulp of the 16-bit format).
 * - TT_REF_ROUNDING: each of the at most n-1 combining steps rounds once
 *   (fp16/bf16 partial results are rounded to 16 bits between ranks), and
 *   the double reference rounds too, so sum and avg allow
 *   2(n+1) u sum|x_i| (/n for avg, plus 2u |expected| for the division)
 *   and prod allows 2(n+1) u |expected|, plus n times the smallest
 *   subnormal for results that land in the subnormal range.
 * For fp16 and bf16 the relative bounds are about 1e-3 and 8e-3 per step;
 * fp32 1.2e-7; fp64 2.2e-16.
 */
static double tolerance(const tt_ref_case_t *c, const tt_ref_value_t *want)
{
    const float_format_t *f = &formats[c->datatype];
    int bias = (1 << (f->exp_bits - 1)) - 1;
    double u = ldexp(1.0, -(f->mant_bits + 1)), n = c->nranks;
    double tiny = ldexp(1.0, 1 - bias - f->mant_bits);

    if (c->inputs == TT_REF_EXACT)
        return c->op == TUTTI_AVG ? 2 * u * fabs(want->value) : 0;
    switch (c->op) {
    case TUTTI_SUM: return 2 * (n + 1) * u * want->magnitude + n * tiny;
    case TUTTI_AVG:
        return 2 * (n + 1) * u * want->magnitude / n + 2 * u * fabs(want->value) + n * tiny;
    case TUTTI_PROD: return 2 * (n + 1) * u * want->magnitude + n * tiny;
    default: return 0;
    }
}

void tt_ref_describe(tutti_datatype_t t, uint64_t bits, char *out, size_t out_len)
{
    int hex_digits = (int)(2 * datatype_sizes[t]);

    if (is_float(t))
        snprintf(out, out_len, "%.17g (0x%0*llx)", tt_ref_decode(t, bits), hex_digits,
                 (unsigned long long)bits);
    else if (is_signed(t))
        snprintf(out, out_len, "%lld (0x%0*llx)", (long long)sign_extend(bits, t), hex_digits,
                 (unsigned long long)bits);
    else
        snprintf(out, out_len, "%llu (0x%0*llx)", (unsigned long long)bits, hex_digits,
                 (unsigned long long)bits);
}

int tt_ref_matches(const tt_ref_case_t *c, const void *got, const tt_ref_value_t *want, char *why,
                   size_t why_len)
{
    uint64_t bits = tt_ref_load(c->datatype, got);
    char got_text[80];

    if (!is_float(c->datatype)) {
        char want_text[80];
        if (bits == want->bits)
            return 1;
        tt_ref_describe(c->datatype, bits, got_text, sizeof(got_text));
        tt_ref_describe(c->datatype, want->bits, want_text, sizeof(want_text));
        snprintf(why, why_len, "got %s, expected %s", got_text, want_text);
        return 0;
    }
    double value = tt_ref_decode(c->datatype, bits), tol = tolerance(c, want);
    if (value == want->value || fabs(value - want->value) <= tol)
        return 1;
    tt_ref_describe(c->datatype, bits, got_text, sizeof(got_text));
    snprintf(why, why_len, "got %s, expected %.17g (tolerance %.3g)", got_text, want->value, tol);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Hash                                                                     */
/* ------------------------------------------------------------------------ */

uint64_t tt_ref_hash(const void *p, size_t len)
{
    const unsigned char *b = p;
    uint64_t h = 0x6a09e667f3bcc909ull ^ len, w;
    size_t i = 0;

    for (; i + 8 <= len; i += 8) {
        memcpy(&w, b + i, 8);
        h = (h ^ w) * 0x9fb21c651e98df25ull;
        h ^= h >> 32;
    }
    for (; i < len; i++)
        h = (h ^ b[i]) * 0x100000001b3ull;
    h = tt_ref_mix(h);
    return h != 0 ? h : 1;
}
