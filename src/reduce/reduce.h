/*
 * Element-wise reductions for every datatype and operation, vectorised for
 * the CPU at hand (AVX-512, AVX2+F16C, or portable C), chosen at run time.
 * fp16 and bf16 are widened to fp32, combined, and rounded back to nearest
 * even; every kernel set gives bitwise the same results as the portable one,
 * so ranks on different CPUs agree.
 */
#ifndef TT_REDUCE_REDUCE_H
#define TT_REDUCE_REDUCE_H

#include "tutti.h"

#include <stddef.h>
#include <stdint.h>

/*
 * dst[i] = a[i] op b[i] for i < count. For TUTTI_AVG the result is
 * (a[i] + b[i]) / divisor (computed in fp32 for fp16/bf16, rounded once);
 * divisor must then be at least 1 (an integer kernel would trap on 0). The
 * other ops ignore @p divisor. dst may be a or b (exactly), never a partial
 * overlap. No alignment is required; count 0 touches no memory (the
 * pointers may be NULL).
 *
 * Floats: min and max are (a < b ? a : b) and (a > b ? a : b), so with a
 * NaN operand they return b as it is. For sum, prod and avg a NaN in a
 * gives a's NaN, else a NaN in b gives b's, quieted either way (x86 would
 * pick whichever operand the compiler put first). fp16 and bf16 NaNs keep
 * their sign and the top of their payload; their min and max compare the
 * 16-bit encodings, which gives the same answer as comparing the widened
 * values without depending on denormals-are-zero.
 *
 * Kernels are pure functions of their inputs: reentrant, thread safe, and
 * bitwise the same in every kernel set, also when the caller has set
 * flush-to-zero or denormals-are-zero (which change the result, but in
 * every set alike).
 */
typedef void (*tt_reduce_fn_t)(void *dst, const void *a, const void *b, size_t count,
                               uint32_t divisor);

typedef enum tt_reduce_isa {
    TT_REDUCE_ISA_AUTO,
    TT_REDUCE_ISA_GENERIC,
    TT_REDUCE_ISA_AVX2,
    TT_REDUCE_ISA_AVX512,
    TT_REDUCE_ISA_COUNT,
} tt_reduce_isa_t;

/*
 * Names of the kernel sets, for settings and logs, indexed by
 * tt_reduce_isa_t: "auto", "generic", "avx2", "avx512", then NULL.
 */
extern const char *const tt_reduce_isa_names[];

/*
 * Kernel for (datatype, op) in kernel set @p isa (AUTO: the best this CPU
 * runs). Every datatype supports every op. NULL if @p datatype, @p op or
 * @p isa is out of range, or the set was not built or this CPU cannot run
 * it. Cheap (a table look-up and a check of cached CPU feature bits), but
 * look it up once per operation, not per chunk. Thread safe.
 */
tt_reduce_fn_t tt_reduce_kernel(tt_reduce_isa_t isa, tutti_datatype_t datatype, tutti_op_t op);

/*
 * The kernel set AUTO resolves to on this CPU: avx512 (AVX-512 F, BW, VL
 * and F16C), else avx2 (AVX2 and F16C), else generic. Thread safe.
 */
tt_reduce_isa_t tt_reduce_best_isa(void);

/*
 * dst[i] = src[i] / divisor: the last step of an average when no addition
 * is left to fuse it with (a single rank). Same rounding as the AVG kernels
 * (integers truncate toward zero; fp16/bf16 divide in fp32 and round once).
 * divisor must be at least 1; dst may be src. Does nothing for a value
 * that is not a datatype. Portable C only (not vectorised). Thread safe.
 */
void tt_reduce_divide(void *dst, const void *src, size_t count, tutti_datatype_t datatype,
                      uint32_t divisor);

/*
 * Conversions the kernels use, exposed for tests and tools. Integer-only,
 * so independent of the floating-point environment. fp16 matches F16C
 * exactly: widening is exact and quiets a NaN; narrowing rounds to nearest
 * even (subnormal results, overflow to infinity) and quiets a NaN keeping
 * its sign and top payload bits. bf16 widening is the exact 16-bit shift
 * (a signalling NaN stays signalling); narrowing rounds to nearest even and
 * quiets a NaN the same way. Thread safe.
 */
float tt_fp16_to_float(uint16_t h);
uint16_t tt_float_to_fp16(float f);
float tt_bf16_to_float(uint16_t h);
uint16_t tt_float_to_bf16(float f);

#endif
