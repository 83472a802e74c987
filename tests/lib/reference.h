/*
 * Reference results for collective tests, computed directly from the
 * definitions in tutti.h with plain scalar C and nothing from the library:
 * integers in unsigned 64-bit arithmetic masked to the type's width, floats
 * in double, fp16 and bf16 decoded and encoded here with frexp/ldexp.
 *
 * A case's inputs are a pure function of (case, rank, element index), so
 * every rank can generate every other rank's input and compute the expected
 * result on its own, without communicating.
 */
#ifndef TT_TESTS_REFERENCE_H
#define TT_TESTS_REFERENCE_H

#include "tutti.h"

#include <stddef.h>
#include <stdint.h>

/* How a case's inputs are chosen. */
typedef enum tt_ref_inputs {
    /*
     * Results are exact in every type, whatever the order of combination:
     * integers are random (sums and products wrap), floats are small
     * multiples of 1/4 for sum and avg, drawn from {1, 2, -1, 0.5} (fp16,
     * bf16) or {+-0.25, +-0.5, +-1, +-1.5, +-2, +-3} (fp32, fp64) for prod,
     * and random bit patterns other than NaN and -0 for min and max. Only
     * the final division of avg rounds.
     */
    TT_REF_EXACT,
    /* Floats with full mantissas: sums and products round, so the order of
     * combination shows in the last bits. */
    TT_REF_ROUNDING,
    /* Floats with NaNs (quiet, signalling, any payload), signed zeros,
     * infinities and subnormals mixed in: no reference, but the results
     * must still be deterministic and equal on every rank. */
    TT_REF_SPECIAL,
} tt_ref_inputs_t;

/* What a reference needs to know about a case. */
typedef struct tt_ref_case {
    tutti_datatype_t datatype;
    tutti_op_t op;
    int reducing; /* 0: data movement; inputs are random bit patterns */
    tt_ref_inputs_t inputs;
    uint64_t seed;
    int nranks;
} tt_ref_case_t;

/* An expected reduction result. */
typedef struct tt_ref_value {
    uint64_t bits;    /* integers: the exact result in the type's width */
    double value;     /* floats: the result in double */
    double magnitude; /* floats: sum of |inputs| (sum, avg) or |result| (prod), for bounds */
} tt_ref_value_t;

/* Bytes per element of @p datatype (independent of tutti_datatype_size). */
size_t tt_ref_size(tutti_datatype_t datatype);

/* Names for messages. */
const char *tt_ref_datatype_name(tutti_datatype_t datatype);
const char *tt_ref_op_name(tutti_op_t op);

/* Element @p index of rank @p rank's input, as raw bits in the low bytes. */
uint64_t tt_ref_input(const tt_ref_case_t *c, int rank, uint64_t index);

/* Write elements first .. first + count - 1 of rank @p rank's input to @p dst (any alignment). */
void tt_ref_fill(const tt_ref_case_t *c, int rank, uint64_t first, uint64_t count, void *dst);

/* The expected reduction over all ranks of input element @p index (not for TT_REF_SPECIAL). */
void tt_ref_expect(const tt_ref_case_t *c, uint64_t index, tt_ref_value_t *want);

/*
 * Whether @p got (one element, any alignment) is an acceptable result for
 * @p want; if not, describe both in @p why.
 */
int tt_ref_matches(const tt_ref_case_t *c, const void *got, const tt_ref_value_t *want, char *why,
                   size_t why_len);

/* Read one element at @p p (any alignment) as raw bits. */
uint64_t tt_ref_load(tutti_datatype_t datatype, const void *p);

/* Describe raw element bits ("-3 (0xfd)", "1.5 (0x3e00)") for messages. */
void tt_ref_describe(tutti_datatype_t datatype, uint64_t bits, char *out, size_t out_len);

/* Float value of raw element bits of a float datatype. */
double tt_ref_decode(tutti_datatype_t datatype, uint64_t bits);

/* fp16 / bf16 conversions written for the tests: exact decode, round-to-nearest-even encode. */
double tt_ref_fp16_decode(uint16_t h);
uint16_t tt_ref_fp16_encode(double v);
double tt_ref_bf16_decode(uint16_t h);
uint16_t tt_ref_bf16_encode(double v);

/* A 64-bit hash of @p len bytes, never 0 (so 0 can mean "no hash"). */
uint64_t tt_ref_hash(const void *p, size_t len);

/* splitmix64 finaliser: a well-mixed function of @p x. */
uint64_t tt_ref_mix(uint64_t x);

#endif
