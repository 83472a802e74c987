/* The shared-memory transport's ops table (see shm.c). */
#ifndef TT_SHM_SHM_H
#define TT_SHM_SHM_H

#include "transports/transport.h"

extern const tt_transport_ops_t tt_shm_transport_ops;

#endif
