/*
 * Point-to-point groups as a schedule: each message as a send or a receive,
 * in the order posted (transfers to one peer keep that order, which is how
 * they match the peer's). Messages to this rank itself become copies: the
 * k-th send to itself fills the k-th receive from itself.
 */
#include "config.h"

#include "coll/coll.h"

size_t tt_p2p_next_self_recv(const tt_p2p_list_t *l, int rank, size_t *at)
{
    while (*at < l->n && (l->msgs[*at].send || l->msgs[*at].peer != rank))
        (*at)++;
    return *at < l->n ? (*at)++ : l->n;
}

void tt_direct_p2p(const tt_coll_desc_t *d, tt_schedule_t *s)
{
    const tt_p2p_list_t *l = d->p2p;
    size_t self_recv = 0;

    for (size_t i = 0; l != NULL && i < l->n; i++) {
        const tt_p2p_msg_t *m = &l->msgs[i];
        if (m->peer != d->rank)
            (m->send ? tt_sched_send(s, m->peer, tt_ref(TT_BUF_SEND, m->offset), m->bytes, 0,
                                     TT_NO_STEP, TT_NO_STEP)
                     : tt_sched_recv(s, m->peer, tt_ref(TT_BUF_RECV, m->offset), m->bytes,
                                     TT_NO_STEP, TT_NO_STEP));
    }
    /* Copies to itself, paired in order (the caller checked that they pair up). */
    for (size_t i = 0; l != NULL && i < l->n; i++) {
        const tt_p2p_msg_t *m = &l->msgs[i];
        size_t r;
        if (!m->send || m->peer != d->rank)
            continue;
        r = tt_p2p_next_self_recv(l, d->rank, &self_recv);
        if (r < l->n && m->bytes > 0)
            tt_sched_copy(s, tt_ref(TT_BUF_RECV, l->msgs[r].offset),
                          tt_ref(TT_BUF_SEND, m->offset), m->bytes, TT_NO_STEP, TT_NO_STEP);
    }
}
