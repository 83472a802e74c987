/*
 * tutti-topo simulate: every rank's plan for one call, timed by the schedule
 * simulator (streamed in parts when the whole does not fit), or refused.
 */
#include "config.h"

#include "topo_cmd.h"

#include "coll/cost.h"
#include "plan/simulate.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

/* Seconds on the monotonic clock. */
static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* The process's peak resident memory, in bytes. */
static double peak_rss(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss * 1024.0;
}

/* Memory the kernel says a new allocation can get (MemAvailable), 0 if unknown. */
static double available_memory(void)
{
    char line[256];
    double kb = 0;
    FILE *f = fopen("/proc/meminfo", "r");

    if (f == NULL)
        return 0;
    while (fgets(line, sizeof(line), f) != NULL)
        if (sscanf(line, "MemAvailable: %lf kB", &kb) == 1)
            break;
    fclose(f);
    return kb * 1024.0;
}

static void simulate_usage(FILE *out)
{
    fprintf(
        out,
        "usage: tutti-topo simulate [CLUSTER] [--collective C] [--algo A] [--size S]\n"
        "                           [--chunk S] [--channels N] [--root r] [--nics-by "
        "rank|channel]\n"
        "                           [--elem-size B] [--max-steps N] [--whole]\n"
        "Build every rank's plan for one call of --size bytes (default 64M) and time it with\n"
        "the schedule simulator (rendezvous messages, FIFO links, per-NIC bandwidth, one\n"
        "compute per rank; see src/plan/simulate.h); print the simulated and the model's\n"
        "time and bus bandwidth, the bytes on each link class, the busiest link and NIC, and\n"
        "what building and simulating cost. A plan that does not fit (more than --max-steps\n"
        "steps, default 200M, or more than the available memory) is streamed if it comes in\n"
        "parts: a window of parts is held for all ranks, the next built as the ranks come\n"
        "to it; if even the window does not fit, the plan is refused, with the model's\n"
        "prediction.\n" CLUSTER_USAGE
        "  --algo A                as 'draw' (default: what tutti would choose)\n"
        "  --chunk S, --channels N override the pipeline chunk and the channels\n"
        "  --root r                root of a broadcast or reduce (default 0)\n"
        "  --elem-size B           bytes per element (default 4)\n"
        "  --max-steps N           K, M, G: thousands, millions, billions (default 200M)\n"
        "  --nics-by rank|channel  a rank uses its nearest NIC (default), or the channel picks\n"
        "                          the rail on both ends\n"
        "  --whole                 one part per plan, whatever TUTTI_PART_STEPS says (the\n"
        "                          engine runs a large plan in parts, each rank starting a part\n"
        "                          once its own previous one is complete)\n");
}

/* What building plans for a simulation cost, and how many steps they held. */
typedef struct plan_cost {
    uint64_t steps, biggest; /* in all; the most of one rank */
    double build, add;       /* seconds building plans; copying them into the simulator */
} plan_cost_t;

/* @p steps steps in @p bytes of memory fit in the limit and in what is @p avail (0: unknown). */
static int fits(uint64_t steps, double bytes, uint64_t max_steps, double avail)
{
    return steps <= max_steps && (avail <= 0 || bytes <= 0.8 * avail);
}

/*
 * Add every rank's plan of @p d, in @p nparts parts, to @p sim: build, copy
 * and free one part of one rank's plan at a time, so that only the compact
 * copies stay. Non-zero on failure (logged).
 */
static int add_plans(tt_simulator_t *sim, tt_coll_desc_t d, int nparts, plan_cost_t *cost)
{
    for (int r = 0; r < d.nranks; r++) {
        uint64_t rank_steps = 0;
        d.rank = r;
        for (int part = 0; part < nparts; part++) {
            tt_schedule_t s;
            double t1 = now(), t2;
            tutti_status_t status;

            tt_schedule_init(&s, d.elem_size);
            status = nparts > 1 ? tt_coll_build_part(&d, part, &s) : tt_coll_build(&d, &s);
            t2 = now();
            cost->build += t2 - t1;
            if (status == TUTTI_OK)
                status = tt_simulator_add(sim, r, &s);
            cost->add += now() - t2;
            rank_steps += (uint64_t)s.nsteps;
            tt_schedule_fini(&s);
            if (status != TUTTI_OK) {
                fprintf(stderr, "tutti-topo: part %d of rank %d's plan: %s\n", part, r,
                        tutti_status_string(status));
                return 1;
            }
        }
        cost->steps += rank_steps;
        cost->biggest = TT_MAX(cost->biggest, rank_steps);
    }
    return 0;
}

/* Where a streamed simulation's parts come from (tt_simulator_source_t.ctx). */
typedef struct stream_ctx {
    tt_coll_desc_t d;
    uint64_t *rank_steps; /* per rank: steps built */
    double build;         /* seconds spent building */
} stream_ctx_t;

static tutti_status_t build_streamed(void *ctx, int rank, int part, tt_schedule_t *s)
{
    stream_ctx_t *sc = ctx;
    double t = now();
    tutti_status_t status;

    sc->d.rank = rank;
    status = tt_coll_build_part(&sc->d, part, s);
    sc->build += now() - t;
    sc->rank_steps[rank] += (uint64_t)s->nsteps;
    return status;
}

/*
 * Simulate every rank's plan of @p d, in @p nparts parts, on @p sim,
 * streamed @p window parts at a time (copying the parts is part of the
 * simulation). Non-zero on failure (logged).
 */
static int stream_plans(tt_simulator_t *sim, const tt_coll_desc_t *d, int nparts, int window,
                        tt_simulator_result_t *res, plan_cost_t *cost)
{
    stream_ctx_t sc = {*d, calloc((size_t)d->nranks, sizeof(uint64_t)), 0};
    tt_simulator_source_t src = {.ctx = &sc,
                                 .build = build_streamed,
                                 .elem_size = d->elem_size,
                                 .nparts = nparts,
                                 .window = window};
    tutti_status_t status;

    if (sc.rank_steps == NULL)
        return out_of_memory("for the step counts");
    status = tt_simulator_stream(sim, &src, res);
    for (int r = 0; r < d->nranks; r++) {
        cost->steps += sc.rank_steps[r];
        cost->biggest = TT_MAX(cost->biggest, sc.rank_steps[r]);
    }
    cost->build = sc.build;
    free(sc.rank_steps);
    if (status != TUTTI_OK) {
        fprintf(stderr, "tutti-topo: the simulation failed\n");
        return 1;
    }
    return 0;
}

int cmd_simulate(int argc, char **argv)
{
    static const struct option options[] = {CLUSTER_LONG_OPTIONS,
                                            {"collective", required_argument, NULL, OPT_COLLECTIVE},
                                            {"algo", required_argument, NULL, OPT_ALGO},
                                            {"size", required_argument, NULL, OPT_SIZE},
                                            {"chunk", required_argument, NULL, OPT_CHUNK},
                                            {"channels", required_argument, NULL, OPT_CHANNELS},
                                            {"root", required_argument, NULL, OPT_ROOT},
                                            {"elem-size", required_argument, NULL, OPT_ELEM},
                                            {"nics-by", required_argument, NULL, OPT_NICS_BY},
                                            {"max-steps", required_argument, NULL, OPT_MAX_STEPS},
                                            {"whole", no_argument, NULL, OPT_WHOLE},
                                            {"help", no_argument, NULL, 'h'},
                                            {NULL, 0, NULL, 0}};
    cluster_opts_t o = CLUSTER_OPTS_DEFAULT;
    tt_coll_kind_t kind = TT_COLL_ALLREDUCE;
    tt_algo_t algo = TT_ALGO_AUTO;
    uint64_t size = 64ull << 20, chunk = 0, max_steps = DEFAULT_MAX_STEPS, most, estimate;
    uint64_t part_most, held;
    int channels = 0, root = 0, elem = 4, by_channel = 0, whole = 0, nparts, opt, bad = 0;
    int result = EXIT_FAIL, window, stream;
    int32_t *host = NULL, *nic = NULL;
    double model, t0, t_run, footprint, held_footprint, avail, factor;
    plan_cost_t cost = {0, 0, 0, 0};
    tt_simulator_t *sim = NULL;
    tt_simulator_hosts_t hosts;
    tt_simulator_result_t res;
    tt_simulator_net_t net;
    tt_coll_desc_t d;
    tt_cluster_t c;
    const char *why;
    char a[32], b[32], e[32];

    while ((opt = getopt_long(argc, argv, "h", options, NULL)) != -1) {
        if (opt == 'h') {
            simulate_usage(stdout);
            return EXIT_OK;
        }
        if (cluster_option(&o, opt, optarg, &bad))
            continue;
        switch (opt) {
        case OPT_COLLECTIVE: bad |= !kind_by_name(optarg, &kind); break;
        case OPT_ALGO: bad |= !algo_by_name(optarg, &algo); break;
        case OPT_SIZE: bad |= !parse_bytes(optarg, &size); break;
        case OPT_CHUNK: bad |= !parse_bytes(optarg, &chunk) || chunk == 0; break;
        case OPT_CHANNELS: bad |= !parse_int(optarg, 1, &channels); break;
        case OPT_ROOT: bad |= !parse_int(optarg, 0, &root); break;
        case OPT_ELEM: bad |= !parse_int(optarg, 1, &elem); break;
        case OPT_NICS_BY:
            by_channel = strcmp(optarg, "channel") == 0;
            bad |= !by_channel && strcmp(optarg, "rank") != 0;
            break;
        case OPT_MAX_STEPS: bad |= !parse_count(optarg, &max_steps); break;
        case OPT_WHOLE: whole = 1; break;
        default: bad = 1;
        }
    }
    if (bad || optind != argc) {
        simulate_usage(stderr);
        return EXIT_USAGE;
    }
    if (load_cluster(&o, &c) != 0)
        return EXIT_FAIL;
    if (root >= c.nranks) {
        fprintf(stderr, "tutti-topo: root %d is not a rank (0..%d)\n", root, c.nranks - 1);
        goto out;
    }
    d = make_desc(kind, size, (size_t)elem, root, &c);
    why = resolve(&d, &c, algo, (size_t)chunk, channels);
    if (why == NULL || !algo_usable(d.algo, kind, &c))
        goto out;
    model = tt_cost_predict(&d, &c);
    factor = busbw_factor(kind, c.nranks);
    printf("simulate: %s of %s per rank (%llu elements of %d bytes) on %d hosts x %d ranks (%d), "
           "%d rail%s\n",
           tt_coll_kind_names[kind], format_bytes((double)tt_cost_bytes(&d), a, sizeof(a)),
           (unsigned long long)d.count, elem, c.nhosts, c.ranks_per_host, c.nranks, c.rails,
           c.rails == 1 ? "" : "s");
    if (whole)
        d.part_steps = 0;
    nparts = tt_coll_parts(&d);
    printf("  plan        %s (decided by %s), %d channel%s, chunk %s, %d part%s",
           tt_algo_names[d.algo], why, d.channels, d.channels == 1 ? "" : "s",
           format_bytes((double)d.chunk_bytes, a, sizeof(a)), nparts, nparts == 1 ? "" : "s");
    if (nparts > 1)
        printf(" of ~%u steps (TUTTI_PART_STEPS)", (unsigned)d.part_steps);
    printf("\n");

    /* Refuse what would not fit, before building it. A plan being built takes ~160 B a step.
     * Streamed, the simulator holds a window of parts for all ranks. */
    if (estimate_steps(d, &estimate, &most, &part_most) != 0)
        goto out;
    footprint = (double)tt_simulator_footprint(estimate) + (double)most * 160;
    window = TT_MIN(nparts, TT_SIMULATOR_WINDOW);
    held = part_most * (uint64_t)window * (uint64_t)c.nranks;
    held_footprint = (double)tt_simulator_footprint(held) + (double)part_most * 160;
    avail = available_memory();
    stream = !fits(estimate, footprint, max_steps, avail) && window < nparts &&
             fits(held, held_footprint, max_steps, avail);
    if (!stream && !fits(estimate, footprint, max_steps, avail)) {
        printf("  refused     the plans would hold about %.3g steps (%.3g per rank; limit %.3g "
               "steps, ~%s of memory to simulate, %s available",
               (double)estimate, (double)most, (double)max_steps,
               format_bytes(footprint, b, sizeof(b)), format_bytes(avail, e, sizeof(e)));
        if (window < nparts)
            printf("; streamed %d parts at a time, about %.3g steps and ~%s", window, (double)held,
                   format_bytes(held_footprint, b, sizeof(b)));
        printf(")\n");
        printf("  model       %s, busbw %.2f GB/s (not simulated)\n",
               format_seconds(model, a, sizeof(a)),
               factor * (double)tt_cost_bytes(&d) / model / 1e9);
        fprintf(stderr,
                "tutti-topo: not simulating a %s plan of about %.3g steps (limit %.3g); the model "
                "predicts %s\n",
                tt_algo_names[d.algo], (double)estimate, (double)max_steps,
                format_seconds(model, a, sizeof(a)));
        goto out;
    }

    host = malloc((size_t)c.nranks * sizeof(int32_t));
    nic = malloc((size_t)c.nranks * sizeof(int32_t));
    if (host == NULL || nic == NULL) {
        out_of_memory("for the ranks' places");
        goto out;
    }
    for (int r = 0; r < c.nranks; r++) {
        host[r] = c.places[r].host;
        nic[r] = c.places[r].nic;
    }
    hosts = (tt_simulator_hosts_t){c.nranks,
                                   c.nhosts,
                                   host,
                                   by_channel ? NULL : nic,
                                   c.rails,
                                   {c.cost.alpha[TT_LINK_SHM], c.cost.alpha[TT_LINK_NET]},
                                   {c.cost.beta[TT_LINK_SHM], c.cost.beta[TT_LINK_NET]}};
    tt_simulator_hosts_net(&hosts, c.cost.gamma, &net);
    if (tt_simulator_create(c.nranks, &net, &sim) != TUTTI_OK)
        goto out;
    /* Parts run one after another, as the engine runs them. */
    if (stream) {
        t0 = now();
        if (stream_plans(sim, &d, nparts, window, &res, &cost) != 0)
            goto out;
        t_run = now() - t0 - cost.build;
    } else {
        if (add_plans(sim, d, nparts, &cost) != 0)
            goto out;
        t0 = now();
        if (tt_simulator_run(sim, &res) != TUTTI_OK) {
            fprintf(stderr, "tutti-topo: the simulation failed\n");
            goto out;
        }
        t_run = now() - t0;
    }

    printf("  time        simulated %s, model %s (model/simulated %.3f)\n",
           format_seconds(res.time, a, sizeof(a)), format_seconds(model, b, sizeof(b)),
           res.time > 0 ? model / res.time : 0);
    if (factor > 0 && res.time > 0)
        printf("  busbw       simulated %.2f GB/s, model %.2f GB/s\n",
               factor * (double)tt_cost_bytes(&d) / res.time / 1e9,
               factor * (double)tt_cost_bytes(&d) / model / 1e9);
    for (int k = 0; k < res.nclasses; k++)
        printf("  bytes %-5s %s in %llu messages\n", net.class_names[k],
               format_bytes((double)res.class_bytes[k], a, sizeof(a)),
               (unsigned long long)res.class_messages[k]);
    printf("  messages    %llu on %llu links, %s in all\n", (unsigned long long)res.messages,
           (unsigned long long)res.links, format_bytes((double)res.bytes, a, sizeof(a)));
    if (res.busiest_link.from >= 0)
        printf("  busiest link rank %d -> rank %d (%s): %s in %llu messages, busy %s (%.0f%% of "
               "the run)\n",
               res.busiest_link.from, res.busiest_link.to,
               net.class_names[c.places[res.busiest_link.from].host ==
                                       c.places[res.busiest_link.to].host
                                   ? 0
                                   : 1],
               format_bytes((double)res.busiest_link.bytes, a, sizeof(a)),
               (unsigned long long)res.busiest_link.messages,
               format_seconds(res.busiest_link.busy, b, sizeof(b)),
               res.time > 0 ? 100 * res.busiest_link.busy / res.time : 0);
    if (res.busiest_port.port >= 0) {
        /* Ports: each NIC's, then each rank's shared-memory copies (tt_simulator_hosts_t). */
        int p = res.busiest_port.port / 2, nics = c.nhosts * c.rails;
        char where[64];
        if (p < nics)
            snprintf(where, sizeof(where), "NIC host %d NIC %d", p / c.rails, p % c.rails);
        else
            snprintf(where, sizeof(where), "copy port rank %d", p - nics);
        printf("  busiest %s %s: %s in %llu messages, busy %s (%.0f%% of the run)\n", where,
               res.busiest_port.port % 2 ? "in" : "out",
               format_bytes((double)res.busiest_port.bytes, a, sizeof(a)),
               (unsigned long long)res.busiest_port.messages,
               format_seconds(res.busiest_port.busy, b, sizeof(b)),
               res.time > 0 ? 100 * res.busiest_port.busy / res.time : 0);
    }
    {
        int first = 0;
        for (int r = 1; r < c.nranks; r++)
            if (res.rank_finish[r] < res.rank_finish[first])
                first = r;
        printf("  ranks       first done: rank %d at %s\n", first,
               format_seconds(res.rank_finish[first], a, sizeof(a)));
    }
    printf("  steps       %llu (at most %llu per rank), %llu ran\n", (unsigned long long)cost.steps,
           (unsigned long long)cost.biggest, (unsigned long long)res.steps_run);
    if (stream) {
        printf("  streamed    %d parts at a time (~%.3g steps held), ", window, (double)held);
        if (res.waits == 0)
            printf("no rank waited: times as the whole plan's\n");
        else
            printf("ranks waited %llu times for a part not built yet (%s in all): times may be "
                   "late\n",
                   (unsigned long long)res.waits, format_seconds(res.wait_seconds, a, sizeof(a)));
        printf("  plans       built in %.2f s, copied as they were built\n", cost.build);
    } else {
        printf("  plans       built in %.2f s, copied in %.2f s\n", cost.build, cost.add);
    }
    printf("  simulation  %.2f s, simulator memory %s, process peak %s\n", t_run,
           format_bytes((double)res.memory_bytes, a, sizeof(a)),
           format_bytes(peak_rss(), b, sizeof(b)));
    result = EXIT_OK;
    if (res.deadlock) {
        printf("  DEADLOCK    %llu steps never ran (%llu transfers without a partner); first: "
               "rank %d step %d\n",
               (unsigned long long)(res.steps - res.steps_run), (unsigned long long)res.unmatched,
               res.stuck_rank, (int)res.stuck_step);
        result = EXIT_FAIL;
    }
    tt_simulator_result_fini(&res);
out:
    tt_simulator_destroy(sim);
    free(host);
    free(nic);
    tt_cluster_fini(&c);
    return result;
}
