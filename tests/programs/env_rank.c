/*
 * A rank program for tests of tutti-run and environment launch: joins the
 * job from the environment, runs one checked allreduce, prints one line.
 *   env_rank [--fail RANK CODE] [--crash RANK] [--hang RANK]
 * --fail makes RANK exit with CODE before the allreduce, --crash makes it
 * raise SIGSEGV, --hang makes it sleep forever: the launcher's reactions to
 * failing ranks are tested with these.
 */
#include "tutti.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    int rank, nranks, fail_rank = -1, fail_code = 0, crash_rank = -1, hang_rank = -1;
    int64_t in, out;
    tutti_comm_t comm;
    tutti_status_t status;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--fail") == 0 && i + 2 < argc) {
            fail_rank = atoi(argv[++i]);
            fail_code = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--crash") == 0 && i + 1 < argc) {
            crash_rank = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--hang") == 0 && i + 1 < argc) {
            hang_rank = atoi(argv[++i]);
        }
    }
    status = tutti_comm_init_env(NULL, &comm);
    if (status != TUTTI_OK) {
        fprintf(stderr, "init failed: %s\n", tutti_status_string(status));
        return 1;
    }
    tutti_comm_rank(comm, &rank);
    tutti_comm_size(comm, &nranks);
    if (rank == fail_rank)
        return fail_code;
    if (rank == crash_rank)
        raise(SIGSEGV);
    if (rank == hang_rank)
        for (;;)
            pause();
    in = rank + 1;
    status = tutti_allreduce(&in, &out, 1, TUTTI_INT64, TUTTI_SUM, comm);
    if (status != TUTTI_OK || out != (int64_t)nranks * (nranks + 1) / 2) {
        fprintf(stderr, "allreduce: %s, got %lld\n", tutti_status_string(status), (long long)out);
        return 1;
    }
    printf("rank %d of %d: sum %lld\n", rank, nranks, (long long)out);
    return tutti_comm_destroy(comm) == TUTTI_OK ? 0 : 1;
}
