/* Out-of-line copies of the conversions in half.h, for tests and tools. */
#include "config.h"

#include "reduce/reduce.h"

#include "reduce/half.h"

float tt_fp16_to_float(uint16_t h)
{
    return tt_fp16_to_float_inline(h);
}

uint16_t tt_float_to_fp16(float f)
{
    return tt_float_to_fp16_inline(f);
}

float tt_bf16_to_float(uint16_t h)
{
    return tt_bf16_to_float_inline(h);
}

uint16_t tt_float_to_bf16(float f)
{
    return tt_float_to_bf16_inline(f);
}
