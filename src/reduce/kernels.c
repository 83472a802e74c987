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
 * back (min and max compare their encodings instead): the avx2 and avx512
 * sets with explicit vector code, and all sets with half.h's conversions
 * for the elements left over (the whole buffer in the generic set).
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
#if !defined(__AVX512F__) || !defined(__AVX512BW__) || !defined(__AVX512VL__) || !defined(__F16C__)
#error "the avx512 kernel set needs -mavx512f -mavx512bw -mavx512vl -mf16c"
#endif
#include <immintrin.h>
#elif TT_SET == TT_SET_avx2
#if !defined(__AVX2__) || !defined(__F16C__)
#error "the avx2 kernel set needs -mavx2 -mf16c"
#endif
#include <immintrin.h>
#elif TT_SET != TT_SET_generic
#error "TT_REDUCE_SET must be generic, avx2 or avx512"
#endif

/*
 * "The iterations of the next loop do not depend on each other", for GCC.
 * clang has no quiet equivalent (its assume_safety also demands that the
 * loop vectorise and warns when it cannot), and it does not need one: it
 * vectorises at -O2 with a run-time overlap check.
 */
#if defined(__GNUC__) && !defined(__clang__)
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
 * conversion back to a signed T keeps the low bits (GCC and clang define
 * it so).
 * Average: the wrapped sum, as T, divided in Q, which holds both any T and
 * any divisor, so the quotient truncates toward zero and cannot overflow.
 * @p d is the divisor; it must be at least 1.
 */
#define TT_INT_ELEM_OPS(name, T, W, Q)                       \
    static inline T elem_##name##_sum(T x, T y, uint32_t d)  \
    {                                                        \
        (void)d;                                             \
        return (T)((W)x + (W)y);                             \
    }                                                        \
    static inline T elem_##name##_prod(T x, T y, uint32_t d) \
    {                                                        \
        (void)d;                                             \
        return (T)((W)x * (W)y);                             \
    }                                                        \
    static inline T elem_##name##_min(T x, T y, uint32_t d)  \
    {                                                        \
        (void)d;                                             \
        return x < y ? x : y;                                \
    }                                                        \
    static inline T elem_##name##_max(T x, T y, uint32_t d)  \
    {                                                        \
        (void)d;                                             \
        return x > y ? x : y;                                \
    }                                                        \
    static inline T elem_##name##_avg(T x, T y, uint32_t d)  \
    {                                                        \
        return (T)((Q)(T)((W)x + (W)y) / (Q)d);              \
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
#define TT_FLOAT_ELEM_OPS(name, T)                    \
    static inline T elem_##name##_sum(T x, T y, T k)  \
    {                                                 \
        (void)k;                                      \
        y = x != x ? x : y;                           \
        return x + y;                                 \
    }                                                 \
    static inline T elem_##name##_prod(T x, T y, T k) \
    {                                                 \
        (void)k;                                      \
        y = x != x ? x : y;                           \
        return x * y;                                 \
    }                                                 \
    static inline T elem_##name##_min(T x, T y, T k)  \
    {                                                 \
        (void)k;                                      \
        return x < y ? x : y;                         \
    }                                                 \
    static inline T elem_##name##_max(T x, T y, T k)  \
    {                                                 \
        (void)k;                                      \
        return x > y ? x : y;                         \
    }                                                 \
    static inline T elem_##name##_avg(T x, T y, T k)  \
    {                                                 \
        y = x != x ? x : y;                           \
        return (x + y) / k;                           \
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
#define TT_DEFINE_KERNEL(name, T, K, kinit)                                                   \
    static void name(void *dst, const void *a, const void *b, size_t count, uint32_t divisor) \
    {                                                                                         \
        typedef T unaligned_t __attribute__((aligned(1), may_alias));                         \
        enum { block = TT_BLOCK_BYTES / sizeof(T) };                                          \
        unaligned_t *d = dst;                                                                 \
        const unaligned_t *x = a, *y = b;                                                     \
        const K k = kinit;                                                                    \
        size_t i = 0;                                                                         \
                                                                                              \
        for (; count - i >= block; i += block) {                                              \
            TT_IVDEP for (size_t j = 0; j < block; j++) d[i + j] =                            \
                elem_##name(x[i + j], y[i + j], k);                                           \
        }                                                                                     \
        for (; i < count; i++)                                                                \
            d[i] = elem_##name(x[i], y[i], k);                                                \
    }

#define TT_DEFINE_KERNELS(type, T, K, kinit)   \
    TT_DEFINE_KERNEL(type##_sum, T, K, kinit)  \
    TT_DEFINE_KERNEL(type##_prod, T, K, kinit) \
    TT_DEFINE_KERNEL(type##_min, T, K, kinit)  \
    TT_DEFINE_KERNEL(type##_max, T, K, kinit)  \
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
 * Sum, product and average of one element: widen both, apply the fp32
 * operation, round once.
 */
#define TT_HALF_ELEM_ARITH(fmt, op)                                                           \
    static inline uint16_t elem_##fmt##_##op(uint16_t p, uint16_t q, float k)                 \
    {                                                                                         \
        return tt_float_to_##fmt##_inline(                                                    \
            elem_fp32_##op(tt_##fmt##_to_float_inline(p), tt_##fmt##_to_float_inline(q), k)); \
    }

TT_HALF_ELEM_ARITH(fp16, sum)
TT_HALF_ELEM_ARITH(fp16, prod)
TT_HALF_ELEM_ARITH(fp16, avg)
TT_HALF_ELEM_ARITH(bf16, sum)
TT_HALF_ELEM_ARITH(bf16, prod)
TT_HALF_ELEM_ARITH(bf16, avg)

/*
 * Min and max compare the 16-bit encodings as integers instead of widening:
 * the same answer as (a < b ? a : b) on the exact fp32 values, the chosen
 * operand coming back unchanged except that a NaN is quieted, as the round
 * trip through fp32 would. Widening and using fp32 compares would not do:
 * with MXCSR's denormals-are-zero set, MINPS returns a subnormal operand
 * as zero while a compare-and-select returns its bits, and compilers turn
 * one into the other freely, so kernel sets disagreed under DAZ.
 *
 * A sign-magnitude encoding orders like the integer key +magnitude or
 * -magnitude (both zeros get 0); a NaN (magnitude above the infinity
 * pattern @p inf) is unordered, so the answer is then b.
 */
static inline uint16_t half_order(uint16_t a, uint16_t b, int inf, int quiet, int want_min)
{
    int ma = a & 0x7fff, mb = b & 0x7fff;
    int ka = a & 0x8000 ? -ma : ma, kb = b & 0x8000 ? -mb : mb;
    int pick_a = ma <= inf && mb <= inf && (want_min ? ka < kb : ka > kb);
    uint16_t r = pick_a ? a : b;

    return (r & 0x7fff) > inf ? (uint16_t)(r | quiet) : r;
}

#define TT_FP16_INF 0x7c00
#define TT_FP16_QUIET 0x0200
#define TT_BF16_INF 0x7f80
#define TT_BF16_QUIET 0x0040

#define TT_HALF_ELEM_ORDER(fmt, op, FMT, want_min)                            \
    static inline uint16_t elem_##fmt##_##op(uint16_t p, uint16_t q, float k) \
    {                                                                         \
        (void)k;                                                              \
        return half_order(p, q, TT_##FMT##_INF, TT_##FMT##_QUIET, want_min);  \
    }

TT_HALF_ELEM_ORDER(fp16, min, FP16, 1)
TT_HALF_ELEM_ORDER(fp16, max, FP16, 0)
TT_HALF_ELEM_ORDER(bf16, min, BF16, 1)
TT_HALF_ELEM_ORDER(bf16, max, BF16, 0)

/*
 * The vector code below must match the element functions bit for bit: the
 * same fp32 operation (NaN rule, division by the same fp32 divisor) between
 * the same conversions, and the same integer min/max. F16C's conversions
 * are the reference that half.h copies; bf16 has no acceptable instruction,
 * so the vector code repeats half.h's integer steps.
 *
 * bf16 needs no shuffles: a 32-bit lane holds two bf16 values, and the
 * even one shifted up, or the odd one masked, is already its fp32 value.
 * Both halves go through the operation as separate vectors and are put
 * back together the same way, so element order never changes.
 */
#if TT_SET == TT_SET_avx512

#define TT_RNE (_MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#define TT_VEC_LEN 16 /* fp32 lanes */

typedef __m512 vec_t;
typedef __m512i vec_int_t;

static inline vec_t vec_set1(float k)
{
    return _mm512_set1_ps(k);
}

/* y, with a's NaN lanes taken from x: see TT_FLOAT_ELEM_OPS. */
static inline vec_t vec_nan_from_x(vec_t x, vec_t y)
{
    return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q), y, x);
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

static inline vec_int_t vec_load_int(const unsigned char *p)
{
    return _mm512_loadu_si512((const void *)p);
}

static inline void vec_store_int(unsigned char *p, vec_int_t v)
{
    _mm512_storeu_si512((void *)p, v);
}

/* TT_VEC_LEN fp16 values. */
static inline vec_t vec_load_fp16(const unsigned char *p)
{
    return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p));
}

static inline void vec_store_fp16(unsigned char *p, vec_t v)
{
    _mm256_storeu_si256((__m256i *)p, _mm512_cvtps_ph(v, TT_RNE));
}

/* 2 * TT_VEC_LEN bf16 values, as the fp32 values of the even and the odd ones. */
static inline void vec_load_bf16(const unsigned char *p, vec_t *even, vec_t *odd)
{
    vec_int_t w = vec_load_int(p);

    *even = _mm512_castsi512_ps(_mm512_slli_epi32(w, 16));
    *odd = _mm512_castsi512_ps(_mm512_and_si512(w, _mm512_set1_epi32((int)0xffff0000)));
}

/* tt_float_to_bf16_inline() per lane, result in the low 16 bits. */
static inline vec_int_t vec_round_bf16(vec_t v)
{
    vec_int_t u = _mm512_castps_si512(v);
    vec_int_t hi = _mm512_srli_epi32(u, 16);
    vec_int_t odd = _mm512_and_si512(hi, _mm512_set1_epi32(1));
    vec_int_t r = _mm512_add_epi32(u, _mm512_add_epi32(odd, _mm512_set1_epi32(0x7fff)));
    vec_int_t nan = _mm512_or_si512(hi, _mm512_set1_epi32(0x40));

    r = _mm512_srli_epi32(r, 16);
    return _mm512_mask_blend_epi32(_mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q), r, nan);
}

static inline void vec_store_bf16(unsigned char *p, vec_t even, vec_t odd)
{
    vec_store_int(
        p, _mm512_or_si512(vec_round_bf16(even), _mm512_slli_epi32(vec_round_bf16(odd), 16)));
}

/* half_order() on 2 * TT_VEC_LEN 16-bit lanes. */
static inline vec_int_t vec_order16(vec_int_t a, vec_int_t b, int inf, int quiet, int want_min)
{
    const vec_int_t abs = _mm512_set1_epi16(0x7fff), vinf = _mm512_set1_epi16((short)inf);
    vec_int_t ma = _mm512_and_si512(a, abs), mb = _mm512_and_si512(b, abs);
    vec_int_t sa = _mm512_srai_epi16(a, 15), sb = _mm512_srai_epi16(b, 15);
    vec_int_t ka = _mm512_sub_epi16(_mm512_xor_si512(ma, sa), sa);
    vec_int_t kb = _mm512_sub_epi16(_mm512_xor_si512(mb, sb), sb);
    __mmask32 ordered = _mm512_cmple_epi16_mask(ma, vinf) & _mm512_cmple_epi16_mask(mb, vinf);
    __mmask32 pick_a =
        ordered & (want_min ? _mm512_cmplt_epi16_mask(ka, kb) : _mm512_cmpgt_epi16_mask(ka, kb));
    vec_int_t r = _mm512_mask_blend_epi16(pick_a, b, a);
    __mmask32 nan = _mm512_cmpgt_epi16_mask(_mm512_and_si512(r, abs), vinf);

    return _mm512_mask_blend_epi16(nan, r, _mm512_or_si512(r, _mm512_set1_epi16((short)quiet)));
}

#elif TT_SET == TT_SET_avx2

#define TT_RNE (_MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#define TT_VEC_LEN 8 /* fp32 lanes */

typedef __m256 vec_t;
typedef __m256i vec_int_t;

static inline vec_t vec_set1(float k)
{
    return _mm256_set1_ps(k);
}

/* y, with a's NaN lanes taken from x: see TT_FLOAT_ELEM_OPS. */
static inline vec_t vec_nan_from_x(vec_t x, vec_t y)
{
    return _mm256_blendv_ps(y, x, _mm256_cmp_ps(x, x, _CMP_UNORD_Q));
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

static inline vec_int_t vec_load_int(const unsigned char *p)
{
    return _mm256_loadu_si256((const __m256i *)p);
}

static inline void vec_store_int(unsigned char *p, vec_int_t v)
{
    _mm256_storeu_si256((__m256i *)p, v);
}

/* TT_VEC_LEN fp16 values. */
static inline vec_t vec_load_fp16(const unsigned char *p)
{
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
}

static inline void vec_store_fp16(unsigned char *p, vec_t v)
{
    _mm_storeu_si128((__m128i *)p, _mm256_cvtps_ph(v, TT_RNE));
}

/* 2 * TT_VEC_LEN bf16 values, as the fp32 values of the even and the odd ones. */
static inline void vec_load_bf16(const unsigned char *p, vec_t *even, vec_t *odd)
{
    vec_int_t w = vec_load_int(p);

    *even = _mm256_castsi256_ps(_mm256_slli_epi32(w, 16));
    *odd = _mm256_castsi256_ps(_mm256_and_si256(w, _mm256_set1_epi32((int)0xffff0000)));
}

/* tt_float_to_bf16_inline() per lane, result in the low 16 bits. */
static inline vec_int_t vec_round_bf16(vec_t v)
{
    vec_int_t u = _mm256_castps_si256(v);
    vec_int_t hi = _mm256_srli_epi32(u, 16);
    vec_int_t odd = _mm256_and_si256(hi, _mm256_set1_epi32(1));
    vec_int_t r = _mm256_add_epi32(u, _mm256_add_epi32(odd, _mm256_set1_epi32(0x7fff)));
    vec_int_t nan = _mm256_or_si256(hi, _mm256_set1_epi32(0x40));
    vec_int_t is_nan = _mm256_castps_si256(_mm256_cmp_ps(v, v, _CMP_UNORD_Q));

    return _mm256_blendv_epi8(_mm256_srli_epi32(r, 16), nan, is_nan);
}

static inline void vec_store_bf16(unsigned char *p, vec_t even, vec_t odd)
{
    vec_store_int(
        p, _mm256_or_si256(vec_round_bf16(even), _mm256_slli_epi32(vec_round_bf16(odd), 16)));
}

/* half_order() on 2 * TT_VEC_LEN 16-bit lanes. */
static inline vec_int_t vec_order16(vec_int_t a, vec_int_t b, int inf, int quiet, int want_min)
{
    const vec_int_t abs = _mm256_set1_epi16(0x7fff), vinf = _mm256_set1_epi16((short)inf);
    const vec_int_t above = _mm256_set1_epi16((short)(inf + 1));
    vec_int_t ma = _mm256_and_si256(a, abs), mb = _mm256_and_si256(b, abs);
    vec_int_t sa = _mm256_srai_epi16(a, 15), sb = _mm256_srai_epi16(b, 15);
    vec_int_t ka = _mm256_sub_epi16(_mm256_xor_si256(ma, sa), sa);
    vec_int_t kb = _mm256_sub_epi16(_mm256_xor_si256(mb, sb), sb);
    vec_int_t ordered =
        _mm256_and_si256(_mm256_cmpgt_epi16(above, ma), _mm256_cmpgt_epi16(above, mb));
    vec_int_t pick_a = _mm256_and_si256(ordered, want_min ? _mm256_cmpgt_epi16(kb, ka)
                                                          : _mm256_cmpgt_epi16(ka, kb));
    vec_int_t r = _mm256_blendv_epi8(b, a, pick_a);
    vec_int_t nan = _mm256_cmpgt_epi16(_mm256_and_si256(r, abs), vinf);

    return _mm256_or_si256(r, _mm256_and_si256(nan, _mm256_set1_epi16((short)quiet)));
}

#endif

#if defined(TT_VEC_LEN)
/*
 * One vector step of each kernel, and how many elements it takes: sum,
 * prod and avg of fp16 widen one vector's worth, those of bf16 two (even
 * and odd); min and max work on 16-bit lanes, two vectors' worth.
 */
#define TT_VEC_ARITH_STEPS(op)                                                         \
    enum { step_fp16_##op##_len = TT_VEC_LEN, step_bf16_##op##_len = 2 * TT_VEC_LEN }; \
    static inline void step_fp16_##op(unsigned char *d, const unsigned char *x,        \
                                      const unsigned char *y, vec_t kv)                \
    {                                                                                  \
        vec_store_fp16(d, vec_##op(vec_load_fp16(x), vec_load_fp16(y), kv));           \
    }                                                                                  \
    static inline void step_bf16_##op(unsigned char *d, const unsigned char *x,        \
                                      const unsigned char *y, vec_t kv)                \
    {                                                                                  \
        vec_t xe, xo, ye, yo;                                                          \
                                                                                       \
        vec_load_bf16(x, &xe, &xo);                                                    \
        vec_load_bf16(y, &ye, &yo);                                                    \
        vec_store_bf16(d, vec_##op(xe, ye, kv), vec_##op(xo, yo, kv));                 \
    }

TT_VEC_ARITH_STEPS(sum)
TT_VEC_ARITH_STEPS(prod)
TT_VEC_ARITH_STEPS(avg)

#define TT_VEC_ORDER_STEP(fmt, op, FMT, want_min)                                      \
    enum { step_##fmt##_##op##_len = 2 * TT_VEC_LEN };                                 \
    static inline void step_##fmt##_##op(unsigned char *d, const unsigned char *x,     \
                                         const unsigned char *y, vec_t kv)             \
    {                                                                                  \
        (void)kv;                                                                      \
        vec_store_int(d, vec_order16(vec_load_int(x), vec_load_int(y), TT_##FMT##_INF, \
                                     TT_##FMT##_QUIET, want_min));                     \
    }

TT_VEC_ORDER_STEP(fp16, min, FP16, 1)
TT_VEC_ORDER_STEP(fp16, max, FP16, 0)
TT_VEC_ORDER_STEP(bf16, min, BF16, 1)
TT_VEC_ORDER_STEP(bf16, max, BF16, 0)

/* Kernel fmt_op for the vector sets: whole steps, then the element function. */
#define TT_DEFINE_HALF_KERNEL(fmt, op)                                             \
    static void fmt##_##op(void *dst, const void *a, const void *b, size_t count,  \
                           uint32_t divisor)                                       \
    {                                                                              \
        unsigned char *d = dst;                                                    \
        const unsigned char *x = a, *y = b;                                        \
        const float k = (float)divisor;                                            \
        const vec_t kv = vec_set1(k);                                              \
        size_t i = 0;                                                              \
                                                                                   \
        for (; count - i >= step_##fmt##_##op##_len; i += step_##fmt##_##op##_len) \
            step_##fmt##_##op(d + 2 * i, x + 2 * i, y + 2 * i, kv);                \
        for (; i < count; i++) {                                                   \
            uint16_t p, q, r;                                                      \
                                                                                   \
            memcpy(&p, x + 2 * i, 2);                                              \
            memcpy(&q, y + 2 * i, 2);                                              \
            r = elem_##fmt##_##op(p, q, k);                                        \
            memcpy(d + 2 * i, &r, 2);                                              \
        }                                                                          \
    }
#define TT_DEFINE_HALF_KERNELS(fmt)  \
    TT_DEFINE_HALF_KERNEL(fmt, sum)  \
    TT_DEFINE_HALF_KERNEL(fmt, prod) \
    TT_DEFINE_HALF_KERNEL(fmt, min)  \
    TT_DEFINE_HALF_KERNEL(fmt, max)  \
    TT_DEFINE_HALF_KERNEL(fmt, avg)

TT_DEFINE_HALF_KERNELS(fp16)
TT_DEFINE_HALF_KERNELS(bf16)
#else
/*
 * Generic set: the element functions in the same loops as the other types
 * (the compiler vectorises the bf16 ones and every min and max).
 */
TT_DEFINE_KERNELS(fp16, uint16_t, float, (float)divisor)
TT_DEFINE_KERNELS(bf16, uint16_t, float, (float)divisor)
#endif

/* ------------------------------------------------------------------------ */
/* The table                                                                */
/* ------------------------------------------------------------------------ */

#define TT_ROW(type)                                                                    \
    {                                                                                   \
        [TUTTI_SUM] = type##_sum, [TUTTI_PROD] = type##_prod, [TUTTI_MIN] = type##_min, \
        [TUTTI_MAX] = type##_max, [TUTTI_AVG] = type##_avg,                             \
    }

const tt_reduce_table_t TT_CAT(tt_reduce_table_, TT_REDUCE_SET) = {
    [TUTTI_INT8] = TT_ROW(int8),     [TUTTI_UINT8] = TT_ROW(uint8), [TUTTI_INT32] = TT_ROW(int32),
    [TUTTI_UINT32] = TT_ROW(uint32), [TUTTI_INT64] = TT_ROW(int64), [TUTTI_UINT64] = TT_ROW(uint64),
    [TUTTI_FP16] = TT_ROW(fp16),     [TUTTI_BF16] = TT_ROW(bf16),   [TUTTI_FP32] = TT_ROW(fp32),
    [TUTTI_FP64] = TT_ROW(fp64),
};
