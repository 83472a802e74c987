/*
 * Choosing a kernel set at run time, and the stand-alone division that
 * finishes a one-rank average.
 */
#include "config.h"

#include "reduce/reduce.h"

#include "reduce/half.h"
#include "reduce/kernels.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(HAVE_REDUCE_AVX2) || defined(HAVE_REDUCE_AVX512)
#include <cpuid.h>
#include <stdatomic.h>
#endif

/* Indexed by tt_reduce_isa_t; the NULL ends the list for config enums. */
const char *const tt_reduce_isa_names[] = {"auto", "generic", "avx2", "avx512", NULL};

_Static_assert(sizeof(tt_reduce_isa_names) / sizeof(tt_reduce_isa_names[0]) ==
                   TT_REDUCE_ISA_COUNT + 1,
               "one name per kernel set, then NULL");

#if defined(HAVE_REDUCE_AVX2) || defined(HAVE_REDUCE_AVX512)
/*
 * F16C, from CPUID leaf 1 (ECX bit 29) rather than __builtin_cpu_supports,
 * which knows "f16c" in GCC but not in clang before 16. The instructions
 * use the AVX registers; the OS support for those is checked with avx2 or
 * avx512f, which we always ask for together with this.
 *
 * The answer is cached: CPUID traps to the hypervisor in a virtual machine
 * (measured at over 10 us a call), too slow for every operation. This is
 * the one piece of process-wide state here, a fact about the machine that
 * never changes; threads racing to fill it store the same value.
 */
static _Atomic int f16c_known; /* 0: not asked yet; 1: no; 2: yes */

static int cpu_has_f16c(void)
{
    int known = atomic_load_explicit(&f16c_known, memory_order_relaxed);

    if (known == 0) {
        unsigned int eax, ebx, ecx, edx;

        known = __get_cpuid(1, &eax, &ebx, &ecx, &edx) && (ecx & (1u << 29)) != 0 ? 2 : 1;
        atomic_store_explicit(&f16c_known, known, memory_order_relaxed);
    }
    return known == 2;
}
#endif

/*
 * Whether this CPU (and the OS, which must save the wide registers; the
 * builtin checks that too) can run kernel set @p isa. A set that was not
 * compiled cannot run.
 */
static int isa_runs(tt_reduce_isa_t isa)
{
    switch (isa) {
    case TT_REDUCE_ISA_GENERIC: return 1;
#if defined(HAVE_REDUCE_AVX2)
    case TT_REDUCE_ISA_AVX2:
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx2") && cpu_has_f16c();
#endif
#if defined(HAVE_REDUCE_AVX512)
    case TT_REDUCE_ISA_AVX512:
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512vl") && cpu_has_f16c();
#endif
    default: return 0;
    }
}

tt_reduce_isa_t tt_reduce_best_isa(void)
{
    if (isa_runs(TT_REDUCE_ISA_AVX512))
        return TT_REDUCE_ISA_AVX512;
    if (isa_runs(TT_REDUCE_ISA_AVX2))
        return TT_REDUCE_ISA_AVX2;
    return TT_REDUCE_ISA_GENERIC;
}

tt_reduce_fn_t tt_reduce_kernel(tt_reduce_isa_t isa, tutti_datatype_t datatype, tutti_op_t op)
{
    const tt_reduce_table_t *table;

    /* Casts: an enum may be unsigned, and callers may pass anything. */
    if ((unsigned)datatype >= TUTTI_NUM_DATATYPES || (unsigned)op >= TUTTI_NUM_OPS)
        return NULL;
    if (isa == TT_REDUCE_ISA_AUTO)
        isa = tt_reduce_best_isa();
    if (!isa_runs(isa))
        return NULL;

    switch (isa) {
#if defined(HAVE_REDUCE_AVX512)
    case TT_REDUCE_ISA_AVX512: table = &tt_reduce_table_avx512; break;
#endif
#if defined(HAVE_REDUCE_AVX2)
    case TT_REDUCE_ISA_AVX2: table = &tt_reduce_table_avx2; break;
#endif
    case TT_REDUCE_ISA_GENERIC: table = &tt_reduce_table_generic; break;
    default: return NULL;
    }
    return (*table)[datatype][op];
}

/*
 * Divide each element of one type. Integers: C division truncates toward
 * zero, done in a type Q that holds every element and every divisor, as in
 * the AVG kernels. Plain loops in this file rather than a kernel per set:
 * a single rank's average is the only user, and it is not on a hot path.
 */
#define TT_DIVIDE_INT(T, Q)                           \
    do {                                              \
        for (size_t i = 0; i < count; i++) {          \
            T v;                                      \
            memcpy(&v, s + i * sizeof(T), sizeof(T)); \
            v = (T)((Q)v / (Q)divisor);               \
            memcpy(d + i * sizeof(T), &v, sizeof(T)); \
        }                                             \
    } while (0)

/* Floats: the IEEE quotient by the divisor converted to T, as AVG does. */
#define TT_DIVIDE_FLOAT(T)                            \
    do {                                              \
        const T k = (T)divisor;                       \
        for (size_t i = 0; i < count; i++) {          \
            T v;                                      \
            memcpy(&v, s + i * sizeof(T), sizeof(T)); \
            v = v / k;                                \
            memcpy(d + i * sizeof(T), &v, sizeof(T)); \
        }                                             \
    } while (0)

/* 16-bit floats: widen, divide in fp32, round once, as AVG does. */
#define TT_DIVIDE_HALF(fmt)                                                    \
    do {                                                                       \
        const float k = (float)divisor;                                        \
        for (size_t i = 0; i < count; i++) {                                   \
            uint16_t v;                                                        \
            memcpy(&v, s + i * 2, 2);                                          \
            v = tt_float_to_##fmt##_inline(tt_##fmt##_to_float_inline(v) / k); \
            memcpy(d + i * 2, &v, 2);                                          \
        }                                                                      \
    } while (0)

void tt_reduce_divide(void *dst, const void *src, size_t count, tutti_datatype_t datatype,
                      uint32_t divisor)
{
    unsigned char *d = dst;
    const unsigned char *s = src;

    switch (datatype) {
    case TUTTI_INT8: TT_DIVIDE_INT(int8_t, int64_t); break;
    case TUTTI_UINT8: TT_DIVIDE_INT(uint8_t, uint32_t); break;
    case TUTTI_INT32: TT_DIVIDE_INT(int32_t, int64_t); break;
    case TUTTI_UINT32: TT_DIVIDE_INT(uint32_t, uint32_t); break;
    case TUTTI_INT64: TT_DIVIDE_INT(int64_t, int64_t); break;
    case TUTTI_UINT64: TT_DIVIDE_INT(uint64_t, uint64_t); break;
    case TUTTI_FP16: TT_DIVIDE_HALF(fp16); break;
    case TUTTI_BF16: TT_DIVIDE_HALF(bf16); break;
    case TUTTI_FP32: TT_DIVIDE_FLOAT(float); break;
    case TUTTI_FP64: TT_DIVIDE_FLOAT(double); break;
    default: break; /* not a datatype: callers check arguments before this */
    }
}
