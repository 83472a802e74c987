/*
 * The reduction kernels: dst[i] = a[i] op b[i] for every datatype and op.
 *
 * This file is compiled once per kernel set, with TT_REDUCE_SET naming the
 * set (generic, avx2 or avx512) and the build adding that set's -m flags.
 * Each compilation defines one table, tt_reduce_table_<set>; everything else
 * is static, so the copies do not clash.
 *
 * Integer, fp32 and fp64 kernels are plain C that the compiler vectorises
 * for whatever the flags allow. fp16 and bf16 kernels convert to fp32 and
 * back; the avx2 and avx512 sets do that with explicit vector code, and all
 * sets use the scalar conversions of half.h for the rest.
 *
 * Every set must give bitwise the same result as every other for every
 * input, because ranks on different CPUs combine each other's partial
 * results. Element-wise IEEE arithmetic is the same in scalar and vector
 * form (the build passes -ffp-contract=off, so no FMA contraction); the
 * places where it could differ (NaN payloads, min/max of NaN and zeros,
 * conversions) are pinned down below.
 */
#include "config.h"

#include "reduce/half.h"
#include "reduce/kernels.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifndef TT_REDUCE_SET
#error "compile kernels.c with -DTT_REDUCE_SET=generic, avx2 or avx512"
#endif

#define TT_CAT_(a, b) a##b
#define TT_CAT(a, b) TT_CAT_(a, b)

/* Turn the set's name into a number the preprocessor can test. */
#define TT_SET_generic 1
#define TT_SET_avx2 2
#define TT_SET_avx512 3
#define TT_SET TT_CAT(TT_SET_, TT_REDUCE_SET)

#if TT_SET == TT_SET_avx512
#if !defined(__AVX512F__) || !defined(__AVX512BW__) || !defined(__AVX512VL__) || \
    !defined(__F16C__)
#error "the avx512 kernel set needs -mavx512f -mavx512bw -mavx512vl -mf16c"
#endif
#include <immintrin.h>
#define TT_VEC_LEN 16 /* fp16/bf16 elements per vector step */
#elif TT_SET == TT_SET_avx2
#if !defined(__AVX2__) || !defined(__F16C__)
#error "the avx2 kernel set needs -mavx2 -mf16c"
#endif
#include <immintrin.h>
#define TT_VEC_LEN 8
#elif TT_SET != TT_SET_generic
#error "TT_REDUCE_SET must be generic, avx2 or avx512"
#endif

/*
 * "The iterations of the next loop do not depend on each other": spelled
 * per compiler (GCC's ivdep, clang's assume_safety).
 */
#if defined(__clang__)
#define TT_IVDEP _Pragma("clang loop vectorize(assume_safety)")
#elif defined(__GNUC__)
#define TT_IVDEP _Pragma("GCC ivdep")
#else
#define TT_IVDEP
#endif

/*
 * Bytes per inner loop. The inner loop has a constant trip count that is a
 * multiple of any vector width, which is what GCC's -O2 vectoriser ("very
 * cheap" cost model) requires before it vectorises a loop.
 */
#define TT_BLOCK_BYTES 256

/* ------------------------------------------------------------------------ */
/* Element operations                                                       */
/* ------------------------------------------------------------------------ */

/*
 * Integers: sum and product in the unsigned type W (at least as wide as
 * int, so no promotion to signed int can overflow), which wraps. The
 * conversion back to a signed T keeps the low bits (GCC defines it so).
 * Average: the wrapped sum, as T, divided in Q, which holds both any T and
 * any divisor, so the quotient truncates toward zero and cannot overflow.
 * @p d is the divisor; it must be at least 1.
 */
#define TT_INT_ELEM_OPS(name, T, W, Q)                                                 \
    static inline T elem_##name##_sum(T x, T y, uint32_t d)                            \
    {                                                                                  \
        (void)d;                                                                       \
        return (T)((W)x + (W)y);                                                       \
    }                                                                                  \
    static inline T elem_##name##_prod(T x, T y, uint32_t d)                           \
    {                                                                                  \
        (void)d;                                                                       \
        return (T)((W)x * (W)y);                                                       \
    }                                                                                  \
    static inline T elem_##name##_min(T x, T y, uint32_t d)                            \
    {                                                                                  \
        (void)d;                                                                       \
        return x < y ? x : y;                                                          \
    }                                                                                  \
    static inline T elem_##name##_max(T x, T y, uint32_t d)                            \
    {                                                                                  \
        (void)d;                                                                       \
        return x > y ? x : y;                                                          \
    }                                                                                  \
    static inline T elem_##name##_avg(T x, T y, uint32_t d)                            \
    {                                                                                  \
        return (T)((Q)(T)((W)x + (W)y) / (Q)d);                                        \
    }

TT_INT_ELEM_OPS(int8, int8_t, uint32_t, int64_t)
TT_INT_ELEM_OPS(uint8, uint8_t, uint32_t, uint32_t)
TT_INT_ELEM_OPS(int32, int32_t, uint32_t, int64_t)
TT_INT_ELEM_OPS(uint32, uint32_t, uint32_t, uint32_t)
TT_INT_ELEM_OPS(int64, int64_t, uint64_t, int64_t)
TT_INT_ELEM_OPS(uint64, uint64_t, uint64_t, uint64_t)

/*
 * Floats. x86 gives a NaN result the payload of the first NaN operand, but
 * the compiler treats + and * as commutative and does swap the operands
 * (differently in vector and scalar code), so a + b with two NaNs would
 * give a's payload here and b's there. Replacing b by a when a is NaN
 * makes the order irrelevant: a NaN in a always wins, else a NaN in b,
 * quieted either way. Selecting an input keeps the loop vectorisable
 * (a conditional *operation* would not be, since it could trap).
 * min and max are exactly (a < b ? a : b) and (a > b ? a : b): with a NaN
 * they return b, and of two zeros b as well.
 * @p k is the divisor converted to T, used by avg only.
 */
#define TT_FLOAT_ELEM_OPS(name, T)                                                     \
    static inline T elem_##name##_sum(T x, T y, T k)                                   \
    {                                                                                  \
        (void)k;                                                                       \
        y = x != x ? x : y;                                                            \
        return x + y;                                                                  \
    }                                                                                  \
    static inline T elem_##name##_prod(T x, T y, T k)                                  \
    {                                                                                  \
        (void)k;                                                                       \
        y = x != x ? x : y;                                                            \
        return x * y;                                                                  \
    }                                                                                  \
    static inline T elem_##name##_min(T x, T y, T k)                                   \
    {                                                                                  \
        (void)k;                                                                       \
        return x < y ? x : y;                                                          \
    }                                                                                  \
    static inline T elem_##name##_max(T x, T y, T k)                                   \
    {                                                                                  \
        (void)k;                                                                       \
        return x > y ? x : y;                                                          \
    }                                                                                  \
    static inline T elem_##name##_avg(T x, T y, T k)                                   \
    {                                                                                  \
        y = x != x ? x : y;                                                            \
        return (x + y) / k;                                                            \
    }

TT_FLOAT_ELEM_OPS(fp32, float)
TT_FLOAT_ELEM_OPS(fp64, double)

/* ------------------------------------------------------------------------ */
/* Kernels on plain C types                                                 */
/* ------------------------------------------------------------------------ */

/*
 * Define kernel @p name applying elem_@p name to elements of type T; K is
 * the type of the per-call constant handed to the element operation, made
 * from the divisor by @p kinit.
 *
 * The buffers are reached through an unaligned, may_alias copy of T, so any
 * byte address is legal. TT_IVDEP tells the vectoriser that iterations do
 * not depend on each other, which holds because dst is either separate
 * from a and b or exactly one of them (element i is read before it is
 * written and never read again); without it GCC would want a run-time
 * overlap check, which the -O2 cost model refuses.
 */
#define TT_DEFINE_KERNEL(name, T, K, kinit)                                            \
    static void name(void *dst, const void *a, const void *b, size_t count,             \
                     uint32_t divisor)                                                  \
    {                                                                                  \
        typedef T unaligned_t __attribute__((aligned(1), may_alias));                  \
        enum { block = TT_BLOCK_BYTES / sizeof(T) };                                   \
        unaligned_t *d = dst;                                                          \
        const unaligned_t *x = a, *y = b;                                              \
        const K k = kinit;                                                             \
        size_t i = 0;                                                                  \
                                                                                       \
        for (; count - i >= block; i += block) {                                       \
            TT_IVDEP for (size_t j = 0; j < block; j++)                                \
                d[i + j] = elem_##name(x[i + j], y[i + j], k);                         \
        }                                                                              \
        for (; i < count; i++)                                                         \
            d[i] = elem_##name(x[i], y[i], k);                                         \
    }

#define TT_DEFINE_KERNELS(type, T, K, kinit)                                           \
    TT_DEFINE_KERNEL(type##_sum, T, K, kinit)                                           \
    TT_DEFINE_KERNEL(type##_prod, T, K, kinit)                                          \
    TT_DEFINE_KERNEL(type##_min, T, K, kinit)                                           \
    TT_DEFINE_KERNEL(type##_max, T, K, kinit)                                           \
    TT_DEFINE_KERNEL(type##_avg, T, K, kinit)

TT_DEFINE_KERNELS(int8, int8_t, uint32_t, divisor)
TT_DEFINE_KERNELS(uint8, uint8_t, uint32_t, divisor)
TT_DEFINE_KERNELS(int32, int32_t, uint32_t, divisor)
TT_DEFINE_KERNELS(uint32, uint32_t, uint32_t, divisor)
TT_DEFINE_KERNELS(int64, int64_t, uint32_t, divisor)
TT_DEFINE_KERNELS(uint64, uint64_t, uint32_t, divisor)
TT_DEFINE_KERNELS(fp32, float, float, (float)divisor)
TT_DEFINE_KERNELS(fp64, double, double, (double)divisor)

/* ------------------------------------------------------------------------ */
/* fp16 and bf16                                                            */
/* ------------------------------------------------------------------------ */

/*
 * The vector code below must match the scalar path bit for bit: the same
 * fp32 operation (NaN rule, min/max rule, division by the same fp32
 * divisor) between the same conversions. F16C's conversions are the
 * reference that half.h copies; bf16 has no acceptable instruction, so the
 * vector code repeats half.h's integer steps.
 */
#if TT_SET == TT_SET_avx512

#define TT_RNE (_MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)

typedef __m512 vec_t;

static inline vec_t vec_set1(float k)
{
    return _mm512_set1_ps(k);
}

/* y, with a's NaN lanes taken from x: see TT_FLOAT_ELEM_OPS. */
static inline vec_t vec_nan_from_x(vec_t x, vec_t y)
{
    return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q), y, x);
}

/* x < y ? x : y per lane, written out so that no operand order is implied. */
static inline vec_t vec_min(vec_t x, vec_t y, vec_t k)
{
    (void)k;
    return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, y, _CMP_LT_OQ), y, x);
}

static inline vec_t vec_max(vec_t x, vec_t y, vec_t k)
{
    (void)k;
    return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, y, _CMP_GT_OQ), y, x);
}

static inline vec_t vec_sum(vec_t x, vec_t y, vec_t k)
{
    (void)k;
    return _mm512_add_ps(x, vec_nan_from_x(x, y));
}

static inline vec_t vec_prod(vec_t x, vec_t y, vec_t k)
{
    (void)k;
    return _mm512_mul_ps(x, vec_nan_from_x(x, y));
}

static inline vec_t vec_avg(vec_t x, vec_t y, vec_t k)
{
    return _mm512_div_ps(_mm512_add_ps(x, vec_nan_from_x(x, y)), k);
}

static inline vec_t vec_load_fp16(const unsigned char *p)
{
    return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p));
}

static inline void vec_store_fp16(unsigned char *p, vec_t v)
{
    _mm256_storeu_si256((__m256i *)p, _mm512_cvtps_ph(v, TT_RNE));
}

static inline vec_t vec_load_bf16(const unsigned char *p)
{
    __m512i w = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)p));

    return _mm512_castsi512_ps(_mm512_slli_epi32(w, 16));
}

/* tt_float_to_bf16_inline() on 16 lanes. */
static inline void vec_store_bf16(unsigned char *p, vec_t v)
{
    __m512i u = _mm512_castps_si512(v);
    __m512i hi = _mm512_srli_epi32(u, 16);
    __m512i odd = _mm512_and_si512(hi, _mm512_set1_epi32(1));
    __m512i r = _mm512_add_epi32(u, _mm512_add_epi32(odd, _mm512_set1_epi32(0x7fff)));
    __m512i nan = _mm512_or_si512(hi, _mm512_set1_epi32(0x40));

    r = _mm512_srli_epi32(r, 16);
    r = _mm512_mask_blend_epi32(_mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q), r, nan);
    _mm256_storeu_si256((__m256i *)p, _mm512_cvtepi32_epi16(r));
}

#elif TT_SET == TT_SET_avx2

#define TT_RNE (_MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)

typedef __m256 vec_t;

static inline vec_t vec_set1(float k)
{
    return _mm256_set1_ps(k);
}

/* y, with a's NaN lanes taken from x: see TT_FLOAT_ELEM_OPS. */
static inline vec_t vec_nan_from_x(vec_t x, vec_t y)
{
    return _mm256_blendv_ps(y, x, _mm256_cmp_ps(x, x, _CMP_UNORD_Q));
}

/* x < y ? x : y per lane, written out so that no operand order is implied. */
static inline vec_t vec_min(vec_t x, vec_t y, vec_t k)
{
    (void)k;
    return _mm256_blendv_ps(y, x, _mm256_cmp_ps(x, y, _CMP_LT_OQ));
}

static inline vec_t vec_max(vec_t x, vec_t y, vec_t k)
{
    (void)k;
    return _mm256_blendv_ps(y, x, _mm256_cmp_ps(x, y, _CMP_GT_OQ));
}

static inline vec_t vec_sum(vec_t x, vec_t y, vec_t k)
{
    (void)k;
    return _mm256_add_ps(x, vec_nan_from_x(x, y));
}

static inline vec_t vec_prod(vec_t x, vec_t y, vec_t k)
{
    (void)k;
    return _mm256_mul_ps(x, vec_nan_from_x(x, y));
}

static inline vec_t vec_avg(vec_t x, vec_t y, vec_t k)
{
    return _mm256_div_ps(_mm256_add_ps(x, vec_nan_from_x(x, y)), k);
}

static inline vec_t vec_load_fp16(const unsigned char *p)
{
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
}

static inline void vec_store_fp16(unsigned char *p, vec_t v)
{
    _mm_storeu_si128((__m128i *)p, _mm256_cvtps_ph(v, TT_RNE));
}

static inline vec_t vec_load_bf16(const unsigned char *p)
{
    __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p));

    return _mm256_castsi256_ps(_mm256_slli_epi32(w, 16));
}

/* tt_float_to_bf16_inline() on 8 lanes. */
static inline void vec_store_bf16(unsigned char *p, vec_t v)
{
    __m256i u = _mm256_castps_si256(v);
    __m256i hi = _mm256_srli_epi32(u, 16);
    __m256i odd = _mm256_and_si256(hi, _mm256_set1_epi32(1));
    __m256i r = _mm256_add_epi32(u, _mm256_add_epi32(odd, _mm256_set1_epi32(0x7fff)));
    __m256i nan = _mm256_or_si256(hi, _mm256_set1_epi32(0x40));
    __m256i is_nan = _mm256_castps_si256(_mm256_cmp_ps(v, v, _CMP_UNORD_Q));

    r = _mm256_blendv_epi8(_mm256_srli_epi32(r, 16), nan, is_nan);
    /* Every lane is at most 0xffff, so the saturating pack only narrows. */
    _mm_storeu_si128((__m128i *)p,
                     _mm_packus_epi32(_mm256_castsi256_si128(r), _mm256_extracti128_si256(r, 1)));
}

#endif

/*
 * Define kernel fmt_op for a 16-bit format: widen, apply the fp32 element
 * operation, round once. Vector steps first where the set has them, then
 * the scalar path for the rest (and for everything in the generic set).
 */
#if defined(TT_VEC_LEN)
#define TT_HALF_VECTOR_LOOP(fmt, op)                                                   \
    const vec_t kv = vec_set1(k);                                                      \
    for (; count - i >= TT_VEC_LEN; i += TT_VEC_LEN)                                   \
        vec_store_##fmt(d + 2 * i,                                                     \
                        vec_##op(vec_load_##fmt(x + 2 * i), vec_load_##fmt(y + 2 * i), kv));
#else
#define TT_HALF_VECTOR_LOOP(fmt, op)
#endif

#define TT_DEFINE_HALF_KERNEL(fmt, op)                                                 \
    static void fmt##_##op(void *dst, const void *a, const void *b, size_t count,       \
                           uint32_t divisor)                                            \
    {                                                                                  \
        unsigned char *d = dst;                                                        \
        const unsigned char *x = a, *y = b;                                            \
        const float k = (float)divisor;                                                \
        size_t i = 0;                                                                  \
                                                                                       \
        TT_HALF_VECTOR_LOOP(fmt, op)                                                   \
        for (; i < count; i++) {                                                       \
            uint16_t p, q, r;                                                          \
                                                                                       \
            memcpy(&p, x + 2 * i, 2);                                                  \
            memcpy(&q, y + 2 * i, 2);                                                  \
            r = tt_float_to_##fmt##_inline(elem_fp32_##op(tt_##fmt##_to_float_inline(p), \
                                                          tt_##fmt##_to_float_inline(q), \
                                                          k));                         \
            memcpy(d + 2 * i, &r, 2);                                                  \
        }                                                                              \
    }

#define TT_DEFINE_HALF_KERNELS(fmt)                                                    \
    TT_DEFINE_HALF_KERNEL(fmt, sum)                                                    \
    TT_DEFINE_HALF_KERNEL(fmt, prod)                                                   \
    TT_DEFINE_HALF_KERNEL(fmt, min)                                                    \
    TT_DEFINE_HALF_KERNEL(fmt, max)                                                    \
    TT_DEFINE_HALF_KERNEL(fmt, avg)

TT_DEFINE_HALF_KERNELS(fp16)
TT_DEFINE_HALF_KERNELS(bf16)

/* ------------------------------------------------------------------------ */
/* The table                                                                */
/* ------------------------------------------------------------------------ */

#define TT_ROW(type)                                                                   \
    {                                                                                  \
        [TUTTI_SUM] = type##_sum, [TUTTI_PROD] = type##_prod, [TUTTI_MIN] = type##_min, \
        [TUTTI_MAX] = type##_max, [TUTTI_AVG] = type##_avg,                            \
    }

const tt_reduce_table_t TT_CAT(tt_reduce_table_, TT_REDUCE_SET) = {
    [TUTTI_INT8] = TT_ROW(int8),   [TUTTI_UINT8] = TT_ROW(uint8),
    [TUTTI_INT32] = TT_ROW(int32), [TUTTI_UINT32] = TT_ROW(uint32),
    [TUTTI_INT64] = TT_ROW(int64), [TUTTI_UINT64] = TT_ROW(uint64),
    [TUTTI_FP16] = TT_ROW(fp16),   [TUTTI_BF16] = TT_ROW(bf16),
    [TUTTI_FP32] = TT_ROW(fp32),   [TUTTI_FP64] = TT_ROW(fp64),
};
