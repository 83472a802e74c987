/*
 * A rank's side of the bootstrap: one authenticated connection to the root,
 * shared by every communicator of the process that descends from the same
 * unique id. See bootstrap.h.
 */
#include "config.h"

#include "bootstrap/bootstrap.h"

#include "util/log.h"
#include "util/random.h"
#include "util/time.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const tt_config_field_t bootstrap_fields[] = {
    {"BOOTSTRAP_TIMEOUT", "60s",
     "how long every rank has to arrive at the rendezvous before init fails", TT_CFG_DURATION,
     offsetof(tt_bootstrap_settings_t, timeout_ns), NULL},
    {"BOOTSTRAP_ADDR", "127.0.0.1:0",
     "address:port tutti_get_unique_id listens on (port 0: any free port)", TT_CFG_STRING,
     offsetof(tt_bootstrap_settings_t, address), NULL},
};

const tt_config_table_t tt_bootstrap_config_table = {"bootstrap", bootstrap_fields,
                                                     TT_ARRAY_SIZE(bootstrap_fields),
                                                     sizeof(tt_bootstrap_settings_t)};

/* A reply that arrived for a context nobody is reading yet. */
typedef struct inbox_item {
    uint64_t ctx;
    size_t len;
    unsigned char *data;
    struct inbox_item *next;
} inbox_item_t;

struct tt_bootstrap {
    int fd;
    int rank, nranks;
    atomic_int refs;
    tt_bootstrap_root_t *root; /* rank 0 only */
    pthread_mutex_t lock;      /* the socket, the input buffer and everything below */
    unsigned char *in;
    size_t in_len, in_cap;
    inbox_item_t *inbox;
    char **failed_reason; /* per session rank; NULL while alive */
    atomic_int any_failed;
    int missing; /* the root said some ranks never arrived */
};

/*
 * Listening sockets made by tt_bootstrap_id_create(), waiting for rank 0's
 * open in this process or a forked child: part of the per-process context.
 */
static struct {
    pthread_mutex_t lock;
    struct reservation {
        char address[TT_ADDR_TEXT_MAX];
        int fd;
    } items[16];
} reservations = {PTHREAD_MUTEX_INITIALIZER, {{"", -1}}};

static void reserve(const char *address, int fd)
{
    pthread_mutex_lock(&reservations.lock);
    for (size_t i = 0; i < TT_ARRAY_SIZE(reservations.items); i++) {
        struct reservation *r = &reservations.items[i];
        if (r->address[0] == '\0') {
            strcpy(r->address, address);
            r->fd = fd;
            fd = -1;
            break;
        }
    }
    pthread_mutex_unlock(&reservations.lock);
    if (fd >= 0) /* table full: rank 0 will bind the address again itself */
        close(fd);
}

/* Take the reserved socket for @p address (-1 if none). */
static int take_reservation(const char *address)
{
    int fd = -1;
    pthread_mutex_lock(&reservations.lock);
    for (size_t i = 0; i < TT_ARRAY_SIZE(reservations.items); i++) {
        struct reservation *r = &reservations.items[i];
        if (r->address[0] != '\0' && strcmp(r->address, address) == 0) {
            fd = r->fd;
            r->address[0] = '\0';
            break;
        }
    }
    pthread_mutex_unlock(&reservations.lock);
    return fd;
}

tutti_status_t tt_bootstrap_id_init(const char *address, const void *secret, size_t secret_len,
                                    tt_bootstrap_id_t *id)
{
    char host[TT_ADDR_TEXT_MAX], port[16];

    if (strlen(address) >= sizeof(id->address) ||
        tt_sock_split_address(address, host, sizeof(host), port, sizeof(port)) != TUTTI_OK) {
        tt_error("bootstrap: address '%s' is not host:port", address);
        return TUTTI_ERR_INVALID_ARG;
    }
    memset(id, 0, sizeof(*id));
    id->magic = TT_BOOTSTRAP_ID_MAGIC;
    id->version = TT_WIRE_VERSION;
    strcpy(id->address, address);
    if (secret_len == TT_WIRE_SECRET_BYTES) {
        memcpy(id->secret, secret, secret_len);
    } else {
        /* Secrets of any other length are hashed to the key size. */
        tt_sha256_t hash;
        tt_sha256_init(&hash);
        tt_sha256_update(&hash, secret, secret_len);
        tt_sha256_final(&hash, id->secret);
    }
    return TUTTI_OK;
}

tutti_status_t tt_bootstrap_id_create(const char *listen_address, tt_bootstrap_id_t *id)
{
    unsigned char secret[TT_WIRE_SECRET_BYTES];
    char bound[TT_ADDR_TEXT_MAX];
    int fd;

    TT_CHECK(tt_random_bytes(secret, sizeof(secret)));
    TT_CHECK(tt_sock_listen(listen_address, &fd, bound));
    if (tt_bootstrap_id_init(bound, secret, sizeof(secret), id) != TUTTI_OK) {
        close(fd);
        return TUTTI_ERR_INVALID_ARG;
    }
    reserve(bound, fd);
    return TUTTI_OK;
}

/* ---------------------------------------------------------------- reading */

static void record_failure(tt_bootstrap_t *bs, int rank, const char *reason, size_t len)
{
    char *copy;
    if (rank < 0 || rank >= bs->nranks || bs->failed_reason[rank] != NULL)
        return;
    copy = malloc(len + 1);
    if (copy == NULL)
        return;
    memcpy(copy, reason, len);
    copy[len] = '\0';
    bs->failed_reason[rank] = copy;
    atomic_store(&bs->any_failed, 1);
}

/* Act on one message from the root. Called with the lock held. */
static void dispatch(tt_bootstrap_t *bs, const tt_wire_header_t *h, const unsigned char *payload)
{
    inbox_item_t *item;

    switch (h->type) {
    case TT_WIRE_GATHERED:
        item = malloc(sizeof(*item));
        if (item == NULL || (item->data = malloc(TT_MAX(h->len, 1))) == NULL) {
            free(item);
            tt_error("bootstrap: out of memory storing an all-gather result");
            return;
        }
        item->ctx = h->ctx;
        item->len = h->len;
        memcpy(item->data, payload, h->len);
        item->next = bs->inbox;
        bs->inbox = item;
        return;
    case TT_WIRE_FAILED:
        record_failure(bs, h->a, (const char *)payload, TT_MIN(h->len, TT_WIRE_REASON_MAX));
        return;
    case TT_WIRE_MISSING: bs->missing = 1; return;
    default:
        tt_warn("bootstrap: ignoring unexpected message type %#x from the root", h->type);
        return;
    }
}

/* The connection to the root is gone: the root lived in rank 0's process. */
static void connection_lost(tt_bootstrap_t *bs)
{
    static const char reason[] = "the rendezvous (in rank 0's process) closed the connection";
    if (bs->fd >= 0) {
        close(bs->fd);
        bs->fd = -1;
    }
    record_failure(bs, 0, reason, sizeof(reason) - 1);
}

/* Read what the socket has (waiting up to @p wait_ms) and dispatch whole messages. */
static void read_available(tt_bootstrap_t *bs, int wait_ms)
{
    struct pollfd pfd = {bs->fd, POLLIN, 0};
    size_t used = 0;

    if (bs->fd < 0 || poll(&pfd, 1, wait_ms) <= 0)
        return;
    for (;;) {
        ssize_t n;
        if (bs->in_cap - bs->in_len < 65536) {
            unsigned char *grown = realloc(bs->in, bs->in_cap + 65536);
            if (grown == NULL)
                break;
            bs->in = grown;
            bs->in_cap += 65536;
        }
        n = recv(bs->fd, bs->in + bs->in_len, bs->in_cap - bs->in_len, MSG_DONTWAIT);
        if (n > 0) {
            bs->in_len += (size_t)n;
            continue;
        }
        if (n == 0 || (errno != EAGAIN && errno != EINTR))
            connection_lost(bs);
        break;
    }
    while (bs->in_len - used >= sizeof(tt_wire_header_t)) {
        tt_wire_header_t h;
        memcpy(&h, bs->in + used, sizeof(h));
        if (bs->in_len - used < sizeof(h) + h.len)
            break;
        dispatch(bs, &h, bs->in + used + sizeof(h));
        used += sizeof(h) + h.len;
    }
    memmove(bs->in, bs->in + used, bs->in_len - used);
    bs->in_len -= used;
}

/* ---------------------------------------------------------------- joining */

static tutti_status_t send_message(tt_bootstrap_t *bs, uint32_t type, uint64_t ctx, int32_t a,
                                   int32_t b, const void *payload, size_t len, int64_t deadline)
{
    tt_wire_header_t h = {type, (uint32_t)len, ctx, a, b};
    if (bs->fd < 0)
        return TUTTI_ERR_PEER_FAILED;
    TT_CHECK(tt_sock_send_all(bs->fd, &h, sizeof(h), deadline));
    return len > 0 ? tt_sock_send_all(bs->fd, payload, len, deadline) : TUTTI_OK;
}

/* Read one whole message synchronously; only used during the handshake. */
static tutti_status_t recv_message(int fd, tt_wire_header_t *h, void *payload, size_t max,
                                   int64_t deadline)
{
    TT_CHECK(tt_sock_recv_all(fd, h, sizeof(*h), deadline));
    if (h->len > max)
        return TUTTI_ERR_PROTOCOL;
    return tt_sock_recv_all(fd, payload, h->len, deadline);
}

/*
 * Authenticate with the rendezvous. A refusal because this rank has joined
 * already, or a connection closed before the greeting, sets @p taken_p and
 * is left to the caller to report: both are what the previous job's
 * rendezvous on this address does while it ends.
 */
static tutti_status_t handshake(tt_bootstrap_t *bs, const tt_bootstrap_id_t *id, int64_t deadline,
                                int *taken_p)
{
    tt_wire_header_t h;
    tt_wire_challenge_t challenge;
    tt_wire_hello_t hello;
    unsigned char reply[TT_WIRE_REASON_MAX + 1], expected[TT_SHA256_BYTES];
    tutti_status_t status;

    status = recv_message(bs->fd, &h, &challenge, sizeof(challenge), deadline);
    *taken_p = status == TUTTI_ERR_PEER_FAILED;
    if (*taken_p)
        return status;
    if (status != TUTTI_OK || h.type != TT_WIRE_CHALLENGE || h.len != sizeof(challenge) ||
        challenge.version != TT_WIRE_VERSION) {
        tt_error("bootstrap: %s did not greet like a tutti rendezvous (version %u)", id->address,
                 TT_WIRE_VERSION);
        return status == TUTTI_ERR_TIMEOUT ? status : TUTTI_ERR_BOOTSTRAP;
    }
    TT_CHECK(tt_random_bytes(hello.nonce, sizeof(hello.nonce)));
    tt_wire_client_mac(id->secret, challenge.nonce, hello.nonce, bs->rank, bs->nranks, hello.mac);
    TT_CHECK(
        send_message(bs, TT_WIRE_HELLO, 0, bs->rank, bs->nranks, &hello, sizeof(hello), deadline));
    status = recv_message(bs->fd, &h, reply, sizeof(reply) - 1, deadline);
    if (status != TUTTI_OK) {
        tt_error("bootstrap: no answer from the rendezvous at %s: %s", id->address,
                 tutti_status_string(status));
        return status == TUTTI_ERR_TIMEOUT ? status : TUTTI_ERR_BOOTSTRAP;
    }
    if (h.type == TT_WIRE_REFUSE) {
        reply[h.len] = '\0';
        *taken_p = h.a == TT_WIRE_REFUSE_TAKEN;
        if (*taken_p)
            return TUTTI_ERR_AUTH;
        tt_error("bootstrap: the rendezvous at %s refused rank %d: %s", id->address, bs->rank,
                 (const char *)reply);
        return TUTTI_ERR_AUTH;
    }
    tt_wire_root_mac(id->secret, challenge.nonce, hello.nonce, expected);
    if (h.type != TT_WIRE_WELCOME || h.len != sizeof(expected) ||
        !tt_digest_equal(expected, reply, sizeof(expected))) {
        tt_error("bootstrap: the rendezvous at %s does not know this job's secret "
                 "(another job on that port?)",
                 id->address);
        return TUTTI_ERR_AUTH;
    }
    return TUTTI_OK;
}

/*
 * Connect to the rendezvous and authenticate. While it says this rank has
 * joined already, try again until the deadline: consecutive jobs on one
 * address overlap when ranks of the next job start while rank 0 of the
 * previous one is still ending (its rendezvous has every rank).
 */
static tutti_status_t join(tt_bootstrap_t *bs, const tt_bootstrap_id_t *id, int64_t deadline)
{
    const int64_t pause_ns = 100 * TT_NS_PER_MS;
    const struct timespec pause = {0, (long)pause_ns};

    for (int tries = 0;; tries++) {
        int taken = 0;
        tutti_status_t status;

        TT_CHECK(tt_sock_connect(id->address, deadline, &bs->fd));
        status = handshake(bs, id, deadline, &taken);
        if (status == TUTTI_OK)
            return TUTTI_OK;
        close(bs->fd);
        bs->fd = -1;
        if (!taken)
            return status;
        if (tt_time_ns() + pause_ns >= deadline) {
            tt_error("bootstrap: the rendezvous at %s did not take rank %d before the deadline: "
                     "it said that rank has joined it already, or closed the connection before "
                     "greeting (a duplicate rank, or a previous job on this address still "
                     "ending)",
                     id->address, bs->rank);
            return TUTTI_ERR_AUTH;
        }
        if (tries == 0)
            tt_info("bootstrap: the rendezvous at %s did not take rank %d (joined already, or "
                    "closing): a previous job still ending? Trying again until the deadline",
                    id->address, bs->rank);
        nanosleep(&pause, NULL);
    }
}

static tutti_status_t start_root(tt_bootstrap_t *bs, const tt_bootstrap_id_t *id,
                                 const tt_bootstrap_settings_t *settings,
                                 int64_t failure_timeout_ns)
{
    char bound[TT_ADDR_TEXT_MAX];
    int fd = take_reservation(id->address);
    tutti_status_t status;

    if (fd < 0)
        TT_CHECK(tt_sock_listen(id->address, &fd, bound));
    status = tt_bootstrap_root_start(fd, bs->nranks, id->secret, settings->timeout_ns,
                                     failure_timeout_ns, &bs->root);
    if (status != TUTTI_OK)
        close(fd);
    return status;
}

tutti_status_t tt_bootstrap_open(const tt_bootstrap_id_t *id, int rank, int nranks,
                                 const tt_bootstrap_settings_t *settings,
                                 int64_t failure_timeout_ns, tt_bootstrap_t **bs_p)
{
    int64_t deadline = tt_deadline_after(settings->timeout_ns);
    tt_bootstrap_t *bs;
    tutti_status_t status = TUTTI_ERR_NO_MEMORY;

    if (id->magic != TT_BOOTSTRAP_ID_MAGIC || id->version != TT_WIRE_VERSION) {
        tt_error("bootstrap: the unique id is not a tutti %d id", TT_WIRE_VERSION);
        return TUTTI_ERR_INVALID_ARG;
    }
    bs = calloc(1, sizeof(*bs));
    if (bs == NULL)
        return TUTTI_ERR_NO_MEMORY;
    bs->fd = -1;
    bs->rank = rank;
    bs->nranks = nranks;
    atomic_init(&bs->refs, 1);
    pthread_mutex_init(&bs->lock, NULL);
    bs->failed_reason = calloc((size_t)nranks, sizeof(char *));
    if (bs->failed_reason == NULL)
        goto err_free;
    if (rank == 0) {
        TT_CHECK_GOTO(start_root(bs, id, settings, failure_timeout_ns), status, err_free);
    } else {
        /* A forked rank inherited rank 0's reserved socket: it must not keep it open. */
        int inherited = take_reservation(id->address);
        if (inherited >= 0)
            close(inherited);
    }
    TT_CHECK_GOTO(join(bs, id, deadline), status, err_stop_root);
    tt_sock_set_liveness(bs->fd, failure_timeout_ns);
    *bs_p = bs;
    return TUTTI_OK;

err_stop_root:
    if (bs->root != NULL)
        tt_bootstrap_root_stop(bs->root, tt_time_ns());
err_free:
    free(bs->failed_reason);
    pthread_mutex_destroy(&bs->lock);
    free(bs);
    return status;
}

void tt_bootstrap_retain(tt_bootstrap_t *bs)
{
    atomic_fetch_add(&bs->refs, 1);
}

void tt_bootstrap_release(tt_bootstrap_t *bs, int abort, int64_t deadline)
{
    if (atomic_fetch_sub(&bs->refs, 1) != 1)
        return;
    if (bs->fd >= 0) {
        /* Best effort: if the root is gone there is nobody left to tell. */
        send_message(bs, abort ? TT_WIRE_ABORT : TT_WIRE_BYE, 0, 0, 0, NULL, 0,
                     tt_deadline_after(TT_NS_PER_S));
        close(bs->fd);
    }
    if (bs->root != NULL)
        tt_bootstrap_root_stop(bs->root, abort ? tt_time_ns() : deadline);
    while (bs->inbox != NULL) {
        inbox_item_t *next = bs->inbox->next;
        free(bs->inbox->data);
        free(bs->inbox);
        bs->inbox = next;
    }
    for (int r = 0; r < bs->nranks; r++)
        free(bs->failed_reason[r]);
    free(bs->failed_reason);
    free(bs->in);
    pthread_mutex_destroy(&bs->lock);
    free(bs);
}

int tt_bootstrap_rank(const tt_bootstrap_t *bs)
{
    return bs->rank;
}

int tt_bootstrap_nranks(const tt_bootstrap_t *bs)
{
    return bs->nranks;
}

/* ---------------------------------------------------------------- using */

static inbox_item_t *inbox_take(tt_bootstrap_t *bs, uint64_t ctx)
{
    for (inbox_item_t **link = &bs->inbox; *link != NULL; link = &(*link)->next) {
        if ((*link)->ctx == ctx) {
            inbox_item_t *item = *link;
            *link = item->next;
            return item;
        }
    }
    return NULL;
}

static int failed_member_locked(tt_bootstrap_t *bs, const int *session_ranks, int nmembers,
                                const char **reason_p)
{
    if (!atomic_load(&bs->any_failed))
        return -1;
    for (int m = 0; m < nmembers; m++) {
        int r = session_ranks != NULL ? session_ranks[m] : m;
        if (bs->failed_reason[r] != NULL) {
            if (reason_p != NULL)
                *reason_p = bs->failed_reason[r];
            return m;
        }
    }
    return -1;
}

int tt_bootstrap_failed_member(tt_bootstrap_t *bs, const int *session_ranks, int nmembers,
                               const char **reason_p)
{
    int member;
    if (!atomic_load(&bs->any_failed))
        return -1;
    pthread_mutex_lock(&bs->lock);
    member = failed_member_locked(bs, session_ranks, nmembers, reason_p);
    pthread_mutex_unlock(&bs->lock);
    return member;
}

tutti_status_t tt_bootstrap_allgather(tt_bootstrap_t *bs, uint64_t ctx, int member, int nmembers,
                                      const int *session_ranks, const void *mine, size_t len,
                                      void *all, int64_t deadline)
{
    tutti_status_t status;
    inbox_item_t *item = NULL;
    const char *reason;
    int failed;

    pthread_mutex_lock(&bs->lock);
    status = send_message(bs, TT_WIRE_GATHER, ctx, member, nmembers, mine, len, deadline);
    if (status != TUTTI_OK)
        connection_lost(bs);
    /* Read in short slices, releasing the lock, so other communicators' all-gathers interleave. */
    while ((item = inbox_take(bs, ctx)) == NULL) {
        /* A start-up that timed out explains any failure reports that follow it. */
        if (bs->missing) {
            tt_error("bootstrap: not every rank arrived in time (the root's log names them)");
            status = TUTTI_ERR_TIMEOUT;
            break;
        }
        if ((failed = failed_member_locked(bs, session_ranks, nmembers, &reason)) >= 0) {
            tt_error("bootstrap: member %d (rank %d) failed during setup: %s", failed,
                     session_ranks != NULL ? session_ranks[failed] : failed, reason);
            status = TUTTI_ERR_PEER_FAILED;
            break;
        }
        if (bs->fd < 0) {
            tt_error("bootstrap: the connection to the rendezvous is gone");
            status = TUTTI_ERR_PEER_FAILED;
            break;
        }
        if (tt_time_ns() > deadline) {
            tt_error("bootstrap: all-gather on context %#llx timed out", (unsigned long long)ctx);
            status = TUTTI_ERR_TIMEOUT;
            break;
        }
        read_available(bs, TT_MIN(tt_deadline_poll_ms(deadline), 10));
        pthread_mutex_unlock(&bs->lock);
        pthread_mutex_lock(&bs->lock);
    }
    pthread_mutex_unlock(&bs->lock);
    if (item == NULL)
        return status;
    if (item->len != (size_t)nmembers * len) {
        tt_error("bootstrap: all-gather on context %#llx returned %zu bytes, expected %zu",
                 (unsigned long long)ctx, item->len, (size_t)nmembers * len);
        status = TUTTI_ERR_PROTOCOL;
    } else {
        if (item->len > 0)
            memcpy(all, item->data, item->len);
        status = TUTTI_OK;
    }
    free(item->data);
    free(item);
    return status;
}

void tt_bootstrap_poll(tt_bootstrap_t *bs)
{
    if (pthread_mutex_trylock(&bs->lock) != 0)
        return;
    read_available(bs, 0);
    pthread_mutex_unlock(&bs->lock);
}

void tt_bootstrap_report_failure(tt_bootstrap_t *bs, int session_rank, const char *reason)
{
    size_t len = TT_MIN(strlen(reason), TT_WIRE_REASON_MAX);
    pthread_mutex_lock(&bs->lock);
    if (session_rank >= 0 && session_rank < bs->nranks && bs->failed_reason[session_rank] == NULL) {
        record_failure(bs, session_rank, reason, len);
        if (send_message(bs, TT_WIRE_REPORT, 0, session_rank, 0, reason, len,
                         tt_deadline_after(TT_NS_PER_S)) != TUTTI_OK)
            connection_lost(bs);
    }
    pthread_mutex_unlock(&bs->lock);
}
