/*
 * Which ranks share a host. Two processes are on the same host when they
 * can share memory and see each other's processes: same kernel boot, same
 * hostname, same network and PID namespaces. Counting the network namespace
 * makes the emulated hosts of the test cluster (one namespace each) distinct
 * hosts, as they are meant to be. Hosts can still share a machine (one
 * kernel, its cores): emulated hosts, containers on one node.
 */
#ifndef TT_TOPO_HOST_H
#define TT_TOPO_HOST_H

#include "util/compiler.h"

#include <stdint.h>

#define TT_HOSTNAME_MAX 64

typedef struct tt_host_id {
    unsigned char digest[32];  /* the host */
    unsigned char machine[32]; /* the kernel boot: the same for every host of one machine */
    char hostname[TT_HOSTNAME_MAX];
} tt_host_id_t;

/* Identify the host this process runs on. */
tutti_status_t tt_host_identify(tt_host_id_t *id);

/* 1 if both ids name the same host. */
int tt_host_same(const tt_host_id_t *a, const tt_host_id_t *b);

/* 1 if both ids' hosts run on the same machine (kernel), perhaps as different hosts. */
int tt_host_same_machine(const tt_host_id_t *a, const tt_host_id_t *b);

#endif
