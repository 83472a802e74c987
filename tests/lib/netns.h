/*
 * Tests across emulated hosts: with TT_TEST_NETNS="ns0,ns1,..." (network
 * namespaces made by scripts/cluster.sh), forked ranks run in those
 * namespaces, in contiguous blocks (rank r of n on host r * hosts / n), so
 * the library sees several hosts and reaches them over UCX. The bootstrap's
 * rendezvous is created inside the first namespace, at TUTTI_BOOTSTRAP_ADDR
 * (an address of that namespace). Without the variable nothing changes.
 */
#ifndef TT_TESTS_NETNS_H
#define TT_TESTS_NETNS_H

#include "tutti.h"

/* Get the job's unique id, inside the first namespace when TT_TEST_NETNS is set. */
tutti_status_t tt_netns_unique_id(tutti_unique_id_t *id);

/* Move the calling (forked, single-threaded) rank into its namespace, if any; 0 on success. */
int tt_netns_enter(int rank, int nranks);

#endif
