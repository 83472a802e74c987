/*
 * The cluster view a communicator builds at creation (src/api/place.c), on
 * real forked ranks describing their host from the hwloc fixtures: which
 * ranks share a host, each rank's NUMA node and rail, the rails; rings over
 * that view leave every host through the NIC of their channel; and the
 * calibration probe leaves every rank with the same cost model.
 */
#include "config.h"

#include "api/comm.h"
#include "coll/ring.h"
#include "tests/lib/ranks.h"
#include "tests/lib/unit.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DGX "dgx-like-2s-8nic-8gpu.xml"
#define TWO_NUMA "2numa-2nic.xml"
#define SMALL "small-1socket.xml"

static const char *fixture(const char *dir, const char *name)
{
    static char path[1024];
    const char *top = getenv("TOP_SRCDIR");
    snprintf(path, sizeof(path), "%s%stests/fixtures/%s/%s", top != NULL ? top : "",
             top != NULL ? "/" : "", dir, name);
    ck_assert_msg(access(path, R_OK) == 0, "fixture %s not found (is TOP_SRCDIR set?)", path);
    return path;
}

/* What every rank of a fixture host should see, and settings to add. */
typedef struct expect {
    const char *topo_file;
    int rails;
    int numa_div, nic_div; /* rank r sits on NUMA node r / numa_div and rail r / nic_div */
    const char *extra[2];  /* one more setting, or NULLs */
} expect_t;

static tutti_comm_t comm_for(int rank, int n, const tutti_unique_id_t *id, const expect_t *e)
{
    tutti_config_t config;
    tutti_comm_t comm;

    ck_assert_int_eq(tutti_config_create(&config), TUTTI_OK);
    if (e->topo_file != NULL)
        ck_assert_int_eq(tutti_config_set(config, "TUTTI_TOPO_FILE", e->topo_file), TUTTI_OK);
    if (e->extra[0] != NULL)
        ck_assert_int_eq(tutti_config_set(config, e->extra[0], e->extra[1]), TUTTI_OK);
    comm = tt_test_comm(rank, n, id, config);
    tutti_config_destroy(config);
    return comm;
}

/* The cluster @p c, as every rank should have it: the same on all of them. */
static int same_everywhere(int rank, tutti_comm_t comm, const tt_cluster_t *c)
{
    int n = comm->nranks;
    tt_rank_place_t *all = malloc((size_t)n * (size_t)n * sizeof(*all));
    int bad = 0;

    if (tutti_allgather(c->places, all, (size_t)n * sizeof(*all), TUTTI_UINT8, comm) != TUTTI_OK)
        bad = tt_fail(rank, "allgather of the views failed");
    for (int r = 0; r < n && !bad; r++)
        if (memcmp(&all[(size_t)r * (size_t)n], c->places, (size_t)n * sizeof(*all)) != 0)
            bad = tt_fail(rank, "rank %d sees another cluster", r);
    free(all);
    return bad;
}

static int fixture_host_rank(int rank, int n, const tutti_unique_id_t *id, void *arg)
{
    const expect_t *e = arg;
    tutti_comm_t comm = comm_for(rank, n, id, e);
    const tt_cluster_t *c = &comm->hosts;
    int bad = 0;

    if (c->nranks != n || c->nhosts != 1 || c->ranks_per_host != n || comm->local_ranks != n ||
        c->rails != e->rails)
        bad = tt_fail(rank, "%d ranks, %d hosts, %d per host, %d local, %d rails", c->nranks,
                      c->nhosts, c->ranks_per_host, comm->local_ranks, c->rails);
    for (int r = 0; r < n && !bad; r++) {
        const tt_rank_place_t *p = &c->places[r];
        if (p->host != 0 || p->local != r || p->numa != r / e->numa_div || p->nic != r / e->nic_div)
            bad = tt_fail(rank, "rank %d: host %d local %d NUMA %d rail %d", r, p->host, p->local,
                          p->numa, p->nic);
    }
    /* Without a cluster file, plans follow the physical view. */
    if (!bad && (comm->cluster_from_file || comm->cluster.nhosts != 1 ||
                 memcmp(comm->cluster.places, c->places, (size_t)n * sizeof(*c->places)) != 0))
        bad = tt_fail(rank, "the planning view differs from the hosts");
    if (!bad)
        bad = same_everywhere(rank, comm, c);
    tutti_comm_destroy(comm);
    return bad;
}

/* The DGX-like host: 8 ranks, two sockets, each rank on its own InfiniBand rail. */
START_TEST(dgx_host_view)
{
    expect_t e = {fixture("topo", DGX), 8, 4, 1, {NULL, NULL}};
    ck_assert_int_eq(tt_run_ranks(8, fixture_host_rank, &e, 120), 0);
}
END_TEST

/* The 2-NUMA server: 4 ranks, two per node, each pair on its node's Ethernet NIC. */
START_TEST(two_numa_host_view)
{
    expect_t e = {fixture("topo", TWO_NUMA), 2, 2, 2, {NULL, NULL}};
    ck_assert_int_eq(tt_run_ranks(4, fixture_host_rank, &e, 60), 0);
}
END_TEST

/* The small machine: 3 ranks, one NUMA node, one NIC shared by all. */
START_TEST(small_host_view)
{
    expect_t e = {fixture("topo", SMALL), 1, 3, 3, {NULL, NULL}};
    ck_assert_int_eq(tt_run_ranks(3, fixture_host_rank, &e, 60), 0);
}
END_TEST

/*
 * Rings over several DGX-like hosts (the places the 8 ranks of the fixture
 * host found, repeated on every host): channel c visits the hosts one after
 * the other and leaves each through the rank on rail c, so the 8 channels
 * use 8 different NICs.
 */
static int rings_rank(int rank, int n, const tutti_unique_id_t *id, void *arg)
{
    enum { HOSTS = 3 };
    tutti_comm_t comm = comm_for(rank, n, id, arg);
    tt_rank_place_t places[HOSTS * 8];
    tt_cluster_t cluster;
    int order[HOSTS * 8], bad = 0;

    for (int h = 0; h < HOSTS; h++)
        for (int l = 0; l < n; l++) {
            places[h * n + l] = comm->hosts.places[l];
            places[h * n + l].host = h;
        }
    ck_assert_int_eq(tt_cluster_init(&cluster, HOSTS * n, places, comm->hosts.rails, NULL),
                     TUTTI_OK);
    for (int channel = 0; channel < 8 && !bad; channel++) {
        tt_coll_desc_t d = {.kind = TT_COLL_ALLREDUCE, .nranks = HOSTS * n, .cluster = &cluster};
        tt_ring_order(&d, channel, order);
        for (int pos = 0; pos < HOSTS * n && !bad; pos++) {
            int r = order[pos], next = order[(pos + 1) % (HOSTS * n)];
            if (cluster.places[r].host != pos / n)
                bad = tt_fail(rank, "channel %d: position %d is on host %d", channel, pos,
                              cluster.places[r].host);
            else if (cluster.places[next].host != cluster.places[r].host &&
                     cluster.places[r].nic != channel)
                bad = tt_fail(rank, "channel %d leaves host %d from rail %d", channel,
                              cluster.places[r].host, cluster.places[r].nic);
        }
    }
    tt_cluster_fini(&cluster);
    tutti_comm_destroy(comm);
    return bad;
}

START_TEST(rings_leave_by_their_rail)
{
    expect_t e = {fixture("topo", DGX), 8, 4, 1, {NULL, NULL}};
    ck_assert_int_eq(tt_run_ranks(8, rings_rank, &e, 120), 0);
}
END_TEST

/* With TUTTI_CALIBRATE every rank ends with the same measured costs. */
static int calibrated_rank(int rank, int n, const tutti_unique_id_t *id, void *arg)
{
    const expect_t *e = arg;
    tutti_comm_t comm = comm_for(rank, n, id, e);
    const tt_cost_model_t *cost = &comm->hosts.cost;
    tt_cost_model_t *all = malloc((size_t)n * sizeof(*all));
    int bad = 0;

    if (tutti_allgather(cost, all, sizeof(*cost), TUTTI_UINT8, comm) != TUTTI_OK)
        bad = tt_fail(rank, "allgather of the costs failed");
    for (int r = 0; r < n && !bad; r++)
        if (memcmp(&all[r], cost, sizeof(*cost)) != 0)
            bad = tt_fail(rank, "rank %d calibrated differently", r);
    /* Measured (a ping-pong never lands exactly on the default), and sane. */
    if (!bad && (cost->alpha[TT_LINK_SHM] == tt_cost_model_default.alpha[TT_LINK_SHM] ||
                 !(cost->alpha[TT_LINK_SHM] > 0 && cost->alpha[TT_LINK_SHM] < 1) ||
                 !(cost->beta[TT_LINK_SHM] > 1e6 && isfinite(cost->beta[TT_LINK_SHM])) ||
                 !(cost->gamma > 1e6 && isfinite(cost->gamma))))
        bad = tt_fail(rank, "shm alpha %g beta %g gamma %g", cost->alpha[TT_LINK_SHM],
                      cost->beta[TT_LINK_SHM], cost->gamma);
    /* No second host here: the network keeps its default. */
    if (!bad && (cost->alpha[TT_LINK_NET] != tt_cost_model_default.alpha[TT_LINK_NET] ||
                 cost->beta[TT_LINK_NET] != tt_cost_model_default.beta[TT_LINK_NET]))
        bad = tt_fail(rank, "net costs changed without a network");
    /* Plans use the measured costs, unless a cluster file says otherwise. */
    if (!bad && memcmp(&comm->cluster.cost, cost, sizeof(*cost)) != 0 && !comm->cluster_from_file)
        bad = tt_fail(rank, "the planning view kept other costs");
    if (!bad && comm->cluster_from_file && comm->cluster.cost.alpha[TT_LINK_SHM] != 1e-6)
        bad = tt_fail(rank, "the cluster file's shm alpha became %g",
                      comm->cluster.cost.alpha[TT_LINK_SHM]);
    free(all);
    tutti_comm_destroy(comm);
    return bad;
}

START_TEST(calibration_agrees)
{
    expect_t e = {NULL, 1, 1, 1, {"TUTTI_CALIBRATE", "yes"}};
    ck_assert_int_eq(tt_run_ranks(3, calibrated_rank, &e, 60), 0);
}
END_TEST

START_TEST(calibration_leaves_cluster_file_costs)
{
    char path[] = "/tmp/tutti-cluster-XXXXXX";
    int fd = mkstemp(path);
    FILE *f = fdopen(fd, "w");
    expect_t e = {NULL, 1, 1, 1, {"TUTTI_CLUSTER_FILE", path}};

    ck_assert_ptr_nonnull(f);
    fprintf(f, "hosts 2\nranks_per_host 2\nnics_per_host 1\nlink shm alpha=1us beta=10G\n");
    fclose(f);
    setenv("TUTTI_CALIBRATE", "yes", 1);
    ck_assert_int_eq(tt_run_ranks(4, calibrated_rank, &e, 60), 0);
    unsetenv("TUTTI_CALIBRATE");
    unlink(path);
}
END_TEST

static Suite *place_suite(void)
{
    Suite *s = suite_create("place");
    TCase *views = tcase_create("views"), *cal = tcase_create("calibration");

    tcase_set_timeout(views, 180);
    tcase_set_timeout(cal, 120);
    tcase_add_test(views, dgx_host_view);
    tcase_add_test(views, two_numa_host_view);
    tcase_add_test(views, small_host_view);
    tcase_add_test(views, rings_leave_by_their_rail);
    tcase_add_test(cal, calibration_agrees);
    tcase_add_test(cal, calibration_leaves_cluster_file_costs);
    suite_add_tcase(s, views);
    suite_add_tcase(s, cal);
    return s;
}

TT_UNIT_MAIN(place_suite)
