/*
 * Element types for the benchmark: names, 16-bit floats converted by hand
 * (only standard C is available), loading and storing any type, and the
 * comparison of a result element with what it must be.
 */
#include "perf_internal.h"

#include <string.h>

const dtype_info_t perf_dtypes[PERF_NUM_DTYPES] = {
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
    return (unsigned)dtype < PERF_NUM_DTYPES ? perf_dtypes[dtype].name : "?";
}

size_t perf_dtype_size(perf_dtype_t dtype)
{
    return (unsigned)dtype < PERF_NUM_DTYPES ? perf_dtypes[dtype].size : 0;
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
    const unsigned char *p = (const unsigned char *)buf + i * perf_dtypes[dtype].size;
    union {
        int8_t i8;
        uint8_t u8;
        int32_t i32;
        uint32_t u32;
        int64_t i64;
    } u;

    memcpy(&u, p, perf_dtypes[dtype].size);
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
    unsigned char *p = (unsigned char *)buf + i * perf_dtypes[dtype].size;
    int8_t i8 = (int8_t)v;
    int32_t i32 = (int32_t)v;

    /* Little and big endian alike: store through the type, not the low bytes. */
    switch (perf_dtypes[dtype].size) {
    case 1: memcpy(p, &i8, 1); break;
    case 4: memcpy(p, &i32, 4); break;
    default: memcpy(p, &v, 8); break;
    }
}

static double load_float(perf_dtype_t dtype, const void *buf, size_t i)
{
    const unsigned char *p = (const unsigned char *)buf + i * perf_dtypes[dtype].size;
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
    unsigned char *p = (unsigned char *)buf + i * perf_dtypes[dtype].size;
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

void perf_store_value(perf_dtype_t dtype, void *buf, size_t i, int64_t v)
{
    if (perf_dtypes[dtype].kind == KIND_FLOAT)
        store_float(dtype, buf, i, (double)v);
    else
        store_int(dtype, buf, i, v);
}

int perf_element_ok(perf_dtype_t dtype, const void *buf, size_t i, perf_expect_t e)
{
    const dtype_info_t *t = &perf_dtypes[dtype];
    double want, got, diff;

    if (t->kind != KIND_FLOAT) {
        /* As the type computes it: wrap the sum, then divide (truncating). */
        int64_t w = wrap_int(t, e.value);
        if (e.divisor != 1)
            w = t->kind == KIND_SIGNED ? w / e.divisor
                                       : (int64_t)((uint64_t)w / (uint64_t)e.divisor);
        return load_int(dtype, buf, i) == wrap_int(t, w);
    }
    got = load_float(dtype, buf, i);
    want = (double)e.value / (double)e.divisor;
    if (e.divisor == 1)
        return got == want;
    diff = got > want ? got - want : want - got;
    return diff <= 2 * t->epsilon * (want < 0 ? -want : want);
}

void perf_perturb(perf_dtype_t dtype, void *buf, size_t i)
{
    if (perf_dtypes[dtype].kind == KIND_FLOAT)
        store_float(dtype, buf, i, load_float(dtype, buf, i) + 1.0);
    else
        store_int(dtype, buf, i, load_int(dtype, buf, i) + 1);
}

int perf_find_dtype(const char *name, size_t len)
{
    for (int d = 0; d < PERF_NUM_DTYPES; d++) {
        if (strlen(perf_dtypes[d].name) == len && strncmp(name, perf_dtypes[d].name, len) == 0)
            return d;
        for (int a = 0; a < 3 && perf_dtypes[d].aliases[a] != NULL; a++)
            if (strlen(perf_dtypes[d].aliases[a]) == len &&
                strncmp(name, perf_dtypes[d].aliases[a], len) == 0)
                return d;
    }
    return -1;
}

int perf_find_op(const char *name, size_t len)
{
    for (int o = 0; o < PERF_NUM_OPS; o++)
        if (strlen(op_names[o]) == len && strncmp(name, op_names[o], len) == 0)
            return o;
    return -1;
}
