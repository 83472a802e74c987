/* Measuring the cost model's figures when a communicator is created (see calibrate.c). */
#ifndef TT_API_CALIBRATE_H
#define TT_API_CALIBRATE_H

#include "api/comm.h"

extern const tt_config_table_t tt_calibrate_config_table;

/*
 * Collective over @p comm, whose engine must be running: when
 * TUTTI_CALIBRATE is on, measure reduction speed and each link class and
 * put the slowest figures any rank saw into comm->hosts' cost model, and
 * comm->cluster's unless that came from TUTTI_CLUSTER_FILE. Every rank ends
 * with the same figures.
 */
tutti_status_t tt_calibrate(tutti_comm_t comm);

#endif
