/*
 * Software conversions between fp32 and the two 16-bit float formats, as
 * static inline functions for the kernels' scalar paths. half.c wraps them
 * as the functions reduce.h declares.
 *
 * They work on the bits with integer arithmetic only, so they give the same
 * answer whatever the caller has done to MXCSR (rounding mode, DAZ, FTZ),
 * just as the F16C instructions do. fp16 follows F16C exactly, which the
 * AVX2 and AVX-512 kernels use:
 * - fp16 -> fp32 is exact; a NaN keeps its sign and payload (shifted to the
 *   top of the fp32 mantissa) and is quieted.
 * - fp32 -> fp16 rounds to nearest, ties to even, with subnormal results
 *   and overflow to infinity; a NaN keeps its sign and the top 10 bits of
 *   its payload and is quieted.
 * bf16 has no conversion instruction we are willing to use (vcvtneps2bf16
 * flushes subnormals), so the vector kernels do the same integer steps:
 * - bf16 -> fp32 is the 16-bit shift, exact for every value (a signalling
 *   NaN stays signalling; every kernel quiets it on the way back).
 * - fp32 -> bf16 rounds to nearest, ties to even; a NaN keeps its sign and
 *   the top 7 bits of its payload and is quieted.
 */
#ifndef TT_REDUCE_HALF_H
#define TT_REDUCE_HALF_H

#include <stdint.h>
#include <string.h>

static inline uint32_t tt_float_bits(float f)
{
    uint32_t u;

    memcpy(&u, &f, sizeof(u));
    return u;
}

static inline float tt_bits_float(uint32_t u)
{
    float f;

    memcpy(&f, &u, sizeof(f));
    return f;
}

static inline float tt_fp16_to_float_inline(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t man = h & 0x3ff;

    if (exp == 0x1f) /* infinity, or a NaN quieted as F16C does */
        return tt_bits_float(sign | 0x7f800000 | (man << 13) | (man ? 0x400000 : 0));
    if (exp != 0) /* normal: rebias the exponent from 15 to 127 */
        return tt_bits_float(sign | ((exp + 112) << 23) | (man << 13));
    if (man == 0)
        return tt_bits_float(sign);
    /*
     * Subnormal man * 2^-24 is normal in fp32: move its leading one (bit p)
     * up to the implicit position; the exponent field becomes p + 103.
     */
    uint32_t p = 31 - (uint32_t)__builtin_clz(man);
    return tt_bits_float(sign | ((p + 103) << 23) | ((man << (23 - p)) & 0x7fffff));
}

static inline uint16_t tt_float_to_fp16_inline(float f)
{
    uint32_t x = tt_float_bits(f);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000);

    x &= 0x7fffffff;
    if (x > 0x7f800000) /* NaN: keep the top of the payload, set the quiet bit */
        return (uint16_t)(sign | 0x7e00 | ((x >> 13) & 0x3ff));
    if (x >= 0x477ff000) /* 65520 and up (infinity too) round to infinity */
        return (uint16_t)(sign | 0x7c00);
    if (x >= 0x38800000) {
        /*
         * Normal result. Rebias the exponent (127 -> 15), then round the 13
         * dropped bits to nearest even by adding just under half, plus one
         * when the kept part is odd; a carry into the exponent is correct.
         */
        x -= 0x38000000;
        x += 0xfff + ((x >> 13) & 1);
        return (uint16_t)(sign | (x >> 13));
    }
    if (x <= 0x33000000) /* at most 2^-25, half the smallest subnormal: ties to zero */
        return sign;
    /*
     * Subnormal result (or the smallest normal after rounding up): the value
     * m * 2^(e-150) in units of 2^-24 is m >> (126 - e), rounded to even.
     */
    uint32_t e = x >> 23;
    uint32_t m = (x & 0x7fffff) | 0x800000;
    uint32_t shift = 126 - e; /* 14..24 */
    uint32_t r = m >> shift;
    uint32_t rest = m & ((1u << shift) - 1);
    uint32_t halfway = 1u << (shift - 1);

    if (rest > halfway || (rest == halfway && (r & 1)))
        r++;
    return (uint16_t)(sign | r);
}

static inline float tt_bf16_to_float_inline(uint16_t h)
{
    return tt_bits_float((uint32_t)h << 16);
}

static inline uint16_t tt_float_to_bf16_inline(float f)
{
    uint32_t x = tt_float_bits(f);

    if ((x & 0x7fffffff) > 0x7f800000)
        return (uint16_t)((x >> 16) | 0x40);
    /*
     * Round the low 16 bits to nearest even. No overflow past 32 bits: the
     * largest non-NaN pattern is -infinity, 0xff800000.
     */
    return (uint16_t)((x + 0x7fff + ((x >> 16) & 1)) >> 16);
}

#endif
