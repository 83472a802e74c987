/*
 * The MoE layout shared by its two halves: layout.c builds it (routing
 * exchange) and answers questions about it, move.c moves data with it
 * (dispatch and combine). The module sits above the collectives: it calls
 * only public tutti_* functions, plus logging and the fp16/bf16 conversions.
 */
#ifndef TT_MOE_MOE_H
#define TT_MOE_MOE_H

#include "tutti.h"

#include <stddef.h>
#include <stdint.h>

/*
 * Tokens cross in "sent order": grouped by destination rank, ascending, and
 * within a destination in token order. The receiver sees them in "received
 * order": by origin rank, then in that rank's token order. Rows are grouped
 * by local expert, then follow received order.
 */
struct tutti_moe_layout {
    tutti_comm_t comm;
    int rank, nranks;
    int local_experts; /* E / n */
    size_t num_tokens; /* T on this rank */

    /* Per rank, in tokens: what this rank sends to it and receives from it. */
    size_t *send_counts, *send_displs, *recv_counts, *recv_displs;
    /* The same in elements for the data exchange (scaled by hidden per call). */
    size_t *xfer_send_counts, *xfer_send_displs, *xfer_recv_counts, *xfer_recv_displs;
    size_t total_sent, total_recv;

    /* Send side: the token at each sent position (total_sent entries), and per
     * token its sent positions in rank order (token_start: T+1 entries,
     * token_pos: total_sent). Combine sums a token's returns in that order. */
    size_t *sent_token;
    size_t *token_start, *token_pos;

    /* Receive side: received token j holds slots slot_start[j] ..
     * slot_start[j+1]-1 (total_recv+1 entries), in local-expert order; each
     * slot names its row and routing weight (rows entries each). */
    size_t rows;
    size_t *expert_rows; /* local_experts entries */
    size_t *slot_start, *slot_row;
    float *slot_weight;
    int *row_rank;     /* rows entries: origin rank */
    size_t *row_token; /* rows entries: token index at the origin */

    /* Staging for dispatch and combine, kept between calls and only grown. */
    void *stage_send, *stage_recv, *acc;
    size_t stage_send_bytes, stage_recv_bytes, acc_bytes;
};

/* Free a layout and everything it holds (NULL is fine). */
void tt_moe_layout_free(struct tutti_moe_layout *layout);

#endif
