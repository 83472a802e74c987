/* Hosts for tutti-run --hosts; see run_hosts.h. */
#include "config.h"

#include "run_hosts.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* Where `ip netns add` keeps a namespace so it outlives its processes. */
#define NETNS_RUN_DIR "/run/netns"
#define RAIL0 "rail0"

int run_hosts_parse(const char *list, run_host_t **hosts_p)
{
    size_t n = 1;
    run_host_t *hosts;
    const char *p = list;

    for (const char *c = list; *c != '\0'; c++)
        n += *c == ',';
    hosts = calloc(n, sizeof(*hosts));
    if (hosts == NULL) {
        fprintf(stderr, "tutti-run: out of memory\n");
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        size_t len = strcspn(p, ",");
        if (len == 0 || len >= sizeof(hosts[i].name) || memchr(p, '/', len) != NULL) {
            fprintf(stderr, "tutti-run: --hosts: '%.*s' is not a namespace name\n", (int)len, p);
            free(hosts);
            return -1;
        }
        memcpy(hosts[i].name, p, len);
        for (size_t k = 0; k < i; k++)
            if (strcmp(hosts[k].name, hosts[i].name) == 0) {
                fprintf(stderr, "tutti-run: --hosts: %s is given twice\n", hosts[i].name);
                free(hosts);
                return -1;
            }
        p += len + 1;
    }
    *hosts_p = hosts;
    return (int)n;
}

/* What the child that entered the namespace reports; error[0] != 0 on failure. */
typedef struct query_reply {
    char address[INET_ADDRSTRLEN];
    char interface[RUN_HOST_NAME_MAX];
    int port;
    char error[200];
} query_reply_t;

/* The rendezvous address of the namespace we are in: rail0's, else the first up non-loopback. */
static int pick_address(query_reply_t *reply)
{
    struct ifaddrs *list, *chosen = NULL;

    if (getifaddrs(&list) != 0) {
        snprintf(reply->error, sizeof(reply->error), "cannot list its addresses: %s",
                 strerror(errno));
        return -1;
    }
    for (struct ifaddrs *ifa = list; ifa != NULL; ifa = ifa->ifa_next) {
        if (ifa->ifa_addr == NULL || ifa->ifa_addr->sa_family != AF_INET ||
            (ifa->ifa_flags & IFF_LOOPBACK) || !(ifa->ifa_flags & IFF_UP))
            continue;
        if (strcmp(ifa->ifa_name, RAIL0) == 0) {
            chosen = ifa;
            break;
        }
        if (chosen == NULL)
            chosen = ifa;
    }
    if (chosen == NULL) {
        snprintf(reply->error, sizeof(reply->error),
                 "has no IPv4 address on an interface that is up (besides loopback)");
    } else {
        inet_ntop(AF_INET, &((struct sockaddr_in *)chosen->ifa_addr)->sin_addr, reply->address,
                  sizeof(reply->address));
        snprintf(reply->interface, sizeof(reply->interface), "%s", chosen->ifa_name);
    }
    freeifaddrs(list);
    return chosen != NULL ? 0 : -1;
}

/* A TCP port free on the chosen address, in this namespace. */
static int pick_port(query_reply_t *reply)
{
    struct sockaddr_in addr = {.sin_family = AF_INET};
    socklen_t len = sizeof(addr);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    inet_pton(AF_INET, reply->address, &addr.sin_addr);
    if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0 ||
        getsockname(fd, (struct sockaddr *)&addr, &len) != 0) {
        snprintf(reply->error, sizeof(reply->error), "cannot find a free port on %s: %s",
                 reply->address, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    reply->port = ntohs(addr.sin_port);
    close(fd);
    return 0;
}

/* In the child: enter the namespace, look, report through @p fd. Never returns. */
static void query_child(const char *name, int want_port, int fd)
{
    query_reply_t reply = {0};
    char path[sizeof(NETNS_RUN_DIR) + RUN_HOST_NAME_MAX];
    int ns;

    snprintf(path, sizeof(path), "%s/%s", NETNS_RUN_DIR, name);
    ns = open(path, O_RDONLY | O_CLOEXEC);
    if (ns < 0)
        snprintf(reply.error, sizeof(reply.error), "no such network namespace (%s: %s)", path,
                 strerror(errno));
    else if (setns(ns, CLONE_NEWNET) != 0)
        snprintf(reply.error, sizeof(reply.error), "cannot enter it: %s%s", strerror(errno),
                 errno == EPERM ? " (--hosts needs root)" : "");
    else if (pick_address(&reply) == 0 && want_port)
        pick_port(&reply);
    if (write(fd, &reply, sizeof(reply)) != (ssize_t)sizeof(reply))
        _exit(1);
    _exit(0);
}

int run_host_query(run_host_t *host, int *port_p)
{
    query_reply_t reply = {0};
    int pipefd[2], status;
    ssize_t got;
    pid_t pid;

    /* A child enters the namespace, so tutti-run itself stays where it was started. */
    if (pipe2(pipefd, O_CLOEXEC) != 0) {
        perror("tutti-run: pipe");
        return -1;
    }
    fflush(NULL);
    pid = fork();
    if (pid < 0) {
        perror("tutti-run: fork");
        close(pipefd[0]);
        close(pipefd[1]);
        return -1;
    }
    if (pid == 0) {
        close(pipefd[0]);
        query_child(host->name, port_p != NULL, pipefd[1]);
    }
    close(pipefd[1]);
    do
        got = read(pipefd[0], &reply, sizeof(reply));
    while (got < 0 && errno == EINTR);
    close(pipefd[0]);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (got != (ssize_t)sizeof(reply))
        snprintf(reply.error, sizeof(reply.error), "the look-up failed");
    if (reply.error[0] != '\0') {
        fprintf(stderr, "tutti-run: host %s: %s\n", host->name, reply.error);
        return -1;
    }
    memcpy(host->address, reply.address, sizeof(host->address));
    memcpy(host->interface, reply.interface, sizeof(host->interface));
    if (port_p != NULL)
        *port_p = reply.port;
    return 0;
}

static int executable(const char *path)
{
    struct stat st;

    if (stat(path, &st) != 0)
        return errno;
    if (!S_ISREG(st.st_mode) || access(path, X_OK) != 0)
        return EACCES;
    return 0;
}

int run_find_program(const char *name)
{
    const char *path = getenv("PATH"), *dir;
    int result = ENOENT;

    if (strchr(name, '/') != NULL)
        return executable(name);
    if (name[0] == '\0')
        return ENOENT;
    if (path == NULL)
        path = "/bin:/usr/bin"; /* what execvp searches without PATH */
    for (dir = path;; dir += strcspn(dir, ":") + 1) {
        size_t len = strcspn(dir, ":");
        char candidate[4096];
        int found;

        /* An empty entry means the current directory. */
        if (snprintf(candidate, sizeof(candidate), "%.*s%s%s", (int)len, dir, len > 0 ? "/" : "",
                     name) < (int)sizeof(candidate)) {
            found = executable(candidate);
            if (found == 0)
                return 0;
            if (found == EACCES)
                result = EACCES; /* as execvp: EACCES if something was there but not runnable */
        }
        if (dir[len] == '\0')
            break;
    }
    return result;
}
