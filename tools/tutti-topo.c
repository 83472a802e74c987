/*
 * tutti-topo: look at a host, a cluster and the plans tutti would run on
 * it, without running anything.
 *
 *   tutti-topo host [--ranks L] [--rank l]          this host (TUTTI_TOPO_FILE: an hwloc XML)
 *   tutti-topo cluster FILE                         a cluster description, as tutti reads it
 *   tutti-topo plan [CLUSTER] [--collective C]      per message size: algorithm, chunk, time
 *   tutti-topo draw [CLUSTER] --algo A              who sends to whom (Graphviz DOT or SVG)
 *   tutti-topo simulate [CLUSTER] --algo A --size S every rank's plan, timed by the simulator
 *
 * CLUSTER is --cluster FILE or --hosts H --ranks-per-host L --nics R (default
 * costs). Selection honours TUTTI_ALGO, TUTTI_TUNING_FILE, TUTTI_CHUNK_SIZE
 * and TUTTI_CHANNELS as a communicator would. Exit status: 0 done, 1 failed
 * (including a refused or deadlocked simulation), 2 bad usage.
 */
#include "config.h"

#include "coll/coll.h"
#include "coll/cost.h"
#include "coll/ring.h"
#include "coll/select.h"
#include "plan/simulate.h"
#include "topo/cluster.h"
#include "topo/topo.h"
#include "util/config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };

#define DEFAULT_MAX_STEPS 200000000ull /* a simulation larger than this is refused */
#define SAMPLE_RANKS 8                 /* plans built to estimate a plan's total size */

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

/* "1.5 MiB" */
static const char *format_bytes(double bytes, char *buf, size_t len)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    int u = 0;
    while (bytes >= 1024 && u < 5) {
        bytes /= 1024;
        u++;
    }
    if (u == 0)
        snprintf(buf, len, "%.0f B", bytes);
    else
        snprintf(buf, len, "%.*f %s", bytes < 10 ? 2 : bytes < 100 ? 1 : 0, bytes, units[u]);
    return buf;
}

/* "256K" (sizes as the settings take them) */
static const char *format_size(uint64_t bytes, char *buf, size_t len)
{
    if (bytes >= (1ull << 30) && bytes % (1ull << 30) == 0)
        snprintf(buf, len, "%lluG", (unsigned long long)(bytes >> 30));
    else if (bytes >= (1ull << 20) && bytes % (1ull << 20) == 0)
        snprintf(buf, len, "%lluM", (unsigned long long)(bytes >> 20));
    else if (bytes >= 1024 && bytes % 1024 == 0)
        snprintf(buf, len, "%lluK", (unsigned long long)(bytes >> 10));
    else
        snprintf(buf, len, "%llu", (unsigned long long)bytes);
    return buf;
}

/* "12.3 us" / "4.56 ms" / "1.23 s" */
static const char *format_seconds(double s, char *buf, size_t len)
{
    if (s < 1e-3)
        snprintf(buf, len, "%.2f us", s * 1e6);
    else if (s < 1)
        snprintf(buf, len, "%.3f ms", s * 1e3);
    else
        snprintf(buf, len, "%.3f s", s);
    return buf;
}

static int parse_int(const char *text, int min, int *value_p)
{
    char *end;
    long v;
    errno = 0;
    v = strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || v < min || v > (1L << 24))
        return 0;
    *value_p = (int)v;
    return 1;
}

static int parse_bytes(const char *text, uint64_t *bytes_p)
{
    size_t size;
    if (tt_parse_size(text, &size) != TUTTI_OK)
        return 0;
    *bytes_p = size;
    return 1;
}

/* ------------------------------------------------------------ cluster options */

typedef struct cluster_opts {
    const char *file;
    int hosts, per_host, nics;
} cluster_opts_t;

#define CLUSTER_USAGE                                                                     \
    "  --cluster FILE          a cluster description (see 'tutti-topo cluster --help')\n" \
    "  --hosts H               or a cluster of H hosts (default 1) ...\n"                 \
    "  --ranks-per-host L      ... of L ranks each (default 8) ...\n"                     \
    "  --nics R                ... and R NICs each (default 1), with the default costs\n"

enum {
    OPT_CLUSTER = 1000,
    OPT_HOSTS,
    OPT_PER_HOST,
    OPT_NICS,
    OPT_COLLECTIVE,
    OPT_MIN,
    OPT_MAX,
    OPT_FACTOR,
    OPT_ELEM,
    OPT_ROOT,
    OPT_ALL,
    OPT_ALGO,
    OPT_SIZE,
    OPT_CHANNEL,
    OPT_CHANNELS,
    OPT_CHUNK,
    OPT_FORMAT,
    OPT_COLLAPSE,
    OPT_MAX_HOSTS,
    OPT_MAX_STEPS,
    OPT_NICS_BY,
    OPT_RANKS,
    OPT_RANK,
    OPT_WHOLE,
};

/* Take a cluster option; 1 if @p opt was one (0 bad value: *bad_p set), 0 if not. */
static int cluster_option(cluster_opts_t *o, int opt, const char *arg, int *bad_p)
{
    switch (opt) {
    case OPT_CLUSTER: o->file = arg; return 1;
    case OPT_HOSTS: *bad_p |= !parse_int(arg, 1, &o->hosts); return 1;
    case OPT_PER_HOST: *bad_p |= !parse_int(arg, 1, &o->per_host); return 1;
    case OPT_NICS: *bad_p |= !parse_int(arg, 0, &o->nics); return 1;
    default: return 0;
    }
}

/* Build the cluster the options describe; logs and returns non-zero on failure. */
static int load_cluster(const cluster_opts_t *o, tt_cluster_t *c)
{
    tutti_status_t status;

    if (o->file != NULL) {
        FILE *f = fopen(o->file, "r");
        if (f == NULL) {
            fprintf(stderr, "tutti-topo: cannot open %s: %s\n", o->file, strerror(errno));
            return 1;
        }
        status = tt_cluster_parse(c, f, o->file);
        fclose(f);
        if (status != TUTTI_OK) {
            fprintf(stderr, "tutti-topo: %s is not a usable cluster description: %s\n", o->file,
                    tutti_status_string(status));
            return 1;
        }
        return 0;
    }
    if ((double)o->hosts * o->per_host > (double)(1 << 24)) {
        fprintf(stderr, "tutti-topo: %d hosts of %d ranks is more than 16M ranks\n", o->hosts,
                o->per_host);
        return 1;
    }
    status = tt_cluster_uniform(c, o->hosts, o->per_host, o->nics, NULL);
    if (status != TUTTI_OK) {
        fprintf(stderr, "tutti-topo: cannot make the cluster: %s\n", tutti_status_string(status));
        return 1;
    }
    return 0;
}

static void print_cluster_line(const tt_cluster_t *c, FILE *out)
{
    fprintf(out,
            "# cluster: %d hosts x %d ranks (%d), %d rail%s; shm %.2f us %.1f GB/s, net %.2f us "
            "%.1f GB/s, reduce %.1f GB/s\n",
            c->nhosts, c->ranks_per_host, c->nranks, c->rails, c->rails == 1 ? "" : "s",
            c->cost.alpha[TT_LINK_SHM] * 1e6, c->cost.beta[TT_LINK_SHM] / 1e9,
            c->cost.alpha[TT_LINK_NET] * 1e6, c->cost.beta[TT_LINK_NET] / 1e9, c->cost.gamma / 1e9);
}

/* ------------------------------------------------------------ descriptions */

static int kind_by_name(const char *name, tt_coll_kind_t *kind_p)
{
    for (int k = 0; k < TT_COLL_KIND_COUNT; k++)
        if (strcmp(name, tt_coll_kind_names[k]) == 0) {
            *kind_p = (tt_coll_kind_t)k;
            return 1;
        }
    return 0;
}

static int algo_by_name(const char *name, tt_algo_t *algo_p)
{
    for (int a = 0; a < TT_ALGO_COUNT; a++)
        if (strcmp(name, tt_algo_names[a]) == 0) {
            *algo_p = (tt_algo_t)a;
            return 1;
        }
    return 0;
}

/* Bus bandwidth over algorithm bandwidth, as nccl-tests define it. */
static double busbw_factor(tt_coll_kind_t kind, int n)
{
    switch (kind) {
    case TT_COLL_ALLREDUCE: return 2.0 * (n - 1) / n;
    case TT_COLL_REDUCE_SCATTER:
    case TT_COLL_ALLGATHER: return (double)(n - 1) / n;
    case TT_COLL_BROADCAST:
    case TT_COLL_REDUCE: return 1.0;
    default: return 0;
    }
}

/* A description of a call moving @p bytes (tt_cost_bytes' sense) on @p c; algorithm unset. */
static tt_coll_desc_t make_desc(tt_coll_kind_t kind, uint64_t bytes, size_t elem, int root,
                                const tt_cluster_t *c)
{
    tt_coll_desc_t d;
    memset(&d, 0, sizeof(d));
    d.kind = kind;
    d.elem_size = elem;
    d.nranks = c->nranks;
    d.root = root;
    d.count = kind == TT_COLL_BARRIER ? 0 : bytes / elem;
    /* Reduce-scatter and all-gather take a count per rank. */
    if (kind == TT_COLL_REDUCE_SCATTER || kind == TT_COLL_ALLGATHER)
        d.count /= (uint64_t)c->nranks;
    d.cluster = c;
    return d;
}

/* Can @p algo build this plan on @p c? Says why not. */
static int algo_usable(tt_algo_t algo, tt_coll_kind_t kind, const tt_cluster_t *c)
{
    if (!tt_algo_supports(algo, kind)) {
        fprintf(stderr, "tutti-topo: %s has no %s algorithm\n", tt_coll_kind_names[kind],
                tt_algo_names[algo]);
        return 0;
    }
    if (algo == TT_ALGO_HIER && c->ranks_per_host == 0) {
        fprintf(stderr, "tutti-topo: hier needs hosts with the same number of ranks\n");
        return 0;
    }
    return 1;
}

/*
 * Resolve @p d as a communicator would (TUTTI_* settings, the tuning file,
 * the model), then apply what the command line forces. Returns what decided
 * the algorithm, NULL on failure (logged).
 */
static const char *resolve(tt_coll_desc_t *d, const tt_cluster_t *c, tt_algo_t algo, size_t chunk,
                           int channels)
{
    tt_selector_t sel;
    const char *why;

    if (tt_selector_init(&sel, NULL, c) != TUTTI_OK) {
        fprintf(stderr, "tutti-topo: bad TUTTI_* collective settings (see above)\n");
        return NULL;
    }
    why = tt_select(&sel, d);
    if (algo != TT_ALGO_AUTO) {
        if (algo != d->algo) {
            d->algo = algo;
            d->chunk_bytes =
                sel.settings.chunk_bytes > 0 ? sel.settings.chunk_bytes : tt_cost_chunk(d, c);
        }
        why = "--algo";
    }
    if (channels > 0)
        d->channels = TT_MIN(channels, TT_MAX_CHANNELS);
    if (chunk > 0)
        d->chunk_bytes = chunk;
    d->cluster = c;
    tt_selector_fini(&sel);
    return why;
}

/* ------------------------------------------------------------ host */

static void host_usage(FILE *out)
{
    fprintf(out,
            "usage: tutti-topo host [--ranks L] [--rank l]\n"
            "Discover this host with hwloc (or read the hwloc XML file TUTTI_TOPO_FILE names)\n"
            "and print it, with the place of local rank l (default 0) of L (default 1): its\n"
            "NUMA node, its slice of the cores and its nearest NIC. With L > 1, every local\n"
            "rank's place too.\n");
}

static int cmd_host(int argc, char **argv)
{
    static const struct option options[] = {{"ranks", required_argument, NULL, OPT_RANKS},
                                            {"rank", required_argument, NULL, OPT_RANK},
                                            {"help", no_argument, NULL, 'h'},
                                            {NULL, 0, NULL, 0}};
    tt_topo_settings_t settings;
    tt_host_topo_t topo;
    int ranks = 1, rank = 0, opt, bad = 0;
    tutti_status_t status;

    while ((opt = getopt_long(argc, argv, "h", options, NULL)) != -1) {
        if (opt == 'h') {
            host_usage(stdout);
            return EXIT_OK;
        }
        if (opt == OPT_RANKS)
            bad |= !parse_int(optarg, 1, &ranks);
        else if (opt == OPT_RANK)
            bad |= !parse_int(optarg, 0, &rank);
        else
            bad = 1;
    }
    if (bad || optind != argc || rank >= ranks) {
        host_usage(stderr);
        return EXIT_USAGE;
    }
    if (tt_config_load(&tt_topo_config_table, NULL, &settings) != TUTTI_OK)
        return EXIT_FAIL;
    status = tt_topo_discover(&settings, rank, ranks, &topo);
    if (status != TUTTI_OK) {
        fprintf(stderr, "tutti-topo: cannot describe the host: %s\n", tutti_status_string(status));
        return EXIT_FAIL;
    }
    if (settings.file[0] != '\0')
        printf("# from %s (TUTTI_TOPO_FILE)\n", settings.file);
    printf("# local rank %d of %d\n", rank, ranks);
    tt_topo_print(&topo, stdout);
    if (ranks > 1) {
        printf("  local ranks:\n");
        for (int l = 0; l < ranks; l++) {
            tt_host_topo_t t;
            if (tt_topo_discover(&settings, l, ranks, &t) != TUTTI_OK)
                return EXIT_FAIL;
            printf("    %3d: NUMA %d, package %d, PUs L#%d-%d, NIC %s\n", l, t.my_numa,
                   t.my_package, t.my_first_pu, t.my_first_pu + t.my_npus - 1,
                   t.my_nic >= 0 ? t.nics[t.my_nic].name : "none");
        }
    }
    return EXIT_OK;
}

/* ------------------------------------------------------------ cluster */

static void cluster_usage(FILE *out)
{
    fprintf(out, "usage: tutti-topo cluster FILE\n"
                 "Read a cluster description and print the view tutti builds from it. Format, one\n"
                 "statement a line, '#' comments:\n"
                 "  hosts 2048\n"
                 "  ranks_per_host 8\n"
                 "  nics_per_host 8\n"
                 "  link shm alpha=0.5us beta=50G     # within a host, per rank pair (bytes/s)\n"
                 "  link net alpha=3us beta=25G       # between hosts, per NIC\n"
                 "  reduce gamma=40G                  # bytes/s one rank combines\n");
}

static int cmd_cluster(int argc, char **argv)
{
    static const struct option options[] = {{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    cluster_opts_t o = {NULL, 1, 8, 1};
    tt_cluster_t c;
    int opt, last;

    while ((opt = getopt_long(argc, argv, "h", options, NULL)) != -1) {
        if (opt == 'h') {
            cluster_usage(stdout);
            return EXIT_OK;
        }
        cluster_usage(stderr);
        return EXIT_USAGE;
    }
    if (optind != argc - 1) {
        cluster_usage(stderr);
        return EXIT_USAGE;
    }
    o.file = argv[optind];
    if (load_cluster(&o, &c) != 0)
        return EXIT_FAIL;
    tt_cluster_print(&c, stdout);
    /* Hosts are alike: show the first one's ranks, and the last host. */
    last = c.nhosts - 1;
    for (int h = 0; h < c.nhosts; h = h == 0 && last > 1 ? last : h + 1) {
        printf("  host %d:", h);
        for (int j = 0; j < tt_cluster_host_size(&c, h); j++) {
            int r = tt_cluster_rank(&c, h, j);
            printf(" r%d", r);
            if (c.places[r].nic >= 0)
                printf("(nic %d)", c.places[r].nic);
        }
        printf("\n");
        if (h == 0 && last > 1)
            printf("  ... (%d hosts alike)\n", c.nhosts - 2);
    }
    printf("  a 1 MiB message: shm %.2f us, net %.2f us; combining it %.2f us\n",
           (c.cost.alpha[TT_LINK_SHM] + 1048576.0 / c.cost.beta[TT_LINK_SHM]) * 1e6,
           (c.cost.alpha[TT_LINK_NET] + 1048576.0 / c.cost.beta[TT_LINK_NET]) * 1e6,
           1048576.0 / c.cost.gamma * 1e6);
    tt_cluster_fini(&c);
    return EXIT_OK;
}

/* ------------------------------------------------------------ plan */

static void plan_usage(FILE *out)
{
    fprintf(out,
            "usage: tutti-topo plan [CLUSTER] [--collective C] [--min SIZE] [--max SIZE]\n"
            "                       [--factor F] [--elem-size B] [--all]\n"
            "For each message size from --min (default 8) to --max (default 1G), times F\n"
            "(default 2), print what tutti would run: the algorithm and what decided it\n"
            "(TUTTI_ALGO, the tuning file TUTTI_TUNING_FILE, or the cost model), the channels\n"
            "and chunk (TUTTI_CHANNELS, TUTTI_CHUNK_SIZE, or the model), the model's time, and\n"
            "the algorithm and bus bandwidth (busbw as nccl-tests: allreduce 2(n-1)/n x algbw,\n"
            "reduce_scatter and allgather (n-1)/n, broadcast and reduce 1). Sizes are bytes per\n"
            "rank (all ranks' for reduce_scatter and allgather). When the settings overrule the\n"
            "model, the last column names the model's own choice. --all adds every algorithm's\n"
            "predicted time.\n" CLUSTER_USAGE
            "  --collective C          allreduce (default), reduce_scatter, allgather, broadcast,\n"
            "                          reduce, barrier\n"
            "  --elem-size B           bytes per element (default 4)\n");
}

static int cmd_plan(int argc, char **argv)
{
    static const struct option options[] = {
        {"cluster", required_argument, NULL, OPT_CLUSTER},
        {"hosts", required_argument, NULL, OPT_HOSTS},
        {"ranks-per-host", required_argument, NULL, OPT_PER_HOST},
        {"nics", required_argument, NULL, OPT_NICS},
        {"collective", required_argument, NULL, OPT_COLLECTIVE},
        {"min", required_argument, NULL, OPT_MIN},
        {"max", required_argument, NULL, OPT_MAX},
        {"factor", required_argument, NULL, OPT_FACTOR},
        {"elem-size", required_argument, NULL, OPT_ELEM},
        {"all", no_argument, NULL, OPT_ALL},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    cluster_opts_t o = {NULL, 1, 8, 1};
    tt_coll_kind_t kind = TT_COLL_ALLREDUCE;
    uint64_t min = 8, max = 1ull << 30;
    int factor = 2, elem = 4, all = 0, opt, bad = 0, rows = 0;
    tt_config_overrides_t model_only = {0};
    tt_selector_t model_sel;
    tt_cluster_t c;
    char a[32], b[32];

    while ((opt = getopt_long(argc, argv, "h", options, NULL)) != -1) {
        if (opt == 'h') {
            plan_usage(stdout);
            return EXIT_OK;
        }
        if (cluster_option(&o, opt, optarg, &bad))
            continue;
        switch (opt) {
        case OPT_COLLECTIVE: bad |= !kind_by_name(optarg, &kind); break;
        case OPT_MIN: bad |= !parse_bytes(optarg, &min); break;
        case OPT_MAX: bad |= !parse_bytes(optarg, &max); break;
        case OPT_FACTOR: bad |= !parse_int(optarg, 2, &factor); break;
        case OPT_ELEM: bad |= !parse_int(optarg, 1, &elem); break;
        case OPT_ALL: all = 1; break;
        default: bad = 1;
        }
    }
    if (bad || optind != argc || min < 1 || max < min) {
        plan_usage(stderr);
        return EXIT_USAGE;
    }
    if (load_cluster(&o, &c) != 0)
        return EXIT_FAIL;
    /* The model's own choice, whatever the environment says. */
    if (tt_config_overrides_set(&model_only, "ALGO", "auto") != TUTTI_OK ||
        tt_config_overrides_set(&model_only, "TUNING_FILE", "") != TUTTI_OK ||
        tt_selector_init(&model_sel, &model_only, &c) != TUTTI_OK) {
        tt_config_overrides_clear(&model_only);
        tt_cluster_fini(&c);
        return EXIT_FAIL;
    }
    print_cluster_line(&c, stdout);
    printf("# %s, %d-byte elements; busbw = algbw x %.4g\n", tt_coll_kind_names[kind], elem,
           busbw_factor(kind, c.nranks));
    printf("# %12s %12s %-6s %-12s %3s %7s %12s %11s %11s  %s", "size", "count", "algo",
           "decided by", "ch", "chunk", "time(us)", "algbw(GB/s)", "busbw(GB/s)", "model's choice");
    if (all)
        for (int al = TT_ALGO_AUTO + 1; al < TT_ALGO_COUNT; al++)
            if (tt_algo_supports((tt_algo_t)al, kind))
                printf("  %s(us)", tt_algo_names[al]);
    printf("\n");
    for (uint64_t size = min; size <= max; size *= (uint64_t)factor) {
        tt_coll_desc_t d = make_desc(kind, size, (size_t)elem, 0, &c), m = d;
        const char *why = resolve(&d, &c, TT_ALGO_AUTO, 0, 0);
        double t, algbw;

        if (why == NULL)
            goto err;
        t = tt_cost_predict(&d, &c);
        algbw = t > 0 ? (double)tt_cost_bytes(&d) / t / 1e9 : 0;
        tt_select(&model_sel, &m);
        printf("  %12llu %12llu %-6s %-12s %3d %7s %12.2f %11.2f %11.2f  %s",
               (unsigned long long)size, (unsigned long long)d.count, tt_algo_names[d.algo], why,
               d.channels, format_size(d.chunk_bytes, a, sizeof(a)), t * 1e6, algbw,
               algbw * busbw_factor(kind, c.nranks),
               m.algo == d.algo ? "same" : tt_algo_names[m.algo]);
        if (m.algo != d.algo)
            printf(" (%s)", format_seconds(tt_cost_predict(&m, &c), b, sizeof(b)));
        if (all)
            for (int al = TT_ALGO_AUTO + 1; al < TT_ALGO_COUNT; al++) {
                tt_coll_desc_t x = d;
                if (!tt_algo_supports((tt_algo_t)al, kind))
                    continue;
                x.algo = (tt_algo_t)al;
                x.chunk_bytes = tt_cost_chunk(&x, &c);
                if (al == TT_ALGO_HIER && (c.ranks_per_host == 0 || c.nhosts < 2))
                    printf("  %*s", (int)strlen(tt_algo_names[al]) + 4, "-");
                else
                    printf("  %*.2f", (int)strlen(tt_algo_names[al]) + 4,
                           tt_cost_predict(&x, &c) * 1e6);
            }
        printf("\n");
        rows++;
        if (size > UINT64_MAX / (uint64_t)factor)
            break;
    }
    tt_selector_fini(&model_sel);
    tt_config_overrides_clear(&model_only);
    tt_cluster_fini(&c);
    return rows > 0 ? EXIT_OK : EXIT_FAIL;
err:
    tt_selector_fini(&model_sel);
    tt_config_overrides_clear(&model_only);
    tt_cluster_fini(&c);
    return EXIT_FAIL;
}

/* ------------------------------------------------------------ plans of all ranks */

/*
 * About how many steps all ranks' plans of @p d hold, from a few ranks'
 * plans (the algorithms give every rank nearly the same number), in
 * *total_p; the largest one sampled in *max_p, and the largest part of one
 * in *part_max_p if not NULL. Non-zero if a plan cannot be built (logged).
 */
static int estimate_steps(tt_coll_desc_t d, uint64_t *total_p, uint64_t *max_p,
                          uint64_t *part_max_p)
{
    uint64_t most = 0, part_most = 0;
    int n = d.nranks, samples = TT_MIN(n, SAMPLE_RANKS), nparts = tt_coll_parts(&d);

    for (int k = 0; k < samples; k++) {
        uint64_t steps = 0;
        d.rank = (int)((int64_t)k * (n - 1) / TT_MAX(samples - 1, 1));
        for (int part = 0; part < nparts; part++) {
            tt_schedule_t s;
            tutti_status_t status;
            tt_schedule_init(&s, d.elem_size);
            status = tt_coll_build_part(&d, part, &s);
            steps += (uint64_t)s.nsteps;
            part_most = TT_MAX(part_most, (uint64_t)s.nsteps);
            tt_schedule_fini(&s);
            if (status != TUTTI_OK) {
                fprintf(stderr, "tutti-topo: cannot build rank %d's plan: %s\n", d.rank,
                        tutti_status_string(status));
                return 1;
            }
        }
        most = TT_MAX(most, steps);
    }
    *max_p = most;
    *total_p = most * (uint64_t)n;
    if (part_max_p != NULL)
        *part_max_p = part_most;
    return 0;
}

/* ------------------------------------------------------------ draw */

static void draw_usage(FILE *out)
{
    fprintf(out,
            "usage: tutti-topo draw [CLUSTER] [--collective C] [--algo A] [--size S]\n"
            "                       [--channel c] [--format dot|svg] [-o FILE] [--collapse]\n"
            "                       [--max-hosts N]\n"
            "Draw a plan's communication graph: who sends to whom, each edge labelled with the\n"
            "bytes it carries for a call of --size (default 1M) and coloured by channel (the\n"
            "double binary tree's two trees are channels 0 and 1, red and blue, drawn with at\n"
            "least two channels); hosts are boxes, edges\n"
            "between hosts bold and dashed. The first --max-hosts hosts (default 4) are drawn,\n"
            "the rest is one node; --collapse draws every host as a single node instead (all\n"
            "ranks' plans are built then). DOT goes to -o FILE or standard output; SVG needs\n"
            "Graphviz's dot (apt install graphviz).\n" CLUSTER_USAGE
            "  --algo A                ring, tree, hier, rd, chain, binomial, dissemination\n"
            "                          (default: what tutti would choose)\n"
            "  --channel c             only channel c's transfers\n");
}

typedef struct edge {
    int from, to, channel; /* ranks (or hosts when collapsed); -1: the hosts not drawn */
    uint64_t bytes, messages;
} edge_t;

typedef struct edge_set {
    edge_t *e;
    size_t n, cap;
} edge_set_t;

static int edge_add(edge_set_t *set, int from, int to, int channel, uint64_t bytes)
{
    /* Plans talk to few peers: look among the recent edges first. */
    for (size_t i = set->n; i > 0 && i + 64 > set->n; i--) {
        edge_t *e = &set->e[i - 1];
        if (e->from == from && e->to == to && e->channel == channel) {
            e->bytes += bytes;
            e->messages++;
            return 1;
        }
    }
    if (set->n == set->cap) {
        size_t cap = set->cap ? 2 * set->cap : 256;
        edge_t *grown = realloc(set->e, cap * sizeof(*grown));
        if (grown == NULL)
            return 0;
        set->e = grown;
        set->cap = cap;
    }
    set->e[set->n++] = (edge_t){from, to, channel, bytes, 1};
    return 1;
}

static int edge_cmp(const void *a, const void *b)
{
    const edge_t *x = a, *y = b;
    if (x->from != y->from)
        return x->from < y->from ? -1 : 1;
    if (x->to != y->to)
        return x->to < y->to ? -1 : 1;
    return x->channel - y->channel;
}

/* Merge equal (from, to, channel) edges of a sorted set. */
static void edge_merge(edge_set_t *set)
{
    size_t out = 0;
    if (set->n > 1)
        qsort(set->e, set->n, sizeof(edge_t), edge_cmp);
    for (size_t i = 0; i < set->n; i++) {
        if (out > 0 && edge_cmp(&set->e[out - 1], &set->e[i]) == 0) {
            set->e[out - 1].bytes += set->e[i].bytes;
            set->e[out - 1].messages += set->e[i].messages;
        } else {
            set->e[out++] = set->e[i];
        }
    }
    set->n = out;
}

static const edge_t *edge_find(const edge_set_t *set, int from, int to, int channel)
{
    edge_t key = {from, to, channel, 0, 0};
    return bsearch(&key, set->e, set->n, sizeof(edge_t), edge_cmp);
}

static const char *const palette[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e",
                                      "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22"};

/* Write the DOT graph. */
static void write_dot(FILE *out, const tt_cluster_t *c, const tt_coll_desc_t *d, int channel,
                      int collapse, int shown_hosts, const edge_set_t *edges,
                      const uint64_t *host_inner)
{
    char a[32], b[32];
    int others = 0;

    fprintf(out, "digraph tutti {\n");
    fprintf(out,
            "  graph [label=\"%s %s of %s per rank on %d hosts x %d ranks%s%s; colour = channel\", "
            "labelloc=t, fontname=\"Helvetica\", rankdir=LR];\n",
            tt_algo_names[d->algo], tt_coll_kind_names[d->kind],
            format_bytes((double)tt_cost_bytes(d), a, sizeof(a)), c->nhosts, c->ranks_per_host,
            channel >= 0 ? ", channel " : "",
            channel >= 0 ? (snprintf(b, sizeof(b), "%d", channel), b) : "");
    fprintf(out, "  node [shape=box, style=rounded, fontname=\"Helvetica\", fontsize=10];\n");
    fprintf(out, "  edge [fontname=\"Helvetica\", fontsize=8];\n");
    if (collapse) {
        for (int h = 0; h < c->nhosts; h++)
            fprintf(out, "  h%d [label=\"host %d\\n%d ranks\\n%s inside\"];\n", h, h,
                    tt_cluster_host_size(c, h), format_bytes((double)host_inner[h], a, sizeof(a)));
    } else {
        for (int h = 0; h < shown_hosts; h++) {
            fprintf(out,
                    "  subgraph cluster_h%d {\n    label=\"host %d\"; style=rounded; "
                    "color=\"#888888\";\n",
                    h, h);
            for (int j = 0; j < tt_cluster_host_size(c, h); j++) {
                int r = tt_cluster_rank(c, h, j);
                if (c->places[r].nic >= 0)
                    fprintf(out, "    r%d [label=\"%d\\nNIC %d\"];\n", r, r, c->places[r].nic);
                else
                    fprintf(out, "    r%d [label=\"%d\"];\n", r, r);
            }
            fprintf(out, "  }\n");
        }
    }
    for (size_t i = 0; i < edges->n; i++) {
        const edge_t *e = &edges->e[i];
        const edge_t *back = edge_find(edges, e->to, e->from, e->channel);
        const char *color = palette[(e->channel < 0 ? 0 : e->channel) % TT_ARRAY_SIZE(palette)];
        int inter = collapse || e->from < 0 || e->to < 0 ||
                    c->places[e->from].host != c->places[e->to].host;
        int both = back != NULL && back->bytes == e->bytes;

        if (both && e->from > e->to)
            continue; /* drawn with its reverse */
        others |= e->from < 0 || e->to < 0;
        fprintf(out, "  %s%d -> %s%d [label=\"%s%s\", color=\"%s\", fontcolor=\"%s\"%s%s];\n",
                e->from < 0 ? "others"
                : collapse  ? "h"
                            : "r",
                e->from < 0 ? 0 : e->from,
                e->to < 0  ? "others"
                : collapse ? "h"
                           : "r",
                e->to < 0 ? 0 : e->to, format_bytes((double)e->bytes, a, sizeof(a)),
                both ? " each way" : "", color, color,
                inter ? ", style=\"bold,dashed\", penwidth=2" : "", both ? ", dir=both" : "");
    }
    if (others)
        fprintf(out, "  others0 [label=\"hosts %d..%d\", shape=ellipse, style=dashed];\n",
                shown_hosts, c->nhosts - 1);
    fprintf(out, "}\n");
}

/* Is Graphviz's dot on the PATH? */
static int have_dot(void)
{
    const char *path = getenv("PATH");
    char buf[4096];

    while (path != NULL && *path != '\0') {
        size_t len = strcspn(path, ":");
        if (len > 0 && len < sizeof(buf) - 5) {
            snprintf(buf, sizeof(buf), "%.*s/dot", (int)len, path);
            if (access(buf, X_OK) == 0)
                return 1;
        }
        path += len + (path[len] == ':');
    }
    return 0;
}

/* Run dot -Tsvg with the graph on its input and its output in @p file (NULL: ours). */
static FILE *open_dot(const char *file, pid_t *pid_p)
{
    int fds[2];
    pid_t pid;

    if (pipe(fds) != 0)
        return NULL;
    pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return NULL;
    }
    if (pid == 0) {
        dup2(fds[0], STDIN_FILENO);
        close(fds[0]);
        close(fds[1]);
        if (file != NULL)
            execlp("dot", "dot", "-Tsvg", "-o", file, (char *)NULL);
        else
            execlp("dot", "dot", "-Tsvg", (char *)NULL);
        _exit(127);
    }
    close(fds[0]);
    *pid_p = pid;
    return fdopen(fds[1], "w");
}

static int cmd_draw(int argc, char **argv)
{
    static const struct option options[] = {
        {"cluster", required_argument, NULL, OPT_CLUSTER},
        {"hosts", required_argument, NULL, OPT_HOSTS},
        {"ranks-per-host", required_argument, NULL, OPT_PER_HOST},
        {"nics", required_argument, NULL, OPT_NICS},
        {"collective", required_argument, NULL, OPT_COLLECTIVE},
        {"algo", required_argument, NULL, OPT_ALGO},
        {"size", required_argument, NULL, OPT_SIZE},
        {"channel", required_argument, NULL, OPT_CHANNEL},
        {"format", required_argument, NULL, OPT_FORMAT},
        {"collapse", no_argument, NULL, OPT_COLLAPSE},
        {"max-hosts", required_argument, NULL, OPT_MAX_HOSTS},
        {"elem-size", required_argument, NULL, OPT_ELEM},
        {"root", required_argument, NULL, OPT_ROOT},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    cluster_opts_t o = {NULL, 1, 8, 1};
    tt_coll_kind_t kind = TT_COLL_ALLREDUCE;
    tt_algo_t algo = TT_ALGO_AUTO;
    uint64_t size = 1 << 20, most, total;
    int channel = -1, svg = 0, collapse = 0, max_hosts = 4, elem = 4, root = 0, opt, bad = 0;
    int shown_hosts, shown_ranks, result = EXIT_FAIL;
    const char *file = NULL;
    edge_set_t edges = {0};
    uint64_t *host_inner = NULL;
    tt_coll_desc_t d;
    tt_cluster_t c;
    FILE *out = stdout;
    pid_t dot = -1;

    while ((opt = getopt_long(argc, argv, "ho:", options, NULL)) != -1) {
        if (opt == 'h') {
            draw_usage(stdout);
            return EXIT_OK;
        }
        if (cluster_option(&o, opt, optarg, &bad))
            continue;
        switch (opt) {
        case OPT_COLLECTIVE: bad |= !kind_by_name(optarg, &kind); break;
        case OPT_ALGO: bad |= !algo_by_name(optarg, &algo); break;
        case OPT_SIZE: bad |= !parse_bytes(optarg, &size); break;
        case OPT_CHANNEL: bad |= !parse_int(optarg, 0, &channel); break;
        case OPT_FORMAT:
            svg = strcmp(optarg, "svg") == 0;
            bad |= !svg && strcmp(optarg, "dot") != 0;
            break;
        case OPT_COLLAPSE: collapse = 1; break;
        case OPT_MAX_HOSTS: bad |= !parse_int(optarg, 1, &max_hosts); break;
        case OPT_ELEM: bad |= !parse_int(optarg, 1, &elem); break;
        case OPT_ROOT: bad |= !parse_int(optarg, 0, &root); break;
        case 'o': file = optarg; break;
        default: bad = 1;
        }
    }
    if (bad || optind != argc) {
        draw_usage(stderr);
        return EXIT_USAGE;
    }
    if (load_cluster(&o, &c) != 0)
        return EXIT_FAIL;
    if (root >= c.nranks) {
        fprintf(stderr, "tutti-topo: root %d is not a rank (0..%d)\n", root, c.nranks - 1);
        goto out;
    }
    if (svg && !have_dot()) {
        fprintf(stderr, "tutti-topo: SVG needs Graphviz's dot, which is not installed (apt "
                        "install graphviz); --format dot writes the graph itself\n");
        goto out;
    }
    d = make_desc(kind, size, (size_t)elem, root, &c);
    if (resolve(&d, &c, algo, 0, 0) == NULL || !algo_usable(d.algo, kind, &c))
        goto out;
    /* The double binary tree puts tree t on channel t mod channels: give it two to tell them
     * apart (only the channel numbers change). */
    if (d.algo == TT_ALGO_TREE && d.channels < 2)
        d.channels = 2;
    shown_hosts = collapse ? c.nhosts : TT_MIN(c.nhosts, max_hosts);
    shown_ranks = c.host_start[shown_hosts];
    if (estimate_steps(d, &total, &most, NULL) != 0)
        goto out;
    if (most * (uint64_t)shown_ranks > DEFAULT_MAX_STEPS) {
        total = most * (uint64_t)shown_ranks;
        fprintf(stderr,
                "tutti-topo: drawing would build about %.3g steps of plans; draw fewer "
                "hosts (--max-hosts) or a smaller cluster\n",
                (double)total);
        goto out;
    }
    if (collapse && (host_inner = calloc((size_t)c.nhosts, sizeof(uint64_t))) == NULL)
        goto out;
    for (int r = 0; r < shown_ranks; r++) {
        tt_schedule_t s;
        tt_schedule_init(&s, d.elem_size);
        d.rank = r;
        if (tt_coll_build(&d, &s) != TUTTI_OK) {
            fprintf(stderr, "tutti-topo: cannot build rank %d's plan\n", r);
            tt_schedule_fini(&s);
            goto out;
        }
        for (int32_t i = 0; i < s.nsteps; i++) {
            const tt_step_t *st = &s.steps[i];
            uint64_t bytes = st->count * s.elem_size;
            int to = st->peer, from = r, ok = 1;
            if (st->kind != TT_STEP_SEND || (channel >= 0 && st->channel != channel))
                continue;
            if (collapse) {
                from = c.places[r].host;
                to = c.places[st->peer].host;
                if (from == to)
                    host_inner[from] += bytes;
                else
                    ok = edge_add(&edges, from, to, -1, bytes);
            } else {
                ok = edge_add(&edges, from, to < shown_ranks ? to : -1, st->channel, bytes);
            }
            if (!ok) {
                tt_schedule_fini(&s);
                goto out;
            }
        }
        tt_schedule_fini(&s);
    }
    edge_merge(&edges);
    if (svg) {
        out = open_dot(file, &dot);
        if (out == NULL) {
            fprintf(stderr, "tutti-topo: cannot run dot: %s\n", strerror(errno));
            goto out;
        }
    } else if (file != NULL && (out = fopen(file, "w")) == NULL) {
        fprintf(stderr, "tutti-topo: cannot write %s: %s\n", file, strerror(errno));
        goto out;
    }
    write_dot(out, &c, &d, channel, collapse, shown_hosts, &edges, host_inner);
    result = EXIT_OK;
    if (out != stdout && fclose(out) != 0)
        result = EXIT_FAIL;
    if (dot > 0) {
        int status;
        if (waitpid(dot, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            fprintf(stderr, "tutti-topo: dot failed\n");
            result = EXIT_FAIL;
        }
    }
    if (result == EXIT_OK && file != NULL)
        fprintf(stderr, "tutti-topo: wrote %s (%zu edges)\n", file, edges.n);
out:
    free(edges.e);
    free(host_inner);
    tt_cluster_fini(&c);
    return result;
}

/* ------------------------------------------------------------ simulate */

static void simulate_usage(FILE *out)
{
    fprintf(
        out,
        "usage: tutti-topo simulate [CLUSTER] [--collective C] [--algo A] [--size S]\n"
        "                           [--chunk S] [--channels N] [--root r] [--nics-by "
        "rank|channel]\n"
        "                           [--max-steps N] [--whole]\n"
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
        return 1;
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

static int cmd_simulate(int argc, char **argv)
{
    static const struct option options[] = {
        {"cluster", required_argument, NULL, OPT_CLUSTER},
        {"hosts", required_argument, NULL, OPT_HOSTS},
        {"ranks-per-host", required_argument, NULL, OPT_PER_HOST},
        {"nics", required_argument, NULL, OPT_NICS},
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
    cluster_opts_t o = {NULL, 1, 8, 1};
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
        case OPT_MAX_STEPS: bad |= !parse_bytes(optarg, &max_steps); break;
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
        printf("  refused     the plans would hold about %.3g steps (%s per rank; limit %.3g "
               "steps, ~%s of memory to simulate, %s available",
               (double)estimate, format_size(most, a, sizeof(a)), (double)max_steps,
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
    if (host == NULL || nic == NULL)
        goto out;
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

/* ------------------------------------------------------------ main */

static void usage(FILE *out)
{
    fprintf(out, "usage: tutti-topo COMMAND [OPTIONS]   (COMMAND --help for each)\n"
                 "  host       this host as tutti discovers it (TUTTI_TOPO_FILE: an hwloc XML)\n"
                 "  cluster    a cluster description as tutti reads it\n"
                 "  plan       per message size: the algorithm tutti picks and its predicted time\n"
                 "  draw       a plan's communication graph (Graphviz DOT or SVG)\n"
                 "  simulate   every rank's plan timed by the schedule simulator\n");
}

int main(int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*run)(int argc, char **argv);
    } commands[] = {{"host", cmd_host},
                    {"cluster", cmd_cluster},
                    {"plan", cmd_plan},
                    {"draw", cmd_draw},
                    {"simulate", cmd_simulate}};

    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        usage(stdout);
        return EXIT_OK;
    }
    for (size_t i = 0; i < TT_ARRAY_SIZE(commands); i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "tutti-topo: no command '%s'\n", argv[1]);
    usage(stderr);
    return EXIT_USAGE;
}
