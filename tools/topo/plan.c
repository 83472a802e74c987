/* tutti-topo plan: per message size, what tutti would run and the model's time. */
#include "config.h"

#include "topo_cmd.h"

#include "coll/cost.h"
#include "coll/select.h"
#include "util/config.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

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
            "reduce_scatter, allgather and alltoall (n-1)/n, broadcast and reduce 1). Sizes are\n"
            "bytes per rank (all ranks' for reduce_scatter, allgather and alltoall). When the\n"
            "settings overrule the model, the last column names the model's own choice. --all\n"
            "adds every algorithm's predicted time.\n" CLUSTER_USAGE
            "  --collective C          allreduce (default), reduce_scatter, allgather, broadcast,\n"
            "                          reduce, barrier, alltoall\n"
            "  --elem-size B           bytes per element (default 4)\n");
}

/* The cluster in one '#' line, above the table. */
static void print_cluster_line(const tt_cluster_t *c, FILE *out)
{
    fprintf(out,
            "# cluster: %d hosts x %d ranks (%d), %d rail%s; shm %.2f us %.1f GB/s, net %.2f us "
            "%.1f GB/s, reduce %.1f GB/s\n",
            c->nhosts, c->ranks_per_host, c->nranks, c->rails, c->rails == 1 ? "" : "s",
            c->cost.alpha[TT_LINK_SHM] * 1e6, c->cost.beta[TT_LINK_SHM] / 1e9,
            c->cost.alpha[TT_LINK_NET] * 1e6, c->cost.beta[TT_LINK_NET] / 1e9, c->cost.gamma / 1e9);
}

int cmd_plan(int argc, char **argv)
{
    static const struct option options[] = {CLUSTER_LONG_OPTIONS,
                                            {"collective", required_argument, NULL, OPT_COLLECTIVE},
                                            {"min", required_argument, NULL, OPT_MIN},
                                            {"max", required_argument, NULL, OPT_MAX},
                                            {"factor", required_argument, NULL, OPT_FACTOR},
                                            {"elem-size", required_argument, NULL, OPT_ELEM},
                                            {"all", no_argument, NULL, OPT_ALL},
                                            {"help", no_argument, NULL, 'h'},
                                            {NULL, 0, NULL, 0}};
    cluster_opts_t o = CLUSTER_OPTS_DEFAULT;
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
