/* Predefined MPI datatypes and operations as tutti's; see tutti_mpi.h. */
#include "tutti_mpi.h"

/* A C integer type of @p size bytes as tutti's, signed or not; 0 if tutti has none. */
static int integer_type(size_t size, int is_signed, tutti_datatype_t *type_p)
{
    switch (size) {
    case 1: *type_p = is_signed ? TUTTI_INT8 : TUTTI_UINT8; return 1;
    case 4: *type_p = is_signed ? TUTTI_INT32 : TUTTI_UINT32; return 1;
    case 8: *type_p = is_signed ? TUTTI_INT64 : TUTTI_UINT64; return 1;
    default: return 0;
    }
}

int tm_reduction_type(MPI_Datatype type, tutti_datatype_t *type_p)
{
    /* MPI handles are not constants in every MPI: compare one by one. */
    const struct {
        MPI_Datatype mpi;
        size_t size;
        int is_signed;
    } integers[] = {
        {MPI_INT8_T, 1, 1},
        {MPI_SIGNED_CHAR, 1, 1},
        {MPI_UINT8_T, 1, 0},
        {MPI_UNSIGNED_CHAR, 1, 0},
        {MPI_INT32_T, 4, 1},
        {MPI_UINT32_T, 4, 0},
        {MPI_INT64_T, 8, 1},
        {MPI_UINT64_T, 8, 0},
        {MPI_INT, sizeof(int), 1},
        {MPI_UNSIGNED, sizeof(unsigned), 0},
        {MPI_LONG, sizeof(long), 1},
        {MPI_UNSIGNED_LONG, sizeof(unsigned long), 0},
        {MPI_LONG_LONG, sizeof(long long), 1},
        {MPI_LONG_LONG_INT, sizeof(long long), 1},
        {MPI_UNSIGNED_LONG_LONG, sizeof(unsigned long long), 0},
    };

    if (type == MPI_FLOAT) {
        *type_p = TUTTI_FP32;
        return 1;
    }
    if (type == MPI_DOUBLE) {
        *type_p = TUTTI_FP64;
        return 1;
    }
    for (size_t i = 0; i < sizeof(integers) / sizeof(integers[0]); i++)
        if (type == integers[i].mpi)
            return integer_type(integers[i].size, integers[i].is_signed, type_p);
    return 0;
}

int tm_reduction_op(MPI_Op op, tutti_op_t *op_p)
{
    if (op == MPI_SUM)
        *op_p = TUTTI_SUM;
    else if (op == MPI_PROD)
        *op_p = TUTTI_PROD;
    else if (op == MPI_MIN)
        *op_p = TUTTI_MIN;
    else if (op == MPI_MAX)
        *op_p = TUTTI_MAX;
    else
        return 0;
    return 1;
}

size_t tm_dense_size(MPI_Datatype type)
{
    MPI_Aint lb, extent, true_lb, true_extent;
    int size;

    if (type == MPI_DATATYPE_NULL || PMPI_Type_size(type, &size) != MPI_SUCCESS || size <= 0 ||
        PMPI_Type_get_extent(type, &lb, &extent) != MPI_SUCCESS ||
        PMPI_Type_get_true_extent(type, &true_lb, &true_extent) != MPI_SUCCESS)
        return 0;
    /* As many bytes as it spans, starting where it starts: no gaps, no overlap. */
    return lb == 0 && true_lb == 0 && extent == size && true_extent == size ? (size_t)size : 0;
}
