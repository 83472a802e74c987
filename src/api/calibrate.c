/*
 * Calibrating the cost model at communicator creation (TUTTI_CALIBRATE=yes).
 * The model's defaults describe a typical training host; a short probe
 * measures this one instead:
 *   - gamma: every rank times its fp32 sum kernel on a cache-sized buffer;
 *   - each link class that has a pair of ranks to measure it (two ranks of
 *     one host; the first ranks of the first two hosts): a ping-pong of
 *     small messages gives alpha, one of 1 MiB messages gives beta.
 * Every rank posts the same probe operations (ranks outside the pair run
 * empty ones), so operation numbers stay in step, and the figures are then
 * exchanged so that every rank adopts the same ones: all ranks must choose
 * their plans from the same model, or the plans would not match. The
 * slowest figure wins (the largest time per message, per byte).
 */
#include "config.h"

#include "api/calibrate.h"

#include "util/log.h"
#include "util/time.h"

#include <stdlib.h>
#include <string.h>

typedef struct calibrate_settings {
    int calibrate;
} calibrate_settings_t;

static const tt_config_field_t calibrate_fields[] = {
    {"CALIBRATE", "no",
     "measure the cost model's figures (reduction speed, latency and bandwidth of each link "
     "class) with a short probe when a communicator is created, instead of assuming defaults",
     TT_CFG_BOOL, offsetof(calibrate_settings_t, calibrate), NULL},
};

const tt_config_table_t tt_calibrate_config_table = {
    "calibrate", calibrate_fields, TT_ARRAY_SIZE(calibrate_fields), sizeof(calibrate_settings_t)};

#define SMALL_BYTES 8
#define SMALL_ROUND_TRIPS 64
#define LARGE_BYTES (1u << 20)
#define LARGE_ROUND_TRIPS 8
#define REDUCE_ELEMS (64 * 1024)
#define REDUCE_REPEATS 8

/* What one rank measured: seconds per byte combined, then per link class. */
typedef struct figures {
    double reduce_s_per_byte;
    double alpha[TT_LINK_CLASSES];
    double s_per_byte[TT_LINK_CLASSES];
} figures_t;

/* Seconds per byte of input this rank's fp32 sum kernel takes (best of a few runs). */
static double reduce_speed(tutti_comm_t comm)
{
    float *a = calloc(REDUCE_ELEMS, sizeof(float)), *b = calloc(REDUCE_ELEMS, sizeof(float));
    double best = 0;

    if (a == NULL || b == NULL)
        goto out;
    for (int i = 0; i < REDUCE_REPEATS; i++) {
        int64_t t0 = tt_time_ns();
        comm->kernels[TUTTI_FP32][TUTTI_SUM](a, a, b, REDUCE_ELEMS, 1);
        double t = (double)(tt_time_ns() - t0) * 1e-9;
        if (i == 0 || t < best)
            best = t;
    }
    best /= (double)(REDUCE_ELEMS * sizeof(float));
out:
    free(a);
    free(b);
    return best;
}

/*
 * @p round_trips round trips of @p bytes between ranks @p a and @p b, as one
 * operation every rank posts. Returns the seconds per round trip on rank a
 * (0 on the others) in @p rtt_p.
 */
static tutti_status_t ping_pong(tutti_comm_t comm, int a, int b, size_t bytes, int round_trips,
                                double *rtt_p)
{
    int me = comm->rank, peer = me == a ? b : a;
    char *out = calloc(1, bytes), *in = calloc(1, bytes);
    tt_schedule_t s;
    tt_op_t op;
    int32_t last = TT_NO_STEP;
    int64_t t0;
    tutti_status_t status = TUTTI_ERR_NO_MEMORY;

    tt_schedule_init(&s, 1);
    *rtt_p = 0;
    if (out == NULL || in == NULL)
        goto out;
    for (int i = 0; (me == a || me == b) && i < round_trips; i++) {
        tt_ref_t src = tt_ref(TT_BUF_SEND, 0), dst = tt_ref(TT_BUF_RECV, 0);
        if (me == a) {
            int32_t sent = tt_sched_send(&s, peer, src, bytes, 0, last, TT_NO_STEP);
            last = tt_sched_recv(&s, peer, dst, bytes, sent, TT_NO_STEP);
        } else {
            int32_t got = tt_sched_recv(&s, peer, dst, bytes, last, TT_NO_STEP);
            last = tt_sched_send(&s, peer, src, bytes, 0, got, TT_NO_STEP);
        }
    }
    status = tt_schedule_finalize(&s);
    if (status != TUTTI_OK)
        goto out;
    memset(&op, 0, sizeof(op));
    op.sched = &s;
    op.base[TT_BUF_SEND] = out;
    op.base[TT_BUF_RECV] = in;
    op.env.route = comm->route;
    op.name = "calibration";
    t0 = tt_time_ns();
    status = tt_engine_run(&comm->engine, &op);
    if (status == TUTTI_OK && me == a)
        *rtt_p = (double)(tt_time_ns() - t0) * 1e-9 / round_trips;
out:
    tt_schedule_fini(&s);
    free(out);
    free(in);
    return status;
}

/* A pair of ranks joined by a link of class @p cls, or 0 if there is none. */
static int find_pair(const tt_cluster_t *c, tt_link_class_t cls, int *a_p, int *b_p)
{
    if (cls == TT_LINK_NET) {
        if (c->nhosts < 2)
            return 0;
        *a_p = tt_cluster_rank(c, 0, 0);
        *b_p = tt_cluster_rank(c, 1, 0);
        return 1;
    }
    for (int h = 0; h < c->nhosts; h++)
        if (tt_cluster_host_size(c, h) >= 2) {
            *a_p = tt_cluster_rank(c, h, 0);
            *b_p = tt_cluster_rank(c, h, 1);
            return 1;
        }
    return 0;
}

/* Measure link class @p cls into @p f (on the pair's first rank; zeros elsewhere). */
static tutti_status_t measure_link(tutti_comm_t comm, tt_link_class_t cls, figures_t *f)
{
    double small, large;
    int a, b;

    if (!find_pair(&comm->hosts, cls, &a, &b))
        return TUTTI_OK;
    TT_CHECK(ping_pong(comm, a, b, SMALL_BYTES, SMALL_ROUND_TRIPS, &small));
    TT_CHECK(ping_pong(comm, a, b, LARGE_BYTES, LARGE_ROUND_TRIPS, &large));
    if (comm->rank == a) {
        f->alpha[cls] = small / 2;
        f->s_per_byte[cls] = TT_MAX(large / 2 - f->alpha[cls], 1e-12) / LARGE_BYTES;
    }
    return TUTTI_OK;
}

/* The slowest of every rank's figures (unmeasured ones are 0 and never win). */
static void slowest(const figures_t *all, int n, figures_t *out)
{
    const double *v = (const double *)all;
    double *o = (double *)out;
    size_t k = sizeof(figures_t) / sizeof(double);

    memset(out, 0, sizeof(*out));
    for (int r = 0; r < n; r++)
        for (size_t i = 0; i < k; i++)
            o[i] = TT_MAX(o[i], v[(size_t)r * k + i]);
}

static void adopt(tt_cost_model_t *cost, const figures_t *f)
{
    if (f->reduce_s_per_byte > 0)
        cost->gamma = 1 / f->reduce_s_per_byte;
    for (int c = 0; c < TT_LINK_CLASSES; c++)
        if (f->alpha[c] > 0) {
            cost->alpha[c] = f->alpha[c];
            cost->beta[c] = 1 / f->s_per_byte[c];
        }
}

tutti_status_t tt_calibrate(tutti_comm_t comm)
{
    calibrate_settings_t settings;
    figures_t mine = {0}, agreed, *all;
    tt_cost_model_t *cost = &comm->hosts.cost;
    tutti_status_t status;

    TT_CHECK(tt_config_load(&tt_calibrate_config_table, &comm->overrides, &settings));
    if (!settings.calibrate)
        return TUTTI_OK;
    all = malloc((size_t)comm->nranks * sizeof(*all));
    if (all == NULL)
        return TUTTI_ERR_NO_MEMORY;
    mine.reduce_s_per_byte = reduce_speed(comm);
    status = measure_link(comm, TT_LINK_SHM, &mine);
    if (status == TUTTI_OK)
        status = measure_link(comm, TT_LINK_NET, &mine);
    if (status == TUTTI_OK)
        status = tt_bootstrap_allgather(comm->bs, comm->ctx, comm->rank, comm->nranks,
                                        comm->session_ranks, &mine, sizeof(mine), all,
                                        tt_deadline_after(comm->exec.op_timeout_ns));
    if (status == TUTTI_OK) {
        slowest(all, comm->nranks, &agreed);
        adopt(cost, &agreed);
        tt_info("calibrated: reduce %.2f GB/s; shm alpha %.2f us, beta %.2f GB/s; net alpha %.2f "
                "us, beta %.2f GB/s%s",
                cost->gamma * 1e-9, cost->alpha[TT_LINK_SHM] * 1e6, cost->beta[TT_LINK_SHM] * 1e-9,
                cost->alpha[TT_LINK_NET] * 1e6, cost->beta[TT_LINK_NET] * 1e-9,
                comm->cluster_from_file ? " (not applied: plans follow TUTTI_CLUSTER_FILE's costs)"
                                        : "");
        if (!comm->cluster_from_file)
            comm->cluster.cost = *cost;
    }
    free(all);
    return status;
}
