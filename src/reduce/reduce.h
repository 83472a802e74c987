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
 * the other ops ignore @p divisor. dst may be a or b (exactly), never a
 * partial overlap. No alignment is required.
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

/* Names of the kernel sets, for settings and logs ("auto", "generic", ...). */
extern const char *const tt_reduce_isa_names[];

/*
 * Kernel for (datatype, op) in kernel set @p isa (AUTO: the best this CPU
 * runs). NULL if the pair is not supported or the CPU cannot run @p isa.
 */
tt_reduce_fn_t tt_reduce_kernel(tt_reduce_isa_t isa, tutti_datatype_t datatype, tutti_op_t op);

/* The kernel set AUTO resolves to on this CPU. */
tt_reduce_isa_t tt_reduce_best_isa(void);

/*
 * dst[i] = src[i] / divisor: the last step of an average when no addition
 * is left to fuse it with (a single rank). Same rounding as the AVG kernels.
 */
void tt_reduce_divide(void *dst, const void *src, size_t count, tutti_datatype_t datatype,
                      uint32_t divisor);

/* Conversions the kernels use, exposed for tests and tools. */
float tt_fp16_to_float(uint16_t h);
uint16_t tt_float_to_fp16(float f);
float tt_bf16_to_float(uint16_t h);
uint16_t tt_float_to_bf16(float f);

#endif
