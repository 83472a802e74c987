/* Forking ranks for multi-rank tests; see ranks.h. */
#include "tests/lib/ranks.h"
#include "tests/lib/netns.h"

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int tt_fail(int rank, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    int n = snprintf(line, sizeof(line), "[rank %d] FAIL: ", rank);
    va_start(ap, fmt);
    vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    strcat(line, "\n");
    fputs(line, stderr);
    return 1;
}

tutti_comm_t tt_test_comm(int rank, int nranks, const tutti_unique_id_t *id, tutti_config_t config)
{
    tutti_comm_t comm;
    tutti_status_t status = tutti_comm_init(nranks, rank, id, config, &comm);
    if (status != TUTTI_OK) {
        tt_fail(rank, "tutti_comm_init: %s", tutti_status_string(status));
        _exit(2);
    }
    return comm;
}

int tt_run_ranks_status(int nranks, tt_rank_fn_t fn, void *arg, int timeout_s, int *statuses)
{
    tutti_unique_id_t id;
    pid_t pids[256];
    int failed = 0, alive = nranks;
    time_t deadline = time(NULL) + timeout_s;

    if (nranks > 256 || tt_netns_unique_id(&id) != TUTTI_OK) {
        fprintf(stderr, "tt_run_ranks: cannot set up %d ranks\n", nranks);
        return nranks;
    }
    fflush(NULL);
    for (int r = 0; r < nranks; r++) {
        pids[r] = fork();
        if (pids[r] == 0) {
            int rank_failed = tt_netns_enter(r, nranks) != 0 || fn(r, nranks, &id, arg) != 0;
            fflush(NULL);
            _exit(rank_failed);
        }
        statuses[r] = -1;
    }
    while (alive > 0) {
        int reaped = 0;
        /* Only our ranks: the caller may have children of its own. */
        for (int r = 0; r < nranks; r++)
            if (statuses[r] == -1 && waitpid(pids[r], &statuses[r], WNOHANG) > 0) {
                alive--;
                reaped++;
            }
        if (reaped > 0)
            continue;
        if (time(NULL) > deadline) {
            fprintf(stderr, "tt_run_ranks: ranks still running after %d s; killing them\n",
                    timeout_s);
            for (int r = 0; r < nranks; r++)
                if (statuses[r] == -1)
                    kill(pids[r], SIGKILL);
            deadline = time(NULL) + 3600;
            continue;
        }
        usleep(2000);
    }
    for (int r = 0; r < nranks; r++)
        if (!WIFEXITED(statuses[r]) || WEXITSTATUS(statuses[r]) != 0)
            failed++;
    return failed;
}

int tt_run_ranks(int nranks, tt_rank_fn_t fn, void *arg, int timeout_s)
{
    int statuses[256];
    int failed = tt_run_ranks_status(nranks, fn, arg, timeout_s, statuses);
    for (int r = 0; r < nranks && r < 256; r++) {
        if (statuses[r] == -1 || (WIFEXITED(statuses[r]) && WEXITSTATUS(statuses[r]) == 0))
            continue;
        if (WIFSIGNALED(statuses[r]))
            fprintf(stderr, "tt_run_ranks: rank %d killed by signal %d\n", r,
                    WTERMSIG(statuses[r]));
        else
            fprintf(stderr, "tt_run_ranks: rank %d exited with %d\n", r, WEXITSTATUS(statuses[r]));
    }
    return failed;
}
