/*
 * Hosts for tutti-run --hosts: an emulated host is a network namespace (as
 * `ip netns` names them; scripts/cluster.sh makes them), and a rank runs in
 * its host's namespace under `ip netns exec`. These helpers parse the host
 * list, ask a namespace for its address, and find a program the way execvp
 * would, so a missing one is reported before anything starts.
 */
#ifndef TT_TOOLS_RUN_HOSTS_H
#define TT_TOOLS_RUN_HOSTS_H

#include <netinet/in.h>
#include <stddef.h>

#define RUN_HOST_NAME_MAX 64

typedef struct run_host {
    char name[RUN_HOST_NAME_MAX];      /* the namespace */
    char address[INET_ADDRSTRLEN];     /* its IPv4 address for the rendezvous (run_host_query) */
    char interface[RUN_HOST_NAME_MAX]; /* the interface holding that address */
} run_host_t;

/*
 * Splits @p list ("tt-h0,tt-h1") into hosts, names only. Returns the number
 * of hosts with a calloc'ed array in *hosts_p, or -1 after printing what was
 * wrong (an empty or over-long name, a name given twice, no memory).
 */
int run_hosts_parse(const char *list, run_host_t **hosts_p);

/*
 * Enters @p host's namespace in a child process and fills host->address:
 * the IPv4 address of the interface named "rail0" if there is one (the test
 * cluster's first rail), else of the first interface that is up and not a
 * loopback. With @p port_p, also finds a TCP port free on that address in
 * that namespace. Returns 0, or -1 after printing why (no such namespace, not
 * permitted: entering a namespace needs root, no address).
 */
int run_host_query(run_host_t *host, int *port_p);

/*
 * Looks for @p name as execvp would (a name with a slash as is, else along
 * PATH) and requires it to be an executable file. Returns 0, or an errno
 * value (ENOENT, EACCES) describing why it cannot run.
 */
int run_find_program(const char *name);

#endif
