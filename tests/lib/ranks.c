/* Forking ranks for multi-rank tests; see ranks.h. */
#include "tests/lib/ranks.h"
#include "tests/lib/netns.h"

#include <dirent.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
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

/* The running ranks, shared with them (for tt_report_hang). */
typedef struct {
    int nranks;
    pid_t pids[256];
    atomic_int reported;
} rank_table_t;

static rank_table_t *rank_table;

/* The first line of @p path into @p buf ("" if it cannot be read). */
static void read_line(const char *path, char *buf, int len)
{
    FILE *f = fopen(path, "r");
    buf[0] = 0;
    if (f != NULL) {
        if (fgets(buf, len, f) == NULL)
            buf[0] = 0;
        fclose(f);
    }
    buf[strcspn(buf, "\n")] = 0;
}

/*
 * One line per thread of @p pid from /proc: state, kernel wait channel, CPU
 * ticks used; and the kernel stack of a thread blocked in the kernel (D).
 */
static void print_threads(pid_t pid)
{
    char path[320], line[512], wchan[64];
    struct dirent *d;
    DIR *dir;

    snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
    if ((dir = opendir(path)) == NULL)
        return;
    while ((d = readdir(dir)) != NULL) {
        char state = '?', *end;
        unsigned long utime = 0, stime = 0;
        FILE *f;
        if (d->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "/proc/%d/task/%s/stat", (int)pid, d->d_name);
        read_line(path, line, sizeof(line));
        if ((end = strrchr(line, ')')) != NULL)
            sscanf(end + 2, "%c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &state, &utime,
                   &stime);
        snprintf(path, sizeof(path), "/proc/%d/task/%s/wchan", (int)pid, d->d_name);
        read_line(path, wchan, sizeof(wchan));
        fprintf(stderr, "  thread %s: state %c, in kernel at %s, %lu+%lu ticks\n", d->d_name, state,
                wchan[0] ? wchan : "-", utime, stime);
        snprintf(path, sizeof(path), "/proc/%d/task/%s/stack", (int)pid, d->d_name);
        if (state == 'D' && (f = fopen(path, "r")) != NULL) {
            while (fgets(line, sizeof(line), f) != NULL)
                fprintf(stderr, "    %s", line);
            fclose(f);
        }
    }
    closedir(dir);
}

/* Send @p sig to every rank but @p rank. */
static void signal_others(int rank, int sig)
{
    for (int r = 0; r < rank_table->nranks; r++)
        if (r != rank && rank_table->pids[r] > 0)
            kill(rank_table->pids[r], sig);
}

void tt_report_hang(int rank)
{
    char cmd[160];
    int expected = 0;

    if (rank_table == NULL || !atomic_compare_exchange_strong(&rank_table->reported, &expected, 1))
        return;
    fprintf(stderr, "[rank %d] a call passed its deadline; the other ranks' threads:\n", rank);
    for (int r = 0; r < rank_table->nranks; r++) {
        if (r == rank || rank_table->pids[r] <= 0)
            continue;
        fprintf(stderr, "rank %d (pid %d):\n", r, (int)rank_table->pids[r]);
        print_threads(rank_table->pids[r]);
    }
    /* Stopped, the others show the moment of the deadline, not their way out after it. */
    signal_others(rank, SIGSTOP);
    for (int r = 0; r < rank_table->nranks; r++) {
        if (r == rank || rank_table->pids[r] <= 0)
            continue;
        /* Where gdb is installed, their stacks. */
        fprintf(stderr, "rank %d (pid %d), stacks:\n", r, (int)rank_table->pids[r]);
        snprintf(cmd, sizeof(cmd),
                 "command -v gdb >/dev/null && timeout 60 gdb -p %d -batch -nx -q "
                 "-ex 'thread apply all bt' </dev/null 1>&2 2>/dev/null",
                 (int)rank_table->pids[r]);
        fflush(stderr);
        if (system(cmd) == -1)
            fprintf(stderr, "  (cannot run gdb)\n");
    }
    fflush(stderr);
    signal_others(rank, SIGCONT);
}

int tt_run_ranks_status(int nranks, tt_rank_fn_t fn, void *arg, int timeout_s, int *statuses)
{
    tutti_unique_id_t id;
    pid_t *pids;
    int failed = 0, alive = nranks;
    time_t deadline = time(NULL) + timeout_s;

    if (nranks > 256 || tt_netns_unique_id(&id) != TUTTI_OK) {
        fprintf(stderr, "tt_run_ranks: cannot set up %d ranks\n", nranks);
        return nranks;
    }
    rank_table = mmap(NULL, sizeof(*rank_table), PROT_READ | PROT_WRITE,
                      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (rank_table == MAP_FAILED) {
        rank_table = NULL;
        fprintf(stderr, "tt_run_ranks: cannot map the rank table\n");
        return nranks;
    }
    rank_table->nranks = nranks;
    pids = rank_table->pids;
    fflush(NULL);
    for (int r = 0; r < nranks; r++) {
        pid_t pid = fork(); /* the table is shared: only the parent writes it */
        if (pid == 0) {
            int rank_failed = tt_netns_enter(r, nranks) != 0 || fn(r, nranks, &id, arg) != 0;
            fflush(NULL);
            _exit(rank_failed);
        }
        pids[r] = pid;
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
    munmap(rank_table, sizeof(*rank_table));
    rank_table = NULL;
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
