/*
 * The kernel tables that kernels.c defines, one per kernel set. kernels.c is
 * compiled once per set with TT_REDUCE_SET naming the set; dispatch.c picks
 * a table at run time. Internal to src/reduce.
 */
#ifndef TT_REDUCE_KERNELS_H
#define TT_REDUCE_KERNELS_H

#include "reduce/reduce.h"

/*
 * Indexed [datatype][op]. Every entry is filled: all datatypes support all
 * operations.
 */
typedef tt_reduce_fn_t tt_reduce_table_t[TUTTI_NUM_DATATYPES][TUTTI_NUM_OPS];

extern const tt_reduce_table_t tt_reduce_table_generic;
extern const tt_reduce_table_t tt_reduce_table_avx2;
extern const tt_reduce_table_t tt_reduce_table_avx512;

#endif
