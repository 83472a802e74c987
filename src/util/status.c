/* Names of statuses, datatypes and operations: the public lookup tables. */
#include <config.h> /* the build's: "config.h" would find util/config.h */

#include "tutti.h"

#include "util/compiler.h"

const char *tutti_status_string(tutti_status_t status)
{
    switch (status) {
#define TT_STATUS_CASE_(name, value, text) \
    case name: return text;
        TUTTI_STATUS_TABLE(TT_STATUS_CASE_)
#undef TT_STATUS_CASE_
    }
    return "unknown status";
}

tutti_status_t tutti_version(int *major_p, int *minor_p, int *patch_p)
{
    if (major_p == NULL || minor_p == NULL || patch_p == NULL)
        return TUTTI_ERR_INVALID_ARG;
    *major_p = TUTTI_VERSION_MAJOR;
    *minor_p = TUTTI_VERSION_MINOR;
    *patch_p = TUTTI_VERSION_PATCH;
    return TUTTI_OK;
}

static const struct {
    const char *name;
    size_t size;
} datatypes[TUTTI_NUM_DATATYPES] = {
    [TUTTI_INT8] = {"int8", 1},     [TUTTI_UINT8] = {"uint8", 1}, [TUTTI_INT32] = {"int32", 4},
    [TUTTI_UINT32] = {"uint32", 4}, [TUTTI_INT64] = {"int64", 8}, [TUTTI_UINT64] = {"uint64", 8},
    [TUTTI_FP16] = {"fp16", 2},     [TUTTI_BF16] = {"bf16", 2},   [TUTTI_FP32] = {"fp32", 4},
    [TUTTI_FP64] = {"fp64", 8},
};

static const char *const op_names[TUTTI_NUM_OPS] = {
    [TUTTI_SUM] = "sum", [TUTTI_PROD] = "prod", [TUTTI_MIN] = "min",
    [TUTTI_MAX] = "max", [TUTTI_AVG] = "avg",
};

size_t tutti_datatype_size(tutti_datatype_t datatype)
{
    if ((unsigned)datatype >= TUTTI_NUM_DATATYPES)
        return 0;
    return datatypes[datatype].size;
}

const char *tutti_datatype_name(tutti_datatype_t datatype)
{
    if ((unsigned)datatype >= TUTTI_NUM_DATATYPES)
        return NULL;
    return datatypes[datatype].name;
}

const char *tutti_op_name(tutti_op_t op)
{
    if ((unsigned)op >= TUTTI_NUM_OPS)
        return NULL;
    return op_names[op];
}
