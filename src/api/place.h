/* Where a communicator's ranks run, and the cluster view its plans use (see place.c). */
#ifndef TT_API_PLACE_H
#define TT_API_PLACE_H

#include "api/comm.h"

extern const tt_config_table_t tt_place_config_table;

/*
 * Collective over @p comm: fill comm->hosts (where the ranks physically run,
 * with each rank's NUMA node and nearest NIC, and the rails), comm->cluster
 * (the planning view: the same, or TUTTI_CLUSTER_FILE's) and
 * comm->local_ranks.
 */
tutti_status_t tt_comm_place(tutti_comm_t comm, int64_t deadline);

#endif
