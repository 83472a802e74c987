/*
 * tutti: collective communication for AI training clusters.
 *
 * This is the only header applications include. Every function returns a
 * tutti_status_t; output arguments come last, end in _p, and are written only
 * when the call succeeds.
 *
 * Thread safety, unless a function says otherwise: calls on different
 * communicators may run concurrently from different threads. Calls that post
 * work on one communicator must be made in the same order on every rank of
 * that communicator; the library serialises them internally, but the order in
 * which two threads post is the caller's business.
 */
#ifndef TUTTI_H
#define TUTTI_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define TUTTI_API __attribute__((visibility("default")))
#else
#define TUTTI_API
#endif

/** Version of this header; compare with tutti_version() at run time. */
#define TUTTI_VERSION_MAJOR 0
#define TUTTI_VERSION_MINOR 1
#define TUTTI_VERSION_PATCH 0

/*
 * Status codes. TUTTI_OK is zero, "in progress" is positive, errors are
 * negative. Failures of peers, links and deadlines form their own range
 * (TUTTI_ERR_FAILURE_FIRST down to TUTTI_ERR_FAILURE_LAST) so callers can
 * tell "the job lost a member" from "I called it wrong" with
 * TUTTI_STATUS_IS_FAILURE().
 *
 * X(name, value, description)
 */
#define TUTTI_STATUS_TABLE(X)                                                  \
    X(TUTTI_OK, 0, "success")                                                  \
    X(TUTTI_IN_PROGRESS, 1, "operation still in progress")                     \
    X(TUTTI_ERR_INVALID_ARG, -1, "invalid argument")                           \
    X(TUTTI_ERR_UNSUPPORTED, -2, "unsupported datatype, operation or setting") \
    X(TUTTI_ERR_NO_MEMORY, -3, "out of memory")                                \
    X(TUTTI_ERR_SYSTEM, -4, "system call failed")                              \
    X(TUTTI_ERR_INTERNAL, -5, "internal error")                                \
    X(TUTTI_ERR_INVALID_COMM, -6, "invalid or destroyed communicator")         \
    X(TUTTI_ERR_NOT_FOUND, -7, "no such item")                                 \
    X(TUTTI_ERR_BOOTSTRAP, -8, "bootstrap (rendezvous) failed")                \
    X(TUTTI_ERR_AUTH, -9, "rendezvous authentication failed")                  \
    X(TUTTI_ERR_NO_TRANSPORT, -10, "no transport reaches a peer")              \
    X(TUTTI_ERR_PROTOCOL, -11, "protocol violation by a peer")                 \
    X(TUTTI_ERR_PEER_FAILED, -100, "a peer rank failed or left")               \
    X(TUTTI_ERR_LINK_FAILED, -101, "a link to a peer failed")                  \
    X(TUTTI_ERR_TIMEOUT, -102, "deadline passed")                              \
    X(TUTTI_ERR_ABORTED, -103, "communicator aborted")

/** Status of every tutti call. */
typedef enum tutti_status {
#define TUTTI_STATUS_ENUM_(name, value, text) name = value,
    TUTTI_STATUS_TABLE(TUTTI_STATUS_ENUM_)
#undef TUTTI_STATUS_ENUM_
} tutti_status_t;

/** First (least negative) code of the peer/link/deadline failure range. */
#define TUTTI_ERR_FAILURE_FIRST TUTTI_ERR_PEER_FAILED
/** Last (most negative) code reserved for the failure range. */
#define TUTTI_ERR_FAILURE_LAST (-199)
/** True if @p s reports a failed peer, a failed link, a deadline or an abort. */
#define TUTTI_STATUS_IS_FAILURE(s) ((s) <= TUTTI_ERR_FAILURE_FIRST && (s) >= TUTTI_ERR_FAILURE_LAST)

/**
 * Describe a status code.
 * @param status any value; unknown values get "unknown status".
 * @return a static string. Thread safe.
 */
TUTTI_API const char *tutti_status_string(tutti_status_t status);

/**
 * Report the library's version (which may differ from this header's).
 * @param major_p, minor_p, patch_p receive the numbers; none may be NULL.
 * @return TUTTI_OK, or TUTTI_ERR_INVALID_ARG for a NULL pointer. Thread safe.
 */
TUTTI_API tutti_status_t tutti_version(int *major_p, int *minor_p, int *patch_p);

/** Element types. fp16 and bf16 reduce through fp32 and round to nearest even. */
typedef enum tutti_datatype {
    TUTTI_INT8,
    TUTTI_UINT8,
    TUTTI_INT32,
    TUTTI_UINT32,
    TUTTI_INT64,
    TUTTI_UINT64,
    TUTTI_FP16,
    TUTTI_BF16,
    TUTTI_FP32,
    TUTTI_FP64,
    TUTTI_NUM_DATATYPES /**< not a type: the number of types */
} tutti_datatype_t;

/**
 * Reduction operations. Integer sum and prod wrap around (two's
 * complement). avg is the sum divided by the number of ranks: for integers
 * the quotient is truncated toward zero, for floats it is the IEEE quotient.
 * min and max of floats follow (a < b ? a : b), so a NaN operand gives a
 * result that is deterministic but not specified further.
 */
typedef enum tutti_op {
    TUTTI_SUM,
    TUTTI_PROD,
    TUTTI_MIN,
    TUTTI_MAX,
    TUTTI_AVG,
    TUTTI_NUM_OPS /**< not an operation: the number of operations */
} tutti_op_t;

/**
 * Size of one element.
 * @return bytes per element, or 0 if @p datatype is not a tutti_datatype_t.
 */
TUTTI_API size_t tutti_datatype_size(tutti_datatype_t datatype);

/** Name of a datatype ("fp32", ...), or NULL if it is not one. */
TUTTI_API const char *tutti_datatype_name(tutti_datatype_t datatype);

/** Name of an operation ("sum", ...), or NULL if it is not one. */
TUTTI_API const char *tutti_op_name(tutti_op_t op);

/* ------------------------------------------------------------------------ */
/* Configuration                                                            */
/* ------------------------------------------------------------------------ */

/**
 * A set of settings handed to communicator creation. Every setting has a
 * default, may be set in the environment as TUTTI_<NAME>, and may be set on
 * a config object, which wins over the environment.
 */
typedef struct tutti_config *tutti_config_t;

/** One setting as tutti_config_setting() describes it. */
typedef struct tutti_setting {
    const char *name;          /**< environment name, e.g. "TUTTI_LOG" */
    const char *value;         /**< effective value: config, else env, else default */
    const char *default_value; /**< built-in default */
    const char *help;          /**< one-line description */
} tutti_setting_t;

/**
 * Create an empty config object (every setting from the environment or its
 * default).
 * @param config_p receives the object; free it with tutti_config_destroy().
 * @return TUTTI_OK, TUTTI_ERR_INVALID_ARG, TUTTI_ERR_NO_MEMORY.
 */
TUTTI_API tutti_status_t tutti_config_create(tutti_config_t *config_p);

/**
 * Set one setting on a config object. The value is checked when set.
 * @param name "TUTTI_CHUNK_SIZE" or just "CHUNK_SIZE".
 * @param value text as it would appear in the environment ("1M", "5s", "info").
 * @return TUTTI_OK; TUTTI_ERR_NOT_FOUND for an unknown name;
 *         TUTTI_ERR_INVALID_ARG for a value the setting does not accept.
 * Not thread safe for one config object.
 */
TUTTI_API tutti_status_t tutti_config_set(tutti_config_t config, const char *name,
                                          const char *value);

/**
 * Describe setting number @p index (0, 1, ... until TUTTI_ERR_NOT_FOUND).
 * The strings stay valid until the next call on @p config or its destruction.
 * @return TUTTI_OK, TUTTI_ERR_NOT_FOUND past the last setting, or
 *         TUTTI_ERR_INVALID_ARG.
 */
TUTTI_API tutti_status_t tutti_config_setting(tutti_config_t config, size_t index,
                                              tutti_setting_t *setting_p);

/**
 * Free a config object. Communicators created with it keep their own copy.
 * @return TUTTI_OK, or TUTTI_ERR_INVALID_ARG for NULL.
 */
TUTTI_API tutti_status_t tutti_config_destroy(tutti_config_t config);

/* ------------------------------------------------------------------------ */
/* Communicators                                                            */
/* ------------------------------------------------------------------------ */

/** A group of ranks that run collectives together. */
typedef struct tutti_comm *tutti_comm_t;

/** Bytes in a unique id. */
#define TUTTI_UNIQUE_ID_BYTES 128

/**
 * Everything ranks need to find each other: the rendezvous address (served by
 * rank 0) and the job secret that authenticates every connection. Plain
 * bytes: ship it to the other ranks by any means (a file, MPI_Bcast, ...).
 * Keep it private: whoever holds it can join the job.
 */
typedef struct tutti_unique_id {
    unsigned char bytes[TUTTI_UNIQUE_ID_BYTES];
} tutti_unique_id_t;

/**
 * Create a unique id: a fresh random secret and a rendezvous address on this
 * host. The listening port is reserved in the calling process, so call this
 * in the process that will be rank 0 (or in a parent that forks all ranks,
 * rank 0 among them). TUTTI_BOOTSTRAP_ADDR chooses the interface address
 * (default: 127.0.0.1 for single-host jobs; set it for multi-host jobs).
 * @return TUTTI_OK, TUTTI_ERR_INVALID_ARG, TUTTI_ERR_SYSTEM.
 */
TUTTI_API tutti_status_t tutti_get_unique_id(tutti_unique_id_t *id_p);

/**
 * As tutti_get_unique_id(), with settings from @p config (NULL: the
 * environment and defaults), so that a program can choose the rendezvous
 * address (TUTTI_BOOTSTRAP_ADDR) per communicator without touching its
 * environment.
 * @return TUTTI_OK, TUTTI_ERR_INVALID_ARG, TUTTI_ERR_SYSTEM.
 */
TUTTI_API tutti_status_t tutti_get_unique_id_config(tutti_config_t config, tutti_unique_id_t *id_p);

/**
 * Create a communicator of @p nranks ranks; collective over all of them.
 * Rank 0 serves the rendezvous at the id's address. If a rank does not
 * arrive within TUTTI_BOOTSTRAP_TIMEOUT, every rank that did returns
 * TUTTI_ERR_TIMEOUT and logs the missing ranks.
 * @param nranks number of ranks, >= 1.
 * @param rank this process's rank, 0 <= rank < nranks.
 * @param id the same id on every rank.
 * @param config settings, or NULL for environment and defaults.
 * @param comm_p receives the communicator.
 * @return TUTTI_OK; TUTTI_ERR_INVALID_ARG; TUTTI_ERR_TIMEOUT;
 *         TUTTI_ERR_AUTH (wrong secret); TUTTI_ERR_BOOTSTRAP;
 *         TUTTI_ERR_NO_TRANSPORT (a peer no transport reaches);
 *         TUTTI_ERR_PEER_FAILED (a peer died during setup).
 */
TUTTI_API tutti_status_t tutti_comm_init(int nranks, int rank, const tutti_unique_id_t *id,
                                         tutti_config_t config, tutti_comm_t *comm_p);

/**
 * Create a communicator from the launcher's environment: TUTTI_RANK /
 * TUTTI_NRANKS / TUTTI_ADDR ("host:port") / TUTTI_SECRET, else torchrun's
 * RANK / WORLD_SIZE / MASTER_ADDR / MASTER_PORT, else the rank and size that
 * Open MPI, MPICH (PMI) or Slurm set (the address must then come from
 * TUTTI_ADDR or MASTER_ADDR/MASTER_PORT). Without TUTTI_SECRET the secret is
 * derived from the address and size, which keeps strangers out but is not
 * secret; tutti-run always sets one.
 * @return as tutti_comm_init(); TUTTI_ERR_INVALID_ARG if the environment
 *         lacks the rank, size or address (the log says which).
 */
TUTTI_API tutti_status_t tutti_comm_init_env(tutti_config_t config, tutti_comm_t *comm_p);

/**
 * Destroy a communicator; collective. Waits (up to the operation timeout)
 * for every rank to arrive, so that no rank frees memory a peer still reads,
 * then frees everything. Outstanding requests must have been completed.
 * The handle is invalid afterwards; calls with it return
 * TUTTI_ERR_INVALID_COMM. Resources are freed even when peers have failed.
 * @return TUTTI_OK; TUTTI_ERR_INVALID_COMM.
 */
TUTTI_API tutti_status_t tutti_comm_destroy(tutti_comm_t comm);

/**
 * Abandon a communicator at once; local. Pending operations fail with
 * TUTTI_ERR_ABORTED, the other ranks are told (their operations fail with
 * TUTTI_ERR_PEER_FAILED), and everything is freed without waiting for
 * anyone. Use it after a failure, instead of tutti_comm_destroy().
 * @return TUTTI_OK; TUTTI_ERR_INVALID_COMM.
 */
TUTTI_API tutti_status_t tutti_comm_abort(tutti_comm_t comm);

/**
 * Query an error that happened in the background (a peer died, a link
 * failed, a deadline passed). Once set it stays: the communicator can only
 * be aborted or destroyed. Checks for news before answering.
 * @param error_p receives TUTTI_OK if all is well, else the error.
 * @return TUTTI_OK; TUTTI_ERR_INVALID_COMM; TUTTI_ERR_INVALID_ARG.
 */
TUTTI_API tutti_status_t tutti_comm_get_async_error(tutti_comm_t comm, tutti_status_t *error_p);

/** This process's rank in @p comm. @return TUTTI_OK, TUTTI_ERR_INVALID_COMM, TUTTI_ERR_INVALID_ARG.
 */
TUTTI_API tutti_status_t tutti_comm_rank(tutti_comm_t comm, int *rank_p);

/** Number of ranks in @p comm. @return TUTTI_OK, TUTTI_ERR_INVALID_COMM, TUTTI_ERR_INVALID_ARG. */
TUTTI_API tutti_status_t tutti_comm_size(tutti_comm_t comm, int *size_p);

/** Color that leaves a rank out of every communicator tutti_comm_split() makes. */
#define TUTTI_SPLIT_NOCOLOR (-1)

/**
 * Split a communicator; collective over @p comm. Ranks with the same
 * @p color form a new communicator, ordered by @p key and then by rank in
 * @p comm.
 * @param color >= 0, or TUTTI_SPLIT_NOCOLOR to get *newcomm_p = NULL.
 * @param config settings for the new communicator, or NULL for the
 *        parent's.
 * @return as tutti_comm_init(); TUTTI_ERR_INVALID_ARG for a negative color
 *         other than TUTTI_SPLIT_NOCOLOR.
 */
TUTTI_API tutti_status_t tutti_comm_split(tutti_comm_t comm, int color, int key,
                                          tutti_config_t config, tutti_comm_t *newcomm_p);

/* ------------------------------------------------------------------------ */
/* Collectives                                                              */
/* ------------------------------------------------------------------------ */

/**
 * A nonblocking operation in flight. Complete it with tutti_wait() or
 * tutti_test(); either frees it when the operation is done.
 */
typedef struct tutti_request *tutti_request_t;

/*
 * Common rules for every collective below.
 * - Blocking and nonblocking forms: the blocking form posts and waits. The
 *   nonblocking form returns at once with a request; the buffers belong to
 *   the library until the request completes. A progress thread moves the
 *   operation while the caller computes.
 * - Buffers need no alignment. count 0 is valid (the buffers may then be
 *   NULL); a NULL buffer with count > 0 is TUTTI_ERR_INVALID_ARG.
 * - In place: pass the same pointer as noted per call.
 * - Every rank of the communicator calls the collective with matching
 *   arguments (count, datatype, op, root), in the same order.
 * - Errors: arguments are checked before anything starts, and a bad one
 *   returns TUTTI_ERR_INVALID_ARG / TUTTI_ERR_UNSUPPORTED / TUTTI_ERR_INVALID_COMM
 *   with a log line, leaving the communicator usable. A failed peer or link
 *   or a passed deadline (TUTTI_OP_TIMEOUT) returns a failure-range status
 *   and leaves the communicator failed: abort or destroy it.
 * - Results are bitwise identical on every rank and from run to run for the
 *   same inputs, rank count and settings.
 */

/**
 * Allreduce: recvbuf = op over all ranks of sendbuf, on every rank.
 * In place: sendbuf == recvbuf.
 */
TUTTI_API tutti_status_t tutti_allreduce(const void *sendbuf, void *recvbuf, size_t count,
                                         tutti_datatype_t datatype, tutti_op_t op,
                                         tutti_comm_t comm);
/** Nonblocking allreduce; see tutti_allreduce(). */
TUTTI_API tutti_status_t tutti_iallreduce(const void *sendbuf, void *recvbuf, size_t count,
                                          tutti_datatype_t datatype, tutti_op_t op,
                                          tutti_comm_t comm, tutti_request_t *request_p);

/**
 * Reduce-scatter: sendbuf holds nranks * recvcount elements; rank r receives
 * the reduction of block r. In place: recvbuf == sendbuf + r * recvcount
 * elements; only that block is written, the rest of sendbuf stays as it was.
 */
TUTTI_API tutti_status_t tutti_reduce_scatter(const void *sendbuf, void *recvbuf, size_t recvcount,
                                              tutti_datatype_t datatype, tutti_op_t op,
                                              tutti_comm_t comm);
/** Nonblocking reduce-scatter; see tutti_reduce_scatter(). */
TUTTI_API tutti_status_t tutti_ireduce_scatter(const void *sendbuf, void *recvbuf, size_t recvcount,
                                               tutti_datatype_t datatype, tutti_op_t op,
                                               tutti_comm_t comm, tutti_request_t *request_p);

/**
 * All-gather: every rank contributes sendcount elements; recvbuf receives
 * nranks * sendcount elements, rank r's at offset r * sendcount. In place:
 * sendbuf == recvbuf + r * sendcount elements.
 */
TUTTI_API tutti_status_t tutti_allgather(const void *sendbuf, void *recvbuf, size_t sendcount,
                                         tutti_datatype_t datatype, tutti_comm_t comm);
/** Nonblocking all-gather; see tutti_allgather(). */
TUTTI_API tutti_status_t tutti_iallgather(const void *sendbuf, void *recvbuf, size_t sendcount,
                                          tutti_datatype_t datatype, tutti_comm_t comm,
                                          tutti_request_t *request_p);

/**
 * Broadcast: recvbuf on every rank receives count elements of sendbuf on
 * @p root. sendbuf is read only on the root. In place: sendbuf == recvbuf on
 * the root.
 */
TUTTI_API tutti_status_t tutti_broadcast(const void *sendbuf, void *recvbuf, size_t count,
                                         tutti_datatype_t datatype, int root, tutti_comm_t comm);
/** Nonblocking broadcast; see tutti_broadcast(). */
TUTTI_API tutti_status_t tutti_ibroadcast(const void *sendbuf, void *recvbuf, size_t count,
                                          tutti_datatype_t datatype, int root, tutti_comm_t comm,
                                          tutti_request_t *request_p);

/**
 * Reduce: recvbuf on @p root receives the reduction of every rank's sendbuf.
 * recvbuf is used only on the root (other ranks may pass NULL). In place:
 * sendbuf == recvbuf on the root.
 */
TUTTI_API tutti_status_t tutti_reduce(const void *sendbuf, void *recvbuf, size_t count,
                                      tutti_datatype_t datatype, tutti_op_t op, int root,
                                      tutti_comm_t comm);
/** Nonblocking reduce; see tutti_reduce(). */
TUTTI_API tutti_status_t tutti_ireduce(const void *sendbuf, void *recvbuf, size_t count,
                                       tutti_datatype_t datatype, tutti_op_t op, int root,
                                       tutti_comm_t comm, tutti_request_t *request_p);

/** Barrier: returns once every rank has entered it. */
TUTTI_API tutti_status_t tutti_barrier(tutti_comm_t comm);
/** Nonblocking barrier; see tutti_barrier(). */
TUTTI_API tutti_status_t tutti_ibarrier(tutti_comm_t comm, tutti_request_t *request_p);

/**
 * All-to-all: sendbuf holds nranks blocks of count elements, block j for
 * rank j; recvbuf receives nranks blocks, block i from rank i. In place:
 * sendbuf == recvbuf (the library keeps a copy of what it still has to send).
 */
TUTTI_API tutti_status_t tutti_alltoall(const void *sendbuf, void *recvbuf, size_t count,
                                        tutti_datatype_t datatype, tutti_comm_t comm);
/** Nonblocking all-to-all; see tutti_alltoall(). */
TUTTI_API tutti_status_t tutti_ialltoall(const void *sendbuf, void *recvbuf, size_t count,
                                         tutti_datatype_t datatype, tutti_comm_t comm,
                                         tutti_request_t *request_p);

/**
 * All-to-all-v: this rank sends sendcounts[j] elements starting at element
 * sdispls[j] of sendbuf to rank j, and receives recvcounts[i] elements from
 * rank i into recvbuf from element rdispls[i] on. Each array has nranks
 * entries. Counts may be zero, and blocks may lie in any order, but the
 * receive blocks must not overlap. sendcounts[j] on rank i must equal
 * recvcounts[i] on rank j: a mismatch is found by the receiver
 * (TUTTI_ERR_PROTOCOL, and the communicator fails), never silently truncated.
 * In place: sendbuf == recvbuf (the send blocks are copied before anything
 * is received). The nonblocking form reads the four arrays while it runs:
 * keep them unchanged until the request completes.
 */
TUTTI_API tutti_status_t tutti_alltoallv(const void *sendbuf, const size_t *sendcounts,
                                         const size_t *sdispls, void *recvbuf,
                                         const size_t *recvcounts, const size_t *rdispls,
                                         tutti_datatype_t datatype, tutti_comm_t comm);
/** Nonblocking all-to-all-v; see tutti_alltoallv(). */
TUTTI_API tutti_status_t tutti_ialltoallv(const void *sendbuf, const size_t *sendcounts,
                                          const size_t *sdispls, void *recvbuf,
                                          const size_t *recvcounts, const size_t *rdispls,
                                          tutti_datatype_t datatype, tutti_comm_t comm,
                                          tutti_request_t *request_p);

/* ------------------------------------------------------------------------ */
/* Point-to-point                                                           */
/* ------------------------------------------------------------------------ */

/*
 * Sends and receives between two ranks. The n-th message a rank sends to a
 * peer matches the n-th receive that peer posts from it (there are no
 * tags); a receive's count must equal the send's (else TUTTI_ERR_PROTOCOL).
 * Outside a group each call is a blocking operation of its own, in the
 * communicator's order of operations like a collective: a rank that sends
 * to a peer and then enters a collective the peer reaches before its
 * receive may wait for ever (as in NCCL). Post exchanges as a group.
 */

/**
 * Send @p count elements of @p buf to rank @p peer. Outside a group it
 * returns once @p buf may be reused; inside one it only records the
 * message (the buffer is read after tutti_group_end).
 * @return TUTTI_OK; TUTTI_ERR_INVALID_ARG (peer out of range, NULL buffer
 *         with count > 0, a send to itself outside a group);
 *         TUTTI_ERR_UNSUPPORTED; TUTTI_ERR_INVALID_COMM; a failure status.
 */
TUTTI_API tutti_status_t tutti_send(const void *buf, size_t count, tutti_datatype_t datatype,
                                    int peer, tutti_comm_t comm);

/**
 * Receive @p count elements from rank @p peer into @p buf; see tutti_send().
 */
TUTTI_API tutti_status_t tutti_recv(void *buf, size_t count, tutti_datatype_t datatype, int peer,
                                    tutti_comm_t comm);

/**
 * Start collecting sends and receives on @p comm: tutti_send() and
 * tutti_recv() calls until tutti_group_end() are posted together as one
 * operation, so that they progress together (a rank may send to and
 * receive from the same peers, in any order, without deadlock). Messages to
 * this rank itself must pair with receives from itself in the same group.
 * A group belongs to the communicator: don't build two at once from
 * different threads. Groups do not nest.
 * @return TUTTI_OK; TUTTI_ERR_INVALID_ARG if a group is already open;
 *         TUTTI_ERR_INVALID_COMM.
 */
TUTTI_API tutti_status_t tutti_group_start(tutti_comm_t comm);

/**
 * Post the group: blocking if @p request_p is NULL, else a request to
 * complete with tutti_wait() or tutti_test() (the buffers belong to the
 * library until then). An empty group does nothing.
 * @return TUTTI_OK; TUTTI_ERR_INVALID_ARG (no group open, unpaired
 *         messages to itself); a failure status.
 */
TUTTI_API tutti_status_t tutti_group_end(tutti_comm_t comm, tutti_request_t *request_p);

/* ------------------------------------------------------------------------ */
/* Mixture-of-Experts dispatch and combine                                  */
/* ------------------------------------------------------------------------ */

/*
 * An MoE layer moves each token to the ranks hosting its top-k experts
 * (dispatch) and brings the experts' outputs back, summed with the routing
 * weights (combine). Experts 0 .. num_experts-1 are spread evenly over the
 * ranks in order: rank r hosts experts [r*E/n, (r+1)*E/n), its local
 * experts 0 .. E/n-1. A token crosses to a rank at most once, however many
 * of its experts live there, and comes back once from it.
 *
 * Sequence per layer: tutti_moe_layout_create (collective: exchanges the
 * routing so every rank can size its buffers), tutti_moe_layout_rows to
 * size the experts' input, tutti_moe_dispatch, the experts, then
 * tutti_moe_combine; a layout serves any number of dispatch/combine pairs
 * with the same routing.
 *
 * Dispatch and combine each make one tutti_alltoallv() over the layout's
 * communicator, and check their arguments on the calling rank only, as
 * every collective does: a rank that rejects its call leaves the others
 * waiting until TUTTI_OP_TIMEOUT. Their staging memory is kept in the layout
 * and only grows, so repeated calls of the same size allocate nothing.
 * A layout may be used by one thread at a time. It does not keep its
 * communicator alive: dispatch and combine need the communicator, the
 * other layout calls (destroy included) do not.
 */

/** The routing of one MoE step, as every rank involved knows it. */
typedef struct tutti_moe_layout *tutti_moe_layout_t;

/**
 * Build the layout for this rank's tokens; collective over @p comm.
 * Every rank checks its own arguments and then the ranks agree before any
 * routing is exchanged: if any rank's are bad (or it runs out of memory),
 * every rank returns the same error and no layout is made, and only the
 * rank that found the problem logs it. The communicator stays usable.
 * Communication: two small all-reduces (the agreements), an all-to-all of
 * per-pair counts and an all-to-all-v of routing records.
 * @param num_tokens this rank's tokens T (ranks may differ; 0 is valid).
 * @param top_k experts per token, >= 1; the same on every rank.
 * @param experts T x top_k expert ids, row-major; -1 leaves a slot empty.
 *        A token's ids must differ from each other.
 * @param weights T x top_k routing weights (used by combine), or NULL for
 *        weights of 1.
 * @param num_experts E, a positive multiple of the number of ranks; the
 *        same on every rank.
 * @param layout_p receives the layout; free it with tutti_moe_layout_destroy().
 * @return TUTTI_OK; TUTTI_ERR_INVALID_ARG (ids out of range or repeated,
 *         E not a multiple of the ranks, NULL arrays with T > 0, ranks that
 *         disagree on E or top_k, NULL @p layout_p), on every rank;
 *         TUTTI_ERR_NO_MEMORY, on every rank; TUTTI_ERR_INVALID_COMM (on
 *         the calling rank, before anything is exchanged); a failure status.
 */
TUTTI_API tutti_status_t tutti_moe_layout_create(size_t num_tokens, int top_k,
                                                 const int32_t *experts, const float *weights,
                                                 int num_experts, tutti_comm_t comm,
                                                 tutti_moe_layout_t *layout_p);

/**
 * What dispatch delivers to this rank: @p rows_p receives the number of
 * rows (tokens, one per local expert they are routed to); @p expert_rows
 * (E/n entries, or NULL) the rows of each local expert. Rows come grouped by
 * local expert, expert 0's first; within an expert, by origin rank and then
 * by token index there. Local.
 * @return TUTTI_OK; TUTTI_ERR_INVALID_ARG for a NULL layout or @p rows_p.
 */
TUTTI_API tutti_status_t tutti_moe_layout_rows(tutti_moe_layout_t layout, size_t *rows_p,
                                               size_t *expert_rows);

/**
 * Where each row dispatch delivers came from: its origin rank and token
 * index there (arrays of rows entries; either may be NULL). Local.
 * @return TUTTI_OK; TUTTI_ERR_INVALID_ARG for a NULL layout.
 */
TUTTI_API tutti_status_t tutti_moe_layout_origins(tutti_moe_layout_t layout, int *ranks,
                                                  size_t *tokens);

/**
 * Tokens this rank sends to each rank in dispatch (nranks entries): each
 * token once per rank that hosts any of its experts. Local.
 * @return TUTTI_OK; TUTTI_ERR_INVALID_ARG for a NULL argument.
 */
TUTTI_API tutti_status_t tutti_moe_layout_sent(tutti_moe_layout_t layout, size_t *tokens_per_rank);

/** Free a layout (local). @return TUTTI_OK; TUTTI_ERR_INVALID_ARG for NULL. */
TUTTI_API tutti_status_t tutti_moe_layout_destroy(tutti_moe_layout_t layout);

/**
 * Dispatch; collective over the layout's communicator. @p tokens holds
 * T x @p hidden elements; @p expert_input receives rows x hidden elements
 * in the order tutti_moe_layout_rows() describes. Any datatype; @p hidden
 * and @p datatype the same on every rank. Buffers need no alignment.
 * @return TUTTI_OK; TUTTI_ERR_INVALID_ARG (NULL layout, a NULL buffer that
 *         holds elements, @p hidden too large); TUTTI_ERR_UNSUPPORTED (not a
 *         datatype); TUTTI_ERR_NO_MEMORY (staging); a failure status.
 */
TUTTI_API tutti_status_t tutti_moe_dispatch(tutti_moe_layout_t layout, const void *tokens,
                                            size_t hidden, tutti_datatype_t datatype,
                                            void *expert_input);

/**
 * Combine; collective over the layout's communicator. @p expert_output
 * holds rows x @p hidden elements in dispatch's order; @p out receives
 * T x hidden: each token's sum over its experts of weight x output (zero
 * for a token routed nowhere). Float datatypes only; sums are taken in
 * fp32 (fp64 for TUTTI_FP64) in a fixed order, first on each expert rank
 * over its local experts, then at the origin over ranks in rank order, so
 * results are identical on every run (16-bit types round once per rank's
 * partial sum). Each product weight x output is rounded to fp32 (fp64)
 * before it is added; no fused multiply-add.
 * @return TUTTI_OK; TUTTI_ERR_INVALID_ARG (as dispatch);
 *         TUTTI_ERR_UNSUPPORTED (not fp32, fp64, fp16 or bf16);
 *         TUTTI_ERR_NO_MEMORY (staging); a failure status.
 */
TUTTI_API tutti_status_t tutti_moe_combine(tutti_moe_layout_t layout, const void *expert_output,
                                           size_t hidden, tutti_datatype_t datatype, void *out);

/**
 * Wait for a request to complete, then free it.
 * @return the operation's status (TUTTI_OK or an error);
 *         TUTTI_ERR_INVALID_ARG for NULL. May be called from any thread, once.
 */
TUTTI_API tutti_status_t tutti_wait(tutti_request_t request);

/**
 * Check a request without blocking (and move it along).
 * @return TUTTI_IN_PROGRESS if it is still running (the request stays
 *         valid); otherwise the operation's status, and the request is freed.
 */
TUTTI_API tutti_status_t tutti_test(tutti_request_t request);

#ifdef __cplusplus
}
#endif

#endif /* TUTTI_H */
