/*
 * TUTTI_MPI_STATS=1: count, per MPI function, the calls tutti served and
 * the calls that fell back to MPI; at MPI_Finalize rank 0 prints the sums
 * over all ranks, one line per function that was called:
 *   tutti-mpi: MPI_Allreduce served 12 fell back 3
 */
#include "tutti_mpi.h"

#include <ctype.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The collectives' names after "MPI_" and "MPI_I", as in MPI_Allreduce / MPI_Iallreduce. */
static const char *const base_names[TM_NUM_COLLS] = {
    [TM_ALLREDUCE] = "allreduce",
    [TM_REDUCE] = "reduce",
    [TM_BCAST] = "bcast",
    [TM_ALLGATHER] = "allgather",
    [TM_REDUCE_SCATTER_BLOCK] = "reduce_scatter_block",
    [TM_REDUCE_SCATTER] = "reduce_scatter",
    [TM_ALLTOALL] = "alltoall",
    [TM_ALLTOALLV] = "alltoallv",
    [TM_BARRIER] = "barrier",
};

/* [collective][nonblocking][served] */
static atomic_long counts[TM_NUM_COLLS][2][2];

void tm_stats_count(tm_coll_t coll, int nonblocking, int served)
{
    atomic_fetch_add_explicit(&counts[coll][nonblocking != 0][served != 0], 1,
                              memory_order_relaxed);
}

void tm_stats_report(void)
{
    const char *want = getenv("TUTTI_MPI_STATS");
    long mine[TM_NUM_COLLS * 4], sums[TM_NUM_COLLS * 4];
    int rank;

    if (want == NULL || strcmp(want, "1") != 0)
        return;
    for (int c = 0; c < TM_NUM_COLLS; c++)
        for (int i = 0; i < 4; i++)
            mine[c * 4 + i] = atomic_load(&counts[c][i / 2][i % 2]);
    PMPI_Comm_rank(MPI_COMM_WORLD, &rank);
    PMPI_Reduce(mine, sums, TM_NUM_COLLS * 4, MPI_LONG, MPI_SUM, 0, MPI_COMM_WORLD);
    if (rank != 0)
        return;
    for (int c = 0; c < TM_NUM_COLLS; c++)
        for (int nb = 0; nb < 2; nb++) {
            long fell_back = sums[c * 4 + nb * 2], served = sums[c * 4 + nb * 2 + 1];
            if (served + fell_back == 0)
                continue;
            fprintf(stderr, "tutti-mpi: MPI_%s%c%s served %ld fell back %ld\n", nb ? "I" : "",
                    nb ? base_names[c][0] : toupper((unsigned char)base_names[c][0]),
                    base_names[c] + 1, served, fell_back);
        }
}
