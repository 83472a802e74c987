/*
 * tutti-run: start N ranks of a program on this host.
 *
 *   tutti-run -n 4 ./train --steps 100
 *
 * Every rank gets the environment tutti_comm_init_env() reads (TUTTI_RANK,
 * TUTTI_NRANKS, TUTTI_ADDR, TUTTI_SECRET) and the torchrun names (RANK,
 * WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT). Each
 * output line is prefixed with its rank. If a rank fails (non-zero exit or a
 * signal), the others are stopped (SIGTERM, then SIGKILL after a grace
 * period) and tutti-run exits with the failing rank's code; shared-memory
 * segments a crashed rank left behind are removed.
 */
#include "config.h"

#include "util/random.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_RANKS 1024
#define LINE_MAX_BYTES 4096
#define GRACE_SECONDS 3

typedef struct stream {
    int fd;    /* read end of the rank's stdout or stderr, -1 when closed */
    FILE *out; /* where its lines go */
    char line[LINE_MAX_BYTES];
    size_t len;
} stream_t;

typedef struct rank {
    pid_t pid;
    int pidfd;  /* readable when the rank exits: tells us at once who died first */
    int status; /* wait status once exited */
    int exited;
    stream_t streams[2];
} rank_t;

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    interrupted = sig;
}

static void usage(FILE *out)
{
    fprintf(out, "usage: tutti-run -n N [--timeout SECONDS] [--no-prefix] program [args...]\n"
                 "  -n, --np N          number of ranks to start on this host\n"
                 "  -t, --timeout S     stop every rank after S seconds (exit code 124)\n"
                 "      --no-prefix     do not prefix output lines with the rank\n"
                 "  -h, --help          this text\n");
}

/* A free TCP port on the loopback interface for rank 0's rendezvous. */
static int pick_port(void)
{
    struct sockaddr_in addr = {0};
    socklen_t len = sizeof(addr);
    int port = -1, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && bind(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0 &&
        getsockname(fd, (struct sockaddr *)&addr, &len) == 0)
        port = ntohs(addr.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

static void set_env_int(const char *name, int value)
{
    char text[32];
    snprintf(text, sizeof(text), "%d", value);
    setenv(name, text, 1);
}

/* In the child: the rank's environment, then exec. Never returns. */
static void exec_rank(int rank, int nranks, char **argv, int out_fd, int err_fd)
{
    set_env_int("TUTTI_RANK", rank);
    set_env_int("TUTTI_NRANKS", nranks);
    set_env_int("RANK", rank);
    set_env_int("WORLD_SIZE", nranks);
    set_env_int("LOCAL_RANK", rank);
    set_env_int("LOCAL_WORLD_SIZE", nranks);
    dup2(out_fd, STDOUT_FILENO);
    dup2(err_fd, STDERR_FILENO);
    execvp(argv[0], argv);
    fprintf(stderr, "tutti-run: cannot run %s: %s\n", argv[0], strerror(errno));
    _exit(127);
}

static void emit(stream_t *s, int rank, int prefix)
{
    if (prefix)
        fprintf(s->out, "[%d] %.*s\n", rank, (int)s->len, s->line);
    else
        fprintf(s->out, "%.*s\n", (int)s->len, s->line);
    fflush(s->out);
    s->len = 0;
}

/* Read what a stream has and print its complete lines. */
static void drain(stream_t *s, int rank, int prefix)
{
    char buf[LINE_MAX_BYTES];
    ssize_t n = read(s->fd, buf, sizeof(buf));

    if (n <= 0) {
        if (n < 0 && errno == EINTR)
            return;
        if (s->len > 0)
            emit(s, rank, prefix);
        close(s->fd);
        s->fd = -1;
        return;
    }
    for (ssize_t i = 0; i < n; i++) {
        if (buf[i] == '\n' || s->len == sizeof(s->line)) {
            emit(s, rank, prefix);
            if (buf[i] == '\n')
                continue;
        }
        s->line[s->len++] = buf[i];
    }
}

static void signal_all(rank_t *ranks, int nranks, int sig)
{
    for (int r = 0; r < nranks; r++)
        if (!ranks[r].exited)
            kill(ranks[r].pid, sig);
}

static void describe_exit(int rank, int status)
{
    if (WIFSIGNALED(status))
        fprintf(stderr, "tutti-run: rank %d was killed by signal %d (%s)\n", rank, WTERMSIG(status),
                strsignal(WTERMSIG(status)));
    else
        fprintf(stderr, "tutti-run: rank %d exited with status %d\n", rank, WEXITSTATUS(status));
}

static int exit_code_of(int status)
{
    return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
}

/* Remove shared-memory segments named after a rank that died before unlinking them. */
static void sweep_segments(const rank_t *ranks, int nranks)
{
    DIR *dir = opendir("/dev/shm");
    struct dirent *entry;

    if (dir == NULL)
        return;
    while ((entry = readdir(dir)) != NULL) {
        for (int r = 0; r < nranks; r++) {
            char prefix[64], path[320];
            snprintf(prefix, sizeof(prefix), "tutti-shm-%d-", (int)ranks[r].pid);
            if (strncmp(entry->d_name, prefix, strlen(prefix)) != 0)
                continue;
            snprintf(path, sizeof(path), "/dev/shm/%s", entry->d_name);
            if (unlink(path) == 0)
                fprintf(stderr, "tutti-run: removed %s left by rank %d\n", path, r);
        }
    }
    closedir(dir);
}

int main(int argc, char **argv)
{
    static const struct option options[] = {
        {"np", required_argument, NULL, 'n'},
        {"timeout", required_argument, NULL, 't'},
        {"no-prefix", no_argument, NULL, 'P'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int nranks = 0, prefix = 1, timeout = 0, opt, first_failure = -1, alive, result = 0;
    time_t deadline = 0, kill_at = 0;
    unsigned char secret[32];
    char hex[65], address[64];
    rank_t *ranks;
    struct sigaction sa;

    while ((opt = getopt_long(argc, argv, "+n:t:h", options, NULL)) != -1) {
        switch (opt) {
        case 'n': nranks = atoi(optarg); break;
        case 't': timeout = atoi(optarg); break;
        case 'P': prefix = 0; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (nranks < 1 || nranks > MAX_RANKS || optind >= argc) {
        usage(stderr);
        return 2;
    }
    if (tt_random_bytes(secret, sizeof(secret)) != TUTTI_OK)
        return 1;
    tt_hex_encode(secret, sizeof(secret), hex);
    {
        int port = pick_port();
        if (port < 0) {
            fprintf(stderr, "tutti-run: cannot find a free port on 127.0.0.1\n");
            return 1;
        }
        snprintf(address, sizeof(address), "127.0.0.1:%d", port);
        setenv("TUTTI_ADDR", address, 1);
        setenv("MASTER_ADDR", "127.0.0.1", 1);
        set_env_int("MASTER_PORT", port);
    }
    setenv("TUTTI_SECRET", hex, 1);

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    ranks = calloc((size_t)nranks, sizeof(*ranks));
    if (ranks == NULL)
        return 1;
    fflush(NULL);
    for (int r = 0; r < nranks; r++) {
        int out[2], err[2];
        if (pipe(out) != 0 || pipe(err) != 0) {
            perror("tutti-run: pipe");
            return 1;
        }
        ranks[r].pid = fork();
        if (ranks[r].pid < 0) {
            perror("tutti-run: fork");
            signal_all(ranks, r, SIGKILL);
            return 1;
        }
        if (ranks[r].pid == 0) {
            close(out[0]);
            close(err[0]);
            for (int k = 0; k < r; k++)
                for (int s = 0; s < 2; s++)
                    close(ranks[k].streams[s].fd);
            exec_rank(r, nranks, argv + optind, out[1], err[1]);
        }
        close(out[1]);
        close(err[1]);
        ranks[r].pidfd = (int)syscall(SYS_pidfd_open, ranks[r].pid, 0);
        ranks[r].streams[0] = (stream_t){.fd = out[0], .out = stdout};
        ranks[r].streams[1] = (stream_t){.fd = err[0], .out = stderr};
    }
    if (timeout > 0)
        deadline = time(NULL) + timeout;

    for (alive = nranks;;) {
        struct pollfd pfds[3 * MAX_RANKS];
        int which[3 * MAX_RANKS], n = 0, status;
        pid_t pid;

        for (int r = 0; r < nranks; r++) {
            for (int s = 0; s < 2; s++)
                if (ranks[r].streams[s].fd >= 0) {
                    pfds[n] = (struct pollfd){ranks[r].streams[s].fd, POLLIN, 0};
                    which[n++] = 2 * r + s;
                }
            if (!ranks[r].exited && ranks[r].pidfd >= 0) {
                pfds[n] = (struct pollfd){ranks[r].pidfd, POLLIN, 0};
                which[n++] = -1;
            }
        }
        if (n == 0 && alive == 0)
            break;
        if (poll(pfds, (nfds_t)n, 100) > 0)
            for (int i = 0; i < n; i++)
                if (pfds[i].revents && which[i] >= 0)
                    drain(&ranks[which[i] / 2].streams[which[i] % 2], which[i] / 2, prefix);

        while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
            for (int r = 0; r < nranks; r++) {
                if (ranks[r].pid != pid)
                    continue;
                ranks[r].exited = 1;
                ranks[r].status = status;
                if (ranks[r].pidfd >= 0)
                    close(ranks[r].pidfd);
                alive--;
                if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
                    continue;
                /* Report every rank that failed by itself, not those we stopped. */
                if (kill_at == 0 || !WIFSIGNALED(status))
                    describe_exit(r, status);
                if (first_failure < 0) {
                    first_failure = r;
                    if (alive > 0)
                        fprintf(stderr, "tutti-run: stopping the other %d ranks\n", alive);
                    signal_all(ranks, nranks, SIGTERM);
                    kill_at = time(NULL) + GRACE_SECONDS;
                }
            }
        }
        if (interrupted && kill_at == 0) {
            fprintf(stderr, "tutti-run: got signal %d; stopping all ranks\n", (int)interrupted);
            signal_all(ranks, nranks, SIGTERM);
            kill_at = time(NULL) + GRACE_SECONDS;
            result = 128 + interrupted;
        }
        if (deadline != 0 && time(NULL) >= deadline && kill_at == 0) {
            fprintf(stderr, "tutti-run: timeout of %d s reached; stopping all ranks\n", timeout);
            signal_all(ranks, nranks, SIGTERM);
            kill_at = time(NULL) + GRACE_SECONDS;
            result = 124;
        }
        if (kill_at != 0 && time(NULL) >= kill_at && alive > 0) {
            signal_all(ranks, nranks, SIGKILL);
            kill_at = time(NULL) + 3600;
        }
    }
    sweep_segments(ranks, nranks);
    if (first_failure >= 0 && result == 0)
        result = exit_code_of(ranks[first_failure].status);
    if (result == 0)
        for (int r = 0; r < nranks; r++)
            if (!WIFEXITED(ranks[r].status) || WEXITSTATUS(ranks[r].status) != 0)
                result = exit_code_of(ranks[r].status);
    free(ranks);
    return result;
}
