/*
 * tutti-run: start N ranks of a program on this host, or N ranks on each of
 * the emulated hosts of the test cluster.
 *
 *   tutti-run -n 4 ./train --steps 100
 *   tutti-run --hosts tt-h0,tt-h1 -n 2 ./train     (4 ranks, 2 per namespace)
 *
 * Every rank gets the environment tutti_comm_init_env() reads (TUTTI_RANK,
 * TUTTI_NRANKS, TUTTI_ADDR, TUTTI_SECRET) and the torchrun names (RANK,
 * WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT). Each
 * output line is prefixed with its rank. If a rank fails (non-zero exit or a
 * signal), the others are stopped (SIGTERM, then SIGKILL after a grace
 * period) and tutti-run exits with the failing rank's code; shared-memory
 * segments a crashed rank left behind are removed.
 *
 * With --bind, rank r runs on one CPU only: the (r mod C)-th of the C CPUs
 * tutti-run itself may use (so tutti sees a real binding, and two ranks of
 * a benchmark cannot land on one core by chance).
 *
 * With --hosts, ranks are numbered host-major and each runs in its host's
 * network namespace under `ip netns exec`, which execs the program: the pid
 * watched is the rank's. The rendezvous is on the first host's address
 * (run_hosts.h says which), on a port free in that namespace.
 */
#include "config.h"

#include "run_hosts.h"
#include "util/random.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
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

/* What every rank is started with. */
typedef struct job {
    int nranks;
    int per_host;      /* ranks per host: LOCAL_WORLD_SIZE */
    run_host_t *hosts; /* --hosts, or NULL: every rank on this host */
    char **argv;       /* the program and its arguments */
    int bind;          /* --bind: pin each rank to one CPU */
    cpu_set_t cpus;    /* the CPUs tutti-run may use, for --bind */
} job_t;

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    interrupted = sig;
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: tutti-run -n N [--hosts NS,NS,...] [--bind] [--timeout SECONDS]\n"
            "                 [--no-prefix] program [args...]\n"
            "  -n, --np N          number of ranks to start on this host (with --hosts: on\n"
            "                      each host)\n"
            "  -H, --hosts LIST    run on these hosts: network namespaces, comma-separated\n"
            "                      (scripts/cluster.sh hosts lists the test cluster's); ranks\n"
            "                      are numbered host-major, the rendezvous is on the first\n"
            "                      host's rail0 address; needs root and ip (iproute2)\n"
            "  -b, --bind          pin rank r to one CPU: the (r mod C)-th of the C CPUs\n"
            "                      tutti-run may use\n"
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

/* --bind: pin the calling process to the (rank mod C)-th of the job's C CPUs. */
static void bind_rank(int rank, const job_t *job)
{
    int count = CPU_COUNT(&job->cpus), k = rank % count;
    cpu_set_t one;

    CPU_ZERO(&one);
    for (int cpu = 0; cpu < CPU_SETSIZE; cpu++)
        if (CPU_ISSET(cpu, &job->cpus) && k-- == 0) {
            CPU_SET(cpu, &one);
            break;
        }
    if (sched_setaffinity(0, sizeof(one), &one) != 0)
        fprintf(stderr, "tutti-run: rank %d: cannot bind to a CPU: %s\n", rank, strerror(errno));
}

/* In the child: the rank's environment, then exec. Never returns. */
static void exec_rank(int rank, const job_t *job, int out_fd, int err_fd)
{
    const char *program = job->argv[0];
    char **argv = job->argv;

    set_env_int("TUTTI_RANK", rank);
    set_env_int("TUTTI_NRANKS", job->nranks);
    set_env_int("RANK", rank);
    set_env_int("WORLD_SIZE", job->nranks);
    set_env_int("LOCAL_RANK", rank % job->per_host);
    set_env_int("LOCAL_WORLD_SIZE", job->per_host);
    if (job->hosts != NULL) {
        const run_host_t *host = &job->hosts[rank / job->per_host];
        int argc = 0;

        /* Communicators made from a unique id listen where the other hosts can reach them. */
        if (getenv("TUTTI_BOOTSTRAP_ADDR") == NULL) {
            char listen[INET_ADDRSTRLEN + 8];
            snprintf(listen, sizeof(listen), "%s:0", host->address);
            setenv("TUTTI_BOOTSTRAP_ADDR", listen, 1);
        }
        while (job->argv[argc] != NULL)
            argc++;
        /* "ip netns exec NS program args..."; the child execs or exits, so this is never freed. */
        argv = calloc((size_t)argc + 5, sizeof(*argv));
        if (argv == NULL)
            _exit(127);
        argv[0] = "ip";
        argv[1] = "netns";
        argv[2] = "exec";
        argv[3] = (char *)host->name;
        memcpy(argv + 4, job->argv, (size_t)argc * sizeof(*argv));
        program = "ip";
    }
    if (job->bind)
        bind_rank(rank, job);
    dup2(out_fd, STDOUT_FILENO);
    dup2(err_fd, STDERR_FILENO);
    execvp(argv[0], argv);
    fprintf(stderr, "tutti-run: cannot run %s: %s\n", program, strerror(errno));
    _exit(127);
}

/*
 * --hosts: every host must be a namespace with an address (checked before any
 * rank starts), the program must exist (ip would report a missing one with
 * its own exit code), and the rendezvous goes to the first host.
 */
static int prepare_hosts(job_t *job, const char *list, char *address, size_t size, int *port_p)
{
    int nhosts = run_hosts_parse(list, &job->hosts), missing;

    if (nhosts < 0)
        return 1;
    if ((long)nhosts * job->per_host > MAX_RANKS) {
        fprintf(stderr, "tutti-run: %d hosts x %d ranks is more than %d ranks\n", nhosts,
                job->per_host, MAX_RANKS);
        return 2;
    }
    job->nranks = nhosts * job->per_host;
    if (run_find_program("ip") != 0) {
        fprintf(stderr, "tutti-run: --hosts needs the ip command (iproute2) in PATH\n");
        return 1;
    }
    missing = run_find_program(job->argv[0]);
    if (missing != 0) {
        fprintf(stderr, "tutti-run: cannot run %s: %s\n", job->argv[0], strerror(missing));
        return 127;
    }
    for (int h = 0; h < nhosts; h++)
        if (run_host_query(&job->hosts[h], h == 0 ? port_p : NULL) != 0)
            return 1;
    snprintf(address, size, "%s", job->hosts[0].address);
    return 0;
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
        {"hosts", required_argument, NULL, 'H'},
        {"timeout", required_argument, NULL, 't'},
        {"no-prefix", no_argument, NULL, 'P'},
        {"bind", no_argument, NULL, 'b'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int nranks = 0, prefix = 1, timeout = 0, opt, first_failure = -1, alive, result = 0, port;
    time_t deadline = 0, kill_at = 0;
    unsigned char secret[32];
    char hex[65], host[INET_ADDRSTRLEN], address[64];
    const char *hosts = NULL;
    job_t job = {0};
    rank_t *ranks;
    struct sigaction sa;

    int bind = 0;

    while ((opt = getopt_long(argc, argv, "+n:H:bt:h", options, NULL)) != -1) {
        switch (opt) {
        case 'n': nranks = atoi(optarg); break;
        case 'H': hosts = optarg; break;
        case 't': timeout = atoi(optarg); break;
        case 'P': prefix = 0; break;
        case 'b': bind = 1; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (nranks < 1 || nranks > MAX_RANKS || optind >= argc) {
        usage(stderr);
        return 2;
    }
    job = (job_t){.nranks = nranks, .per_host = nranks, .argv = argv + optind, .bind = bind};
    if (bind && sched_getaffinity(0, sizeof(job.cpus), &job.cpus) != 0) {
        perror("tutti-run: --bind: sched_getaffinity");
        return 1;
    }
    if (hosts != NULL) {
        int status = prepare_hosts(&job, hosts, host, sizeof(host), &port);
        if (status != 0) {
            if (status == 2)
                usage(stderr);
            free(job.hosts);
            return status;
        }
        nranks = job.nranks;
    } else {
        port = pick_port();
        if (port < 0) {
            fprintf(stderr, "tutti-run: cannot find a free port on 127.0.0.1\n");
            return 1;
        }
        snprintf(host, sizeof(host), "127.0.0.1");
    }
    if (tt_random_bytes(secret, sizeof(secret)) != TUTTI_OK) {
        free(job.hosts);
        return 1;
    }
    tt_hex_encode(secret, sizeof(secret), hex);
    snprintf(address, sizeof(address), "%s:%d", host, port);
    setenv("TUTTI_ADDR", address, 1);
    setenv("MASTER_ADDR", host, 1);
    set_env_int("MASTER_PORT", port);
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
            exec_rank(r, &job, out[1], err[1]);
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
    free(job.hosts);
    return result;
}
