/*
 * Moving data with an MoE layout (see tutti.h): dispatch packs tokens in
 * sent order, exchanges them with one all-to-all-v and copies each received
 * token into every local expert group it belongs to; combine sums each
 * received token's expert outputs, sends the partial sums back the same way
 * reversed, and sums them per token at the origin.
 *
 * Arguments are checked on the calling rank only, as for every collective:
 * an agreement round per call would cost a round trip on the training step's
 * critical path. Staging buffers live in the layout and only grow, so after
 * the first pair of calls of a given size no memory is allocated.
 */
#include "config.h"

#include "moe/moe.h"

#include "reduce/reduce.h"
#include "util/compiler.h"
#include "util/log.h"

#include <stdlib.h>
#include <string.h>

/* The all-to-all-v's own limit on one rank's buffer (byte offsets in 52 bits). */
#define MAX_BYTES ((size_t)1 << 52)

/* Make *buf_p hold at least @p bytes; its contents are not kept. */
static tutti_status_t grow(void **buf_p, size_t *cap_p, size_t bytes, const char *name)
{
    if (bytes <= *cap_p)
        return TUTTI_OK;
    free(*buf_p);
    *cap_p = 0;
    *buf_p = malloc(bytes);
    if (*buf_p == NULL) {
        tt_error("%s: out of memory for %zu bytes of staging", name, bytes);
        return TUTTI_ERR_NO_MEMORY;
    }
    *cap_p = bytes;
    return TUTTI_OK;
}

/*
 * Common checks. @p out_tokens: this rank's send side holds tokens
 * (dispatch reads T of them, combine writes T), the receive side rows.
 * Sets *row_bytes_p to the bytes of one token.
 */
static tutti_status_t check_call(const char *name, tutti_moe_layout_t l, const void *tokens,
                                 const char *tokens_name, const void *rows, const char *rows_name,
                                 size_t hidden, tutti_datatype_t datatype, size_t *row_bytes_p)
{
    size_t esize = tutti_datatype_size(datatype), most, bytes;

    if (l == NULL) {
        tt_error("%s: layout is NULL", name);
        return TUTTI_ERR_INVALID_ARG;
    }
    if (esize == 0) {
        tt_error("%s: datatype %d is not a tutti_datatype_t", name, (int)datatype);
        return TUTTI_ERR_UNSUPPORTED;
    }
    /* Every buffer and staging area is at most this many tokens long. */
    most = TT_MAX(TT_MAX(l->num_tokens, l->rows), TT_MAX(l->total_sent, l->total_recv));
    if (__builtin_mul_overflow(hidden, esize, row_bytes_p) || *row_bytes_p > MAX_BYTES ||
        __builtin_mul_overflow(most, *row_bytes_p, &bytes) || bytes > MAX_BYTES) {
        tt_error("%s: hidden size %zu is too large for %zu tokens of %zu bytes per element", name,
                 hidden, most, esize);
        return TUTTI_ERR_INVALID_ARG;
    }
    if (hidden > 0 && ((l->num_tokens > 0 && tokens == NULL) || (l->rows > 0 && rows == NULL))) {
        tt_error("%s: %s is NULL but must hold %zu x %zu elements", name,
                 l->num_tokens > 0 && tokens == NULL ? tokens_name : rows_name,
                 l->num_tokens > 0 && tokens == NULL ? l->num_tokens : l->rows, hidden);
        return TUTTI_ERR_INVALID_ARG;
    }
    return TUTTI_OK;
}

/* The exchange's element counts: forward (dispatch) or reversed (combine). */
static void set_counts(tutti_moe_layout_t l, size_t hidden, int reverse)
{
    const size_t *sc = reverse ? l->recv_counts : l->send_counts;
    const size_t *sd = reverse ? l->recv_displs : l->send_displs;
    const size_t *rc = reverse ? l->send_counts : l->recv_counts;
    const size_t *rd = reverse ? l->send_displs : l->recv_displs;

    for (int i = 0; i < l->nranks; i++) {
        l->xfer_send_counts[i] = sc[i] * hidden;
        l->xfer_send_displs[i] = sd[i] * hidden;
        l->xfer_recv_counts[i] = rc[i] * hidden;
        l->xfer_recv_displs[i] = rd[i] * hidden;
    }
}

static tutti_status_t exchange(tutti_moe_layout_t l, tutti_datatype_t datatype)
{
    return tutti_alltoallv(l->stage_send, l->xfer_send_counts, l->xfer_send_displs, l->stage_recv,
                           l->xfer_recv_counts, l->xfer_recv_displs, datatype, l->comm);
}

tutti_status_t tutti_moe_dispatch(tutti_moe_layout_t layout, const void *tokens, size_t hidden,
                                  tutti_datatype_t datatype, void *expert_input)
{
    static const char name[] = "tutti_moe_dispatch";
    tutti_moe_layout_t l = layout;
    const char *src = tokens;
    char *dst = expert_input;
    size_t rb;

    TT_CHECK(
        check_call(name, l, tokens, "tokens", expert_input, "expert_input", hidden, datatype, &rb));
    TT_CHECK(grow(&l->stage_send, &l->stage_send_bytes, l->total_sent * rb, name));
    TT_CHECK(grow(&l->stage_recv, &l->stage_recv_bytes, l->total_recv * rb, name));
    if (rb > 0)
        for (size_t p = 0; p < l->total_sent; p++)
            memcpy((char *)l->stage_send + p * rb, src + l->sent_token[p] * rb, rb);
    set_counts(l, hidden, 0);
    TT_CHECK(exchange(l, datatype));
    if (rb > 0)
        for (size_t j = 0; j < l->total_recv; j++)
            for (size_t s = l->slot_start[j]; s < l->slot_start[j + 1]; s++)
                memcpy(dst + l->slot_row[s] * rb, (const char *)l->stage_recv + j * rb, rb);
    return TUTTI_OK;
}

/* ---------------------------------------------------------------- combine */

/*
 * acc[h] += weight x src[h] for one row, in fp64 for FP64 and fp32
 * otherwise (the product rounded, then the sum: no fused multiply-add, so
 * every CPU gives the same bits).
 */
static void accumulate(void *acc, const void *src, size_t hidden, tutti_datatype_t datatype,
                       float weight)
{
    float *a = acc;
    switch (datatype) {
    case TUTTI_FP64: {
        const double *x = src;
        double *d = acc, w = weight;
        for (size_t h = 0; h < hidden; h++)
            d[h] += w * x[h];
        break;
    }
    case TUTTI_FP32: {
        const float *x = src;
        for (size_t h = 0; h < hidden; h++)
            a[h] += weight * x[h];
        break;
    }
    case TUTTI_FP16: {
        const uint16_t *x = src;
        for (size_t h = 0; h < hidden; h++)
            a[h] += weight * tt_fp16_to_float(x[h]);
        break;
    }
    case TUTTI_BF16: {
        const uint16_t *x = src;
        for (size_t h = 0; h < hidden; h++)
            a[h] += weight * tt_bf16_to_float(x[h]);
        break;
    }
    default: break;
    }
}

/* dst = acc rounded once to the datatype. */
static void store(void *dst, const void *acc, size_t hidden, tutti_datatype_t datatype)
{
    const float *a = acc;
    uint16_t *half = dst;
    switch (datatype) {
    case TUTTI_FP64: memcpy(dst, acc, hidden * sizeof(double)); break;
    case TUTTI_FP32: memcpy(dst, acc, hidden * sizeof(float)); break;
    case TUTTI_FP16:
        for (size_t h = 0; h < hidden; h++)
            half[h] = tt_float_to_fp16(a[h]);
        break;
    case TUTTI_BF16:
        for (size_t h = 0; h < hidden; h++)
            half[h] = tt_float_to_bf16(a[h]);
        break;
    default: break;
    }
}

/*
 * The API asks for no alignment, so when the caller's rows are not aligned
 * for their type the loops above read and write them through a copy.
 */
static int aligned(const void *p, size_t align)
{
    return ((uintptr_t)p & (align - 1)) == 0;
}

tutti_status_t tutti_moe_combine(tutti_moe_layout_t layout, const void *expert_output,
                                 size_t hidden, tutti_datatype_t datatype, void *out)
{
    static const char name[] = "tutti_moe_combine";
    tutti_moe_layout_t l = layout;
    const char *rows = expert_output;
    char *dst = out;
    size_t rb, acc_elem, esize;
    int copy_in;

    TT_CHECK(
        check_call(name, l, out, "out", expert_output, "expert_output", hidden, datatype, &rb));
    if (datatype != TUTTI_FP32 && datatype != TUTTI_FP64 && datatype != TUTTI_FP16 &&
        datatype != TUTTI_BF16) {
        tt_error("%s: datatype %s is not a float type (fp32, fp64, fp16, bf16)", name,
                 tutti_datatype_name(datatype));
        return TUTTI_ERR_UNSUPPORTED;
    }
    esize = tutti_datatype_size(datatype);
    acc_elem = datatype == TUTTI_FP64 ? sizeof(double) : sizeof(float);
    /* The accumulator row, and a bounce row for unaligned rows. */
    if (l->total_recv > 0 || l->num_tokens > 0)
        TT_CHECK(grow(&l->acc, &l->acc_bytes, 2 * hidden * acc_elem, name));
    TT_CHECK(grow(&l->stage_send, &l->stage_send_bytes, l->total_recv * rb, name));
    TT_CHECK(grow(&l->stage_recv, &l->stage_recv_bytes, l->total_sent * rb, name));
    copy_in = !aligned(rows, esize) || !aligned(out, esize);

    /* On the expert rank: one partial sum per received token, local experts in order. */
    for (size_t j = 0; j < l->total_recv && rb > 0; j++) {
        memset(l->acc, 0, hidden * acc_elem);
        for (size_t s = l->slot_start[j]; s < l->slot_start[j + 1]; s++) {
            const void *src = rows + l->slot_row[s] * rb;
            if (copy_in) {
                memcpy((char *)l->acc + hidden * acc_elem, src, rb);
                src = (char *)l->acc + hidden * acc_elem;
            }
            accumulate(l->acc, src, hidden, datatype, l->slot_weight[s]);
        }
        store((char *)l->stage_send + j * rb, l->acc, hidden, datatype);
    }
    set_counts(l, hidden, 1);
    TT_CHECK(exchange(l, datatype));

    /* At the origin: each token's partial sums, in rank order. */
    for (size_t t = 0; t < l->num_tokens && rb > 0; t++) {
        memset(l->acc, 0, hidden * acc_elem);
        for (size_t q = l->token_start[t]; q < l->token_start[t + 1]; q++)
            accumulate(l->acc, (const char *)l->stage_recv + l->token_pos[q] * rb, hidden, datatype,
                       1.0f);
        if (copy_in) {
            store((char *)l->acc + hidden * acc_elem, l->acc, hidden, datatype);
            memcpy(dst + t * rb, (char *)l->acc + hidden * acc_elem, rb);
        } else {
            store(dst + t * rb, l->acc, hidden, datatype);
        }
    }
    return TUTTI_OK;
}
