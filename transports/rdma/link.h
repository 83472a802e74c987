/*
 * The RDMA transport's insides, shared by its set-up and events (rdma.c)
 * and its data path (link.c); rdma.c's opening comment explains the
 * protocol.
 */
#ifndef TT_RDMA_LINK_H
#define TT_RDMA_LINK_H

#include "transports/rdma/device.h"
#include "transports/rdma/regcache.h"
#include "transports/transport.h"

#include <stdatomic.h>

#define HEADER_BYTES 64u             /* a slot's header; the payload follows */
#define MSG_FIRST 1u                 /* the slot starts a message */
#define MSG_RTS 2u                   /* the slot announces a message to read */
#define READS_MAX 8                  /* RDMA reads in flight per link */
#define READ_PIECE ((size_t)1 << 20) /* bytes per RDMA read */
#define CTRL_ENTRIES 4               /* send-queue entries kept for control writes */
#define WR_ID(link, kind) ((uint64_t)(link) << 2 | (kind))

enum { WR_RECV, WR_SEND, WR_READ, WR_CTRL };

typedef struct rdma_settings {
    char devices[TT_CONFIG_STRING_MAX];
    char gid_index[TT_CONFIG_STRING_MAX];
    uint64_t timeout;
    uint64_t retry_count;
    size_t slots;
    size_t slot_size;
    size_t rndv_threshold;
    int64_t probe_interval;
    size_t reg_cache_bytes;
    size_t reg_cache_entries;
} rdma_settings_t;

/* The header at the start of every slot. */
typedef struct rdma_header {
    uint32_t flags;
    uint32_t len;     /* payload bytes in this slot */
    uint64_t msg_len; /* bytes of the whole message */
    uint64_t tag;
    uint64_t addr; /* MSG_RTS: the sender's buffer */
    uint32_t rkey;
} rdma_header_t;

/* What a peer writes into this rank's memory, per link. */
typedef struct rdma_ctrl {
    _Atomic uint64_t consumed;   /* slots of ours it has taken: credits back */
    _Atomic uint64_t reads_done; /* announced messages of ours it has finished reading */
} rdma_ctrl_t;

/* How peers reach one rail of this rank. */
typedef struct rdma_rail_address {
    uint8_t gid[16];
    uint16_t lid;
    uint8_t link_layer;
    uint8_t mtu;
    uint32_t ctrl_rkey;
    uint64_t ctrl_addr; /* this rank's control words, one per communicator rank */
} rdma_rail_address_t;

/* The address blob: the rails, then the queue pair made for each rank on each rail. */
typedef struct rdma_address {
    uint32_t nrails;
    uint32_t nranks;
    rdma_rail_address_t rails[TT_TRANSPORT_MAX_RAILS];
    uint32_t qpn[]; /* [rank * nrails + rail]; 0 for none */
} rdma_address_t;

/* One device port and what its links share. */
typedef struct rdma_rail {
    tt_rdma_port_t port;
    struct ibv_cq *cq;
    rdma_ctrl_t *ctrl_in;  /* nranks words peers write */
    rdma_ctrl_t *ctrl_out; /* nranks words we write from */
    unsigned char *slots;  /* every link's send and receive slots */
    struct ibv_mr *ctrl_in_mr, *ctrl_out_mr, *slots_mr;
    tt_rdma_regcache_t *regcache; /* user buffers */
} rdma_rail_t;

/* One queue pair: to one peer, on one rail. */
typedef struct rdma_link {
    struct ibv_qp *qp; /* NULL for this rank itself */
    int peer, rail;
    tutti_status_t failed;
    int reported;
    char reason[TT_LINK_REASON_MAX];
    unsigned char *send_slots, *recv_slots;
    rdma_ctrl_t *ctrl_in, *ctrl_out;
    uint64_t remote_ctrl;
    uint32_t remote_rkey;
    uint32_t sq_used; /* send-queue entries posted, not yet completed */
    /* sending */
    tt_xfer_queue_t sends;           /* not wholly posted yet */
    tt_xfer_queue_t awaiting_reader; /* announced, the peer reads them */
    tt_rdma_reg_t *announced_regs;   /* their registrations, a ring of SLOTS */
    uint64_t sent, announced, announced_done;
    /* receiving */
    tt_xfer_queue_t recvs; /* posted; the head is being filled */
    uint64_t arrived, taken;
    int reading; /* the head receive's message is being read */
    uint64_t read_addr;
    uint32_t read_rkey;
    tt_rdma_reg_t read_reg;
    size_t read_posted, read_done;
    int reads_out;
    unsigned char *staging; /* for reads that the receiver combines */
    struct ibv_mr *staging_mr;
    uint64_t reads_finished;
    int64_t last_heard; /* when a completion of this link last came (ns) */
} rdma_link_t;

typedef struct rdma_transport {
    tt_transport_t super;
    const tt_verbs_t *v;
    rdma_settings_t settings;
    int rank, nranks, npeers, nrails;
    int *index_of_rank;
    rdma_rail_t rails[TT_TRANSPORT_MAX_RAILS];
    rdma_link_t *links; /* [peer index * nrails + rail] */
    size_t payload_max; /* slot_size - HEADER_BYTES */
    uint32_t sq_depth;
    size_t read_piece;
} rdma_transport_t;

/* Post receive slot @p index of @p link; 0 on success (ibv_post_recv's result). */
int tt_rdma_post_slot(rdma_transport_t *tl, rdma_link_t *link, size_t index);

/*
 * Mark @p link failed with @p status for @p why, unless it already is, and
 * put its queue pair in the error state. Returns whether it was working.
 */
int tt_rdma_mark_failed(rdma_transport_t *tl, rdma_link_t *link, tutti_status_t status,
                        const char *why);

/* @p link failed: say so once and fail its transfers onto @p done (NULL: at the next progress). */
void tt_rdma_fail_link(rdma_transport_t *tl, rdma_link_t *link, tutti_status_t status,
                       tt_xfer_t **done, const char *why);

/* Fail every transfer of @p link with its status. */
void tt_rdma_drain_link(rdma_link_t *link, tt_xfer_t **done);

/* The data path's transport operations. */
tutti_status_t tt_rdma_send(tt_transport_t *super, tt_xfer_t *x);
tutti_status_t tt_rdma_recv(tt_transport_t *super, tt_xfer_t *x);
int tt_rdma_progress(tt_transport_t *super, tt_xfer_t **done);

#endif
