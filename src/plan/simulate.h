/*
 * A timing simulator over schedules: given every rank's finalized schedule
 * and what a message costs between two ranks, predict when each rank
 * finishes, which links carry how much, and whether the plan deadlocks. It
 * checks the cost model's formulas (src/coll/cost.c) against the plans the
 * algorithms really build, and tutti-topo prints what it finds.
 *
 * The model (event-driven, deterministic, no randomness, no wall clock):
 *
 *  - Steps run by the executor's rules (src/exec/exec.c): a step is ready
 *    once its dependencies have completed and, for a transfer, once the
 *    previous transfer of the same direction with the same peer has been
 *    posted. Local steps run when ready; a ready transfer is posted at once.
 *  - Matching is by order, as the transports do it: the k-th send from a to
 *    b meets the k-th receive (RECV or RECV_REDUCE) at b from a.
 *  - Rendezvous: a message moves once both its send and its receive are
 *    posted. It then waits for its resources, first come first served:
 *      * the directed link (from -> to) between the two ranks, which it
 *        occupies for its whole time alpha + bytes / beta (Hockney: messages
 *        on one link follow each other, each paying its alpha, as in the
 *        textbook pipeline formula);
 *      * the shared ports of its route (for messages between hosts: the
 *        sender's NIC egress and the receiver's NIC ingress), which it
 *        occupies for bytes / beta only: ranks sharing a NIC share its
 *        bandwidth, while latency is not a property of the port.
 *    It starts when the last of them is free and arrives alpha + bytes /
 *    beta later, which completes both the send and the receive.
 *  - A RECV_REDUCE then combines the data on the receiver's compute, for
 *    bytes / reduce rate; a rank's compute does one thing at a time
 *    (first come first served), so combinations on one rank serialise.
 *    REDUCE takes bytes / reduce rate and COPY bytes / copy rate on the
 *    same compute; JOIN costs nothing.
 *  - Alpha, beta, the link class and the ports of a message come from the
 *    caller (tt_simulator_net_t) for the sender, the receiver and the
 *    send's channel, so that this module knows nothing of topology;
 *    tt_simulator_hosts_net() provides the usual two-level network (ranks
 *    on hosts, NICs per host).
 *  - Times are exact sums of the costs (no jitter, no protocol overheads
 *    beyond alpha); equal times are broken by rank and step, so the same
 *    plans always give the same result, to the bit.
 *
 * Results: completion time (the last rank's finish), every rank's finish,
 * bytes and messages per link class, the busiest link (most bytes) and the
 * busiest port with their busy time, the number of messages, and a deadlock
 * flag with the first step that never ran (a receive without a send, or
 * ranks waiting on each other).
 *
 *  - A plan may come in parts (see tt_simulator_add), each rank starting
 *    its next part once its previous ones are complete, as the engine does.
 *
 * Cost: O(S log P) time for S steps in all, P the messages and computations
 * in flight at once (a heap of events), and about 32 bytes per step plus 4
 * per dependency edge, at a few hundred ns per step. Two ways to feed it:
 *
 *  - Whole plans (tt_simulator_add, then tt_simulator_run): every step of
 *    every rank is held until the run. Schedules are added one by one and
 *    may be freed as they are, so a plan of 150M steps (2048 hosts x 8
 *    ranks, hierarchical allreduce of 64 MiB) simulates in 5 GB.
 *  - Streamed (tt_simulator_stream), for plans in parts: only a window of
 *    parts is held for all ranks. The simulator builds parts through a
 *    callback, frees a part once every rank has completed it and builds the
 *    next in its place, so memory is a few parts' worth at any length: a
 *    ring allreduce of 16384 ranks (1.07e9 steps) holds 2 parts of ~4096
 *    steps per rank, about 5 GB. A rank that wants a part not built yet
 *    waits for it; the result counts such waits (none means the times are
 *    exactly those of the whole plan).
 *
 * Not thread safe; distinct simulators are independent.
 */
#ifndef TT_PLAN_SIMULATE_H
#define TT_PLAN_SIMULATE_H

#include "plan/schedule.h"

#include <stddef.h>
#include <stdint.h>

#define TT_SIMULATOR_MAX_CLASSES 4 /* link classes a network may name */
#define TT_SIMULATOR_MAX_PORTS 2   /* shared ports one message may cross */

/* How one message travels: filled in by the network's route function. */
typedef struct tt_simulator_route {
    int cls;      /* link class, 0 .. nclasses - 1 (for the tally of bytes per class) */
    double alpha; /* seconds per message */
    double beta;  /* bytes per second */
    int nports;   /* shared ports on the way, 0 .. TT_SIMULATOR_MAX_PORTS */
    int32_t port[TT_SIMULATOR_MAX_PORTS]; /* their ids, 0 .. nports - 1 of the network */
} tt_simulator_route_t;

/* What messages cost and what a rank computes per second. */
typedef struct tt_simulator_net {
    void *ctx;
    /*
     * Describe a message from rank @p from to rank @p to on channel
     * @p channel (the step's). Must be a pure function of its arguments.
     */
    void (*route)(void *ctx, int from, int to, int channel, tt_simulator_route_t *route_p);
    int nclasses;                   /* 1 .. TT_SIMULATOR_MAX_CLASSES */
    const char *const *class_names; /* nclasses names, or NULL */
    int32_t nports;                 /* number of shared ports (ids 0 .. nports - 1) */
    double reduce_bps;              /* bytes per second one rank combines (gamma) */
    double copy_bps;                /* bytes per second one rank copies (0: as reduce_bps) */
} tt_simulator_net_t;

/*
 * The usual two-level network: ranks on hosts, each host with @c rails
 * NICs. Two ranks of one host talk over class 0 ("shm") with alpha[0] and
 * beta[0], through the sender's copy-out port and the receiver's copy-in
 * port (a rank copies one message each way at a time, so a rank with
 * several peers shares its memory bandwidth among them); ranks of different
 * hosts over class 1 ("net") with alpha[1] and beta[1], through the
 * sender's NIC and the receiver's NIC, which are the shared ports. Which NIC a rank uses: its own
 * (@c nic, the nearest one, as a launcher binds ranks) when @c nic is given and names one; else the
 * message's channel picks the rail (channel mod rails), on both ends (a
 * rail-aligned fabric). Port ids: 2 * (host * rails + rail) for NICs, then
 * 2 * (nhosts * rails + rank) for copies; + 1 for the ingress side.
 */
typedef struct tt_simulator_hosts {
    int nranks, nhosts;
    const int32_t *host; /* host of each rank, 0 .. nhosts - 1 */
    const int32_t *nic;  /* NIC of each rank (0 .. rails - 1, -1 none), or NULL: by channel */
    int rails;           /* NICs per host, at least 1 */
    double alpha[2], beta[2];
} tt_simulator_hosts_t;

/*
 * Fill @p net for @p hosts (which must outlive it) and @p gamma, the bytes
 * per second a rank combines (copies go at beta[0]).
 */
void tt_simulator_hosts_net(const tt_simulator_hosts_t *hosts, double gamma,
                            tt_simulator_net_t *net);

/* The busiest directed link or port. */
typedef struct tt_simulator_busiest {
    int from, to;      /* link: its ranks; port: -1 */
    int32_t port;      /* port: its id; link: -1 */
    uint64_t bytes;    /* what crossed it */
    uint64_t messages; /* how many messages */
    double busy;       /* seconds it was occupied */
} tt_simulator_busiest_t;

typedef struct tt_simulator_result {
    double time;         /* when the last rank finished (of the steps that ran) */
    double *rank_finish; /* per rank: when its last step completed (0 for no steps) */
    int nranks;
    int nclasses;
    uint64_t class_bytes[TT_SIMULATOR_MAX_CLASSES];
    uint64_t class_messages[TT_SIMULATOR_MAX_CLASSES];
    uint64_t messages, bytes;            /* all messages that moved */
    uint64_t links;                      /* distinct directed links used */
    tt_simulator_busiest_t busiest_link; /* most bytes (then longest busy), from = -1 if none */
    tt_simulator_busiest_t busiest_port; /* most bytes, port = -1 if none */
    uint64_t steps, steps_run;
    int deadlock;           /* 1 if some step never ran */
    int stuck_rank;         /* deadlock: the lowest rank with a step that never ran */
    int32_t stuck_step;     /* and its first such step */
    uint64_t unmatched;     /* transfers with no partner in the peer's schedule */
    uint64_t size_mismatch; /* matched transfers whose sizes differ (the send's size counts) */
    size_t memory_bytes;    /* the most memory the simulator held at once */
    uint64_t waits;         /* streamed: times a rank found its next part not built yet */
    double wait_seconds;    /* and the simulated time such ranks waited, in all */
} tt_simulator_result_t;

typedef struct tt_simulator tt_simulator_t;

/*
 * A simulator for @p nranks ranks over @p net (copied; its ctx must outlive
 * the simulator). @return TUTTI_OK, TUTTI_ERR_INVALID_ARG (bad network,
 * nranks < 1 or above 2^24), TUTTI_ERR_NO_MEMORY. *sim_p is set on success.
 */
tutti_status_t tt_simulator_create(int nranks, const tt_simulator_net_t *net,
                                   tt_simulator_t **sim_p);
void tt_simulator_destroy(tt_simulator_t *sim);

/*
 * Copy what timing needs of rank @p rank's finalized schedule @p s: the
 * caller may free @p s afterwards. Every rank needs one (an empty schedule
 * will do). Adding more for a rank appends parts, as the engine runs plans
 * in parts (tt_coll_build_part): a part starts once every step of the
 * rank's earlier parts has completed, and its transfers match those of the
 * same part on the peer (every rank cuts its plan alike).
 * @return TUTTI_OK; TUTTI_ERR_INVALID_ARG (rank out of range, simulation
 *         already run, schedule not finalized, a transfer to itself or to a
 *         rank out of range: logged; nothing added); TUTTI_ERR_NO_MEMORY.
 */
tutti_status_t tt_simulator_add(tt_simulator_t *sim, int rank, const tt_schedule_t *s);

/*
 * Match the transfers and run every rank's steps to the end (or until
 * nothing can move: a deadlock is a result, not an error). Fills @p result
 * (free it with tt_simulator_result_fini). Once per simulator.
 * @return TUTTI_OK; TUTTI_ERR_INVALID_ARG if a rank has no schedule, the
 *         simulator already ran or the network gave an invalid route
 *         (logged); TUTTI_ERR_NO_MEMORY. @p result is set only on success.
 */
tutti_status_t tt_simulator_run(tt_simulator_t *sim, tt_simulator_result_t *result);

void tt_simulator_result_fini(tt_simulator_result_t *result);

/*
 * Parts held at once by default when streaming. Two let a rank run a whole
 * part ahead of the slowest rank before it must wait; ranks in a ring or a
 * hierarchical plan stay within a few rounds of each other, a part holds
 * hundreds of rounds or more, so they never wait. One would make every rank
 * wait at every cut for the last rank to finish the part.
 */
#define TT_SIMULATOR_WINDOW 2

/* Where a streamed plan comes from. */
typedef struct tt_simulator_source {
    void *ctx;
    /*
     * Build part @p part of rank @p rank's plan into @p s (initialised for
     * elem_size by the simulator, which frees it afterwards) and finalize it.
     * Must be a pure function of its arguments; every rank cuts its plan at
     * the same rounds (as tt_coll_build_part does), so that a part's
     * messages all match within it.
     */
    tutti_status_t (*build)(void *ctx, int rank, int part, tt_schedule_t *s);
    size_t elem_size; /* of the schedules */
    int nparts;       /* every rank's plan comes in this many parts, at least 1 */
    int window;       /* parts held at once, at least 1; 0: TT_SIMULATOR_WINDOW */
} tt_simulator_source_t;

/*
 * Run @p src's plan on a simulator to which nothing was added, building its
 * parts as the ranks come to them: parts 0 .. window - 1 first; once every
 * rank has completed part k, part k + window replaces it. Results as
 * tt_simulator_run's, bit for bit when no rank had to wait (result->waits
 * is 0); a deadlocked run still builds the parts it never reached, to count
 * their steps. Once per simulator.
 * @return as tt_simulator_run; TUTTI_ERR_INVALID_ARG also for a bad source
 *         or a simulator that has schedules; a failure of src->build (logged).
 */
tutti_status_t tt_simulator_stream(tt_simulator_t *sim, const tt_simulator_source_t *src,
                                   tt_simulator_result_t *result);

/* All in one: simulate @p nranks schedules @p scheds over @p net. */
tutti_status_t tt_simulate(const tt_schedule_t *const *scheds, int nranks,
                           const tt_simulator_net_t *net, tt_simulator_result_t *result);

/* About how many bytes the simulator holds for @p steps steps (to refuse a plan too large). */
uint64_t tt_simulator_footprint(uint64_t steps);

#endif
