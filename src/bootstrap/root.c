/*
 * The rendezvous root: a single thread in rank 0's process serving every
 * rank's control connection with one poll() loop, so that no connection, and
 * certainly no stranger's, can stall the others. See wire.h for the protocol.
 */
#include "config.h"

#include "bootstrap/bootstrap.h"

#include "util/log.h"
#include "util/random.h"
#include "util/time.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A stranger gets this long to prove it knows the secret. */
#define ROOT_GREETING_TIMEOUT_NS (5 * TT_NS_PER_S)
/* Unauthenticated connections held at once; more are closed on arrival. */
#define ROOT_MAX_GREETING 64
/* Refusals logged one by one before the root goes quiet about them. */
#define ROOT_REFUSAL_LOG_LIMIT 20

typedef struct buffer {
    unsigned char *data;
    size_t len, cap;
} buffer_t;

typedef enum conn_state { CONN_FREE, CONN_GREETING, CONN_RANK } conn_state_t;

typedef struct conn {
    int fd;
    conn_state_t state;
    int rank;
    int64_t greeting_deadline;
    unsigned char nonce[TT_WIRE_NONCE_BYTES];
    char name[TT_ADDR_TEXT_MAX];
    buffer_t in, out;
} conn_t;

typedef enum rank_state { RANK_ABSENT, RANK_PRESENT, RANK_LEFT, RANK_FAILED } rank_state_t;

/* An all-gather in progress on one context. */
typedef struct gather {
    uint64_t ctx;
    int nmembers, count;
    size_t len;
    unsigned char *data;
    int *rank_of_member; /* -1 until the member contributed */
    struct gather *next;
} gather_t;

struct tt_bootstrap_root {
    pthread_t thread;
    int listen_fd;
    int wake_pipe[2];
    int nranks;
    unsigned char secret[TT_WIRE_SECRET_BYTES];
    int64_t arrival_deadline, failure_timeout_ns;
    conn_t *conns;
    size_t nconns;
    int *rank_conn;
    rank_state_t *rank_state;
    int arrived, greeting, refusals, missing_sent;
    gather_t *gathers;
    atomic_int stopping;
    _Atomic int64_t stop_deadline;
};

static tutti_status_t buffer_append(buffer_t *b, const void *data, size_t len)
{
    if (b->len + len > b->cap) {
        size_t cap = TT_MAX(b->cap * 2, b->len + len);
        unsigned char *grown = realloc(b->data, cap);
        if (grown == NULL)
            return TUTTI_ERR_NO_MEMORY;
        b->data = grown;
        b->cap = cap;
    }
    memcpy(b->data + b->len, data, len);
    b->len += len;
    return TUTTI_OK;
}

static void buffer_consume(buffer_t *b, size_t len)
{
    memmove(b->data, b->data + len, b->len - len);
    b->len -= len;
}

static void conn_close(tt_bootstrap_root_t *root, conn_t *c)
{
    if (c->state == CONN_GREETING)
        root->greeting--;
    if (c->state == CONN_RANK && root->rank_conn[c->rank] == (int)(c - root->conns))
        root->rank_conn[c->rank] = -1;
    close(c->fd);
    free(c->in.data);
    free(c->out.data);
    memset(c, 0, sizeof(*c));
    c->fd = -1;
    c->state = CONN_FREE;
}

/* Write what is queued without blocking; the rest goes when poll says so. */
static void conn_flush(conn_t *c)
{
    while (c->out.len > 0) {
        ssize_t n = send(c->fd, c->out.data, c->out.len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n <= 0)
            return;
        buffer_consume(&c->out, (size_t)n);
    }
}

static void conn_send(conn_t *c, uint32_t type, uint64_t ctx, int32_t a, int32_t b,
                      const void *payload, size_t len)
{
    tt_wire_header_t h = {type, (uint32_t)len, ctx, a, b};
    if (buffer_append(&c->out, &h, sizeof(h)) != TUTTI_OK ||
        buffer_append(&c->out, payload, len) != TUTTI_OK) {
        tt_error("bootstrap root: out of memory queueing a message for %s", c->name);
        return;
    }
    conn_flush(c);
}

/* Refuse @p c for @p reason; @p code goes in the header's a (TT_WIRE_REFUSE_TAKEN, else 0). */
static void refuse(tt_bootstrap_root_t *root, conn_t *c, const char *reason, int32_t code)
{
    if (root->refusals++ < ROOT_REFUSAL_LOG_LIMIT)
        tt_warn("bootstrap root: refused connection from %s: %s", c->name, reason);
    else if (root->refusals == ROOT_REFUSAL_LOG_LIMIT + 1)
        tt_warn("bootstrap root: refusing more connections; not logging them any more");
    conn_send(c, TT_WIRE_REFUSE, 0, code, 0, reason, strlen(reason));
    conn_close(root, c);
}

static void broadcast(tt_bootstrap_root_t *root, uint32_t type, int32_t a, const void *payload,
                      size_t len)
{
    for (int r = 0; r < root->nranks; r++)
        if (root->rank_conn[r] >= 0)
            conn_send(&root->conns[root->rank_conn[r]], type, 0, a, 0, payload, len);
}

/* Record that @p rank is gone for good and tell every survivor. */
static void rank_failed(tt_bootstrap_root_t *root, int rank, const char *reason)
{
    if (root->rank_state[rank] == RANK_FAILED || root->rank_state[rank] == RANK_LEFT)
        return;
    root->rank_state[rank] = RANK_FAILED;
    tt_warn("bootstrap root: rank %d failed: %s", rank, reason);
    broadcast(root, TT_WIRE_FAILED, rank, reason, strlen(reason));
}

static void greet(tt_bootstrap_root_t *root, conn_t *c, const tt_wire_header_t *h,
                  const tt_wire_hello_t *hello)
{
    unsigned char expected[TT_SHA256_BYTES], reply[TT_SHA256_BYTES];

    if (h->type != TT_WIRE_HELLO || h->len != sizeof(*hello)) {
        refuse(root, c, "not a tutti rank (unexpected greeting)", 0);
        return;
    }
    tt_wire_client_mac(root->secret, c->nonce, hello->nonce, h->a, h->b, expected);
    if (!tt_digest_equal(expected, hello->mac, sizeof(expected))) {
        refuse(root, c, "wrong job secret", 0);
        return;
    }
    if (h->b != root->nranks || h->a < 0 || h->a >= root->nranks) {
        refuse(root, c, "rank or job size does not match this job", 0);
        return;
    }
    if (root->rank_state[h->a] != RANK_ABSENT) {
        refuse(root, c, "this rank has already joined", TT_WIRE_REFUSE_TAKEN);
        return;
    }
    root->greeting--;
    c->state = CONN_RANK;
    c->rank = h->a;
    root->rank_conn[c->rank] = (int)(c - root->conns);
    root->rank_state[c->rank] = RANK_PRESENT;
    root->arrived++;
    tt_sock_set_liveness(c->fd, root->failure_timeout_ns);
    tt_wire_root_mac(root->secret, c->nonce, hello->nonce, reply);
    conn_send(c, TT_WIRE_WELCOME, 0, 0, 0, reply, sizeof(reply));
    tt_debug("bootstrap root: rank %d joined from %s (%d of %d)", c->rank, c->name, root->arrived,
             root->nranks);
}

static gather_t *gather_find(tt_bootstrap_root_t *root, uint64_t ctx)
{
    for (gather_t *g = root->gathers; g != NULL; g = g->next)
        if (g->ctx == ctx)
            return g;
    return NULL;
}

static void gather_free(tt_bootstrap_root_t *root, gather_t *g)
{
    gather_t **link = &root->gathers;
    while (*link != g)
        link = &(*link)->next;
    *link = g->next;
    free(g->data);
    free(g->rank_of_member);
    free(g);
}

static gather_t *gather_create(tt_bootstrap_root_t *root, const tt_wire_header_t *h)
{
    gather_t *g = calloc(1, sizeof(*g));
    if (g == NULL)
        return NULL;
    g->ctx = h->ctx;
    g->nmembers = h->b;
    g->len = h->len;
    g->data = malloc(TT_MAX((size_t)h->b * h->len, 1));
    g->rank_of_member = malloc((size_t)h->b * sizeof(int));
    if (g->data == NULL || g->rank_of_member == NULL) {
        free(g->data);
        free(g->rank_of_member);
        free(g);
        return NULL;
    }
    for (int i = 0; i < g->nmembers; i++)
        g->rank_of_member[i] = -1;
    g->next = root->gathers;
    root->gathers = g;
    return g;
}

/* Returns 0 if the contribution was malformed (the rank broke the protocol). */
static int gather_contribute(tt_bootstrap_root_t *root, conn_t *c, const tt_wire_header_t *h,
                             const void *payload)
{
    gather_t *g;

    if (h->b < 1 || h->b > root->nranks || h->a < 0 || h->a >= h->b)
        return 0;
    if ((size_t)h->b * h->len > TT_WIRE_MAX_PAYLOAD)
        return 0;
    g = gather_find(root, h->ctx);
    if (g == NULL && (g = gather_create(root, h)) == NULL) {
        tt_error("bootstrap root: out of memory for an all-gather of %d members", h->b);
        return 0;
    }
    if (g->nmembers != h->b || g->len != h->len || g->rank_of_member[h->a] >= 0)
        return 0;
    memcpy(g->data + (size_t)h->a * g->len, payload, g->len);
    g->rank_of_member[h->a] = c->rank;
    if (++g->count < g->nmembers)
        return 1;
    for (int m = 0; m < g->nmembers; m++) {
        int idx = root->rank_conn[g->rank_of_member[m]];
        if (idx >= 0)
            conn_send(&root->conns[idx], TT_WIRE_GATHERED, g->ctx, 0, g->nmembers, g->data,
                      (size_t)g->nmembers * g->len);
    }
    gather_free(root, g);
    return 1;
}

static void handle_rank_message(tt_bootstrap_root_t *root, conn_t *c, const tt_wire_header_t *h,
                                const unsigned char *payload)
{
    char reason[TT_WIRE_REASON_MAX + 40];
    int rank = c->rank;

    switch (h->type) {
    case TT_WIRE_GATHER:
        if (gather_contribute(root, c, h, payload))
            return;
        conn_close(root, c);
        rank_failed(root, rank, "broke the rendezvous protocol (bad all-gather)");
        return;
    case TT_WIRE_REPORT:
        if (h->a >= 0 && h->a < root->nranks) {
            snprintf(reason, sizeof(reason), "reported by rank %d: %.*s", rank,
                     (int)TT_MIN(h->len, TT_WIRE_REASON_MAX), (const char *)payload);
            rank_failed(root, h->a, reason);
        }
        return;
    case TT_WIRE_ABORT:
        conn_close(root, c);
        rank_failed(root, rank, "aborted its communicator");
        return;
    case TT_WIRE_BYE:
        conn_close(root, c);
        if (root->rank_state[rank] == RANK_PRESENT)
            root->rank_state[rank] = RANK_LEFT;
        return;
    default:
        conn_close(root, c);
        rank_failed(root, rank, "broke the rendezvous protocol (unknown message)");
        return;
    }
}

/* Parse every complete message in the input buffer. */
static void conn_process(tt_bootstrap_root_t *root, conn_t *c)
{
    while (c->state != CONN_FREE && c->in.len >= sizeof(tt_wire_header_t)) {
        tt_wire_header_t h;
        memcpy(&h, c->in.data, sizeof(h));
        if (c->state == CONN_GREETING && h.len != sizeof(tt_wire_hello_t)) {
            refuse(root, c, "not a tutti rank (unexpected greeting)", 0);
            return;
        }
        if (h.len > TT_WIRE_MAX_PAYLOAD) {
            int rank = c->rank;
            conn_close(root, c);
            rank_failed(root, rank, "sent an oversized message");
            return;
        }
        if (c->in.len < sizeof(h) + h.len)
            return;
        if (c->state == CONN_GREETING) {
            tt_wire_hello_t hello;
            memcpy(&hello, c->in.data + sizeof(h), sizeof(hello));
            buffer_consume(&c->in, sizeof(h) + h.len);
            greet(root, c, &h, &hello);
        } else {
            handle_rank_message(root, c, &h, c->in.data + sizeof(h));
            if (c->state != CONN_FREE)
                buffer_consume(&c->in, sizeof(h) + h.len);
        }
    }
}

static void conn_read(tt_bootstrap_root_t *root, conn_t *c)
{
    unsigned char chunk[65536];
    ssize_t n = recv(c->fd, chunk, sizeof(chunk), MSG_DONTWAIT);

    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        int rank = c->rank, was_rank = c->state == CONN_RANK;
        conn_close(root, c);
        if (was_rank)
            rank_failed(root, rank, "its connection to the rendezvous closed (process died?)");
        return;
    }
    /* A greeting never needs more than one header and one hello. */
    if (c->state == CONN_GREETING &&
        c->in.len + (size_t)n > sizeof(tt_wire_header_t) + sizeof(tt_wire_hello_t)) {
        refuse(root, c, "not a tutti rank (oversized greeting)", 0);
        return;
    }
    if (buffer_append(&c->in, chunk, (size_t)n) != TUTTI_OK) {
        tt_error("bootstrap root: out of memory reading from %s", c->name);
        return;
    }
    conn_process(root, c);
}

static conn_t *conn_slot(tt_bootstrap_root_t *root)
{
    conn_t *grown;
    for (size_t i = 0; i < root->nconns; i++)
        if (root->conns[i].state == CONN_FREE)
            return &root->conns[i];
    grown = realloc(root->conns, (root->nconns + 8) * sizeof(*grown));
    if (grown == NULL)
        return NULL;
    root->conns = grown;
    for (size_t i = root->nconns; i < root->nconns + 8; i++) {
        memset(&grown[i], 0, sizeof(grown[i]));
        grown[i].fd = -1;
    }
    root->nconns += 8;
    return &root->conns[root->nconns - 8];
}

static void accept_one(tt_bootstrap_root_t *root)
{
    tt_wire_challenge_t challenge = {TT_WIRE_VERSION, {0}};
    int fd = accept4(root->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    conn_t *c;

    if (fd < 0)
        return;
    if (root->greeting >= ROOT_MAX_GREETING || (c = conn_slot(root)) == NULL) {
        char name[TT_ADDR_TEXT_MAX];
        tt_sock_peer_name(fd, name);
        if (root->refusals++ < ROOT_REFUSAL_LOG_LIMIT)
            tt_warn("bootstrap root: refused connection from %s: too many unauthenticated "
                    "connections",
                    name);
        close(fd);
        return;
    }
    c->fd = fd;
    c->state = CONN_GREETING;
    c->rank = -1;
    c->greeting_deadline = tt_time_ns() + ROOT_GREETING_TIMEOUT_NS;
    tt_sock_peer_name(fd, c->name);
    root->greeting++;
    if (tt_random_bytes(c->nonce, sizeof(c->nonce)) != TUTTI_OK) {
        conn_close(root, c);
        return;
    }
    memcpy(challenge.nonce, c->nonce, sizeof(c->nonce));
    conn_send(c, TT_WIRE_CHALLENGE, 0, 0, 0, &challenge, sizeof(challenge));
}

static void check_deadlines(tt_bootstrap_root_t *root, int64_t now)
{
    for (size_t i = 0; i < root->nconns; i++)
        if (root->conns[i].state == CONN_GREETING && now > root->conns[i].greeting_deadline)
            refuse(root, &root->conns[i], "did not authenticate in time", 0);

    if (root->arrived < root->nranks && !root->missing_sent && now > root->arrival_deadline) {
        int32_t *missing = malloc((size_t)root->nranks * sizeof(int32_t));
        char list[256];
        int n = 0, used = 0;
        if (missing == NULL)
            return;
        for (int r = 0; r < root->nranks; r++) {
            if (root->rank_state[r] != RANK_ABSENT)
                continue;
            missing[n++] = r;
            if (used < (int)sizeof(list) - 16)
                used += snprintf(list + used, sizeof(list) - (size_t)used, "%s%d",
                                 n > 1 ? ", " : "", r);
        }
        tt_error("bootstrap root: %d of %d ranks never arrived: %s", n, root->nranks, list);
        broadcast(root, TT_WIRE_MISSING, n, missing, (size_t)n * sizeof(int32_t));
        root->missing_sent = 1;
        free(missing);
    }
}

static int rank_conns_open(const tt_bootstrap_root_t *root)
{
    for (int r = 0; r < root->nranks; r++)
        if (root->rank_conn[r] >= 0)
            return 1;
    return 0;
}

static int root_finished(tt_bootstrap_root_t *root, int64_t now)
{
    if (atomic_load(&root->stopping) && now >= atomic_load(&root->stop_deadline))
        return 1;
    /* Everyone came and everyone went (or start-up failed and everyone was told). */
    return (root->arrived == root->nranks || root->missing_sent) && !rank_conns_open(root);
}

static void *root_main(void *arg)
{
    tt_bootstrap_root_t *root = arg;
    struct pollfd *pfds = NULL;

    for (;;) {
        int64_t now = tt_time_ns();
        size_t n = 0;
        struct pollfd *grown;

        check_deadlines(root, now);
        if (root_finished(root, now))
            break;
        grown = realloc(pfds, (root->nconns + 2) * sizeof(*pfds));
        if (grown == NULL) {
            tt_error("bootstrap root: out of memory; stopping");
            break;
        }
        pfds = grown;
        pfds[n++] = (struct pollfd){root->listen_fd, POLLIN, 0};
        pfds[n++] = (struct pollfd){root->wake_pipe[0], POLLIN, 0};
        for (size_t i = 0; i < root->nconns; i++) {
            conn_t *c = &root->conns[i];
            if (c->state != CONN_FREE)
                pfds[n++] = (struct pollfd){c->fd, (short)(POLLIN | (c->out.len ? POLLOUT : 0)), 0};
        }
        /* Wake at least every 100 ms for greeting, arrival and stop deadlines. */
        if (poll(pfds, n, 100) < 0 && errno != EINTR)
            break;
        if (pfds[0].revents & POLLIN)
            accept_one(root);
        if (pfds[1].revents & POLLIN) {
            char drain[16];
            if (read(root->wake_pipe[0], drain, sizeof(drain)) < 0)
                tt_debug("bootstrap root: wake-up read failed: %s", strerror(errno));
        }
        for (size_t k = 2; k < n; k++) {
            for (size_t i = 0; i < root->nconns; i++) {
                conn_t *c = &root->conns[i];
                if (c->state == CONN_FREE || c->fd != pfds[k].fd)
                    continue;
                if (pfds[k].revents & POLLOUT)
                    conn_flush(c);
                if (pfds[k].revents & (POLLIN | POLLHUP | POLLERR))
                    conn_read(root, c);
                break;
            }
        }
    }
    free(pfds);
    return NULL;
}

tutti_status_t tt_bootstrap_root_start(int listen_fd, int nranks,
                                       const unsigned char secret[TT_WIRE_SECRET_BYTES],
                                       int64_t arrival_timeout_ns, int64_t failure_timeout_ns,
                                       tt_bootstrap_root_t **root_p)
{
    tt_bootstrap_root_t *root = calloc(1, sizeof(*root));
    tutti_status_t status = TUTTI_ERR_NO_MEMORY;

    if (root == NULL)
        return TUTTI_ERR_NO_MEMORY;
    root->listen_fd = listen_fd;
    root->nranks = nranks;
    memcpy(root->secret, secret, TT_WIRE_SECRET_BYTES);
    root->arrival_deadline = tt_deadline_after(arrival_timeout_ns);
    root->failure_timeout_ns = failure_timeout_ns;
    root->rank_conn = malloc((size_t)nranks * sizeof(int));
    root->rank_state = calloc((size_t)nranks, sizeof(rank_state_t));
    if (root->rank_conn == NULL || root->rank_state == NULL)
        goto err_free;
    for (int r = 0; r < nranks; r++)
        root->rank_conn[r] = -1;
    if (pipe2(root->wake_pipe, O_CLOEXEC) != 0) {
        status = TUTTI_ERR_SYSTEM;
        goto err_free;
    }
    TT_CHECK_GOTO(tt_sock_set_nonblocking(listen_fd, 1), status, err_close_pipe);
    if (pthread_create(&root->thread, NULL, root_main, root) != 0) {
        status = TUTTI_ERR_SYSTEM;
        goto err_close_pipe;
    }
    *root_p = root;
    return TUTTI_OK;

err_close_pipe:
    close(root->wake_pipe[0]);
    close(root->wake_pipe[1]);
err_free:
    free(root->rank_conn);
    free(root->rank_state);
    free(root);
    return status;
}

void tt_bootstrap_root_stop(tt_bootstrap_root_t *root, int64_t deadline)
{
    atomic_store(&root->stop_deadline, deadline);
    atomic_store(&root->stopping, 1);
    if (write(root->wake_pipe[1], "x", 1) < 0)
        tt_debug("bootstrap root: wake-up write failed: %s", strerror(errno));
    pthread_join(root->thread, NULL);
    for (size_t i = 0; i < root->nconns; i++)
        if (root->conns[i].state != CONN_FREE)
            conn_close(root, &root->conns[i]);
    while (root->gathers != NULL)
        gather_free(root, root->gathers);
    close(root->listen_fd);
    close(root->wake_pipe[0]);
    close(root->wake_pipe[1]);
    free(root->conns);
    free(root->rank_conn);
    free(root->rank_state);
    free(root);
}
