/*
 * Which transport carries each peer of a communicator, and wiring them up
 * (see links.c).
 */
#ifndef TT_API_LINKS_H
#define TT_API_LINKS_H

#include "api/comm.h"

extern const tt_config_table_t tt_links_config_table;

/*
 * The transport that carries a peer on this rank's host (@p same_host) or
 * on another, as TUTTI_TRANSPORTS (in @p overrides or the environment)
 * says: "shm", "ucx", "rdma", or "rdma, else ucx" (auto between hosts: the
 * ranks agree at connection time); NULL when none may (shm only, across
 * hosts) or the setting is invalid (logged).
 */
const char *tt_links_choice(const tt_config_overrides_t *overrides, int same_host);

/*
 * Collective over @p comm, after tt_comm_place: choose a transport per peer
 * (TUTTI_TRANSPORTS), create and connect each over its peers, and fill
 * comm->route and comm->transports. The choice is logged at info level.
 * @return TUTTI_OK; TUTTI_ERR_NO_TRANSPORT when no transport reaches some
 *         peer (logged, naming it); a transport's failure
 */
tutti_status_t tt_comm_connect(tutti_comm_t comm, int64_t deadline);

#endif
