/*
 * plan-bench: how long one rank takes to build its plan, and how much memory
 * the plan holds, for huge communicators (a benchmark, not a test).
 *
 *   plan-bench [--ranks-per-host 8] [--size 64M] [--repeat 5] N...
 *
 * For each N (default 1024 16384 65536) and algorithm (ring with one
 * channel, double binary tree, hierarchical, recursive doubling), builds the
 * allreduce plan of the rank in the middle of the cluster and prints the
 * median build time, the steps and the bytes of the plan.
 */
#include "config.h"

#include "coll/coll.h"
#include "util/config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    static const tt_algo_t algos[] = {TT_ALGO_RING, TT_ALGO_TREE, TT_ALGO_HIER, TT_ALGO_RD};
    int per_host = 8, repeat = 5, nsizes = 0, sizes[16];
    size_t bytes = 64u << 20;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--ranks-per-host") == 0 && i + 1 < argc)
            per_host = atoi(argv[++i]);
        else if (strcmp(argv[i], "--repeat") == 0 && i + 1 < argc)
            repeat = atoi(argv[++i]);
        else if (strcmp(argv[i], "--size") == 0 && i + 1 < argc)
            tt_parse_size(argv[++i], &bytes);
        else if (nsizes < 16 && atoi(argv[i]) > 0)
            sizes[nsizes++] = atoi(argv[i]);
        else {
            fprintf(stderr, "usage: plan-bench [--ranks-per-host L] [--size S] [--repeat R] N...\n");
            return 2;
        }
    }
    if (nsizes == 0) {
        sizes[0] = 1024;
        sizes[1] = 16384;
        sizes[2] = 65536;
        nsizes = 3;
    }
    printf("# allreduce plan of the middle rank, %zu bytes of fp32, %d ranks per host, median of %d\n",
           bytes, per_host, repeat);
    printf("# %8s %-6s %10s %10s %12s\n", "ranks", "algo", "build ms", "steps", "plan bytes");
    for (int k = 0; k < nsizes; k++) {
        int n = sizes[k];
        tt_cluster_t cluster;
        if (tt_cluster_uniform(&cluster, n / per_host, per_host, per_host, NULL) != TUTTI_OK)
            return 1;
        for (size_t a = 0; a < sizeof(algos) / sizeof(algos[0]); a++) {
            tt_coll_desc_t d = {.kind = TT_COLL_ALLREDUCE, .count = bytes / 4, .elem_size = 4,
                                .rank = n / 2, .nranks = n, .algo = algos[a], .channels = 1,
                                .chunk_bytes = 256 * 1024, .pipeline_slots = 4,
                                .cluster = &cluster};
            double t[64];
            size_t plan_bytes = 0;
            int32_t steps = 0;
            for (int r = 0; r < repeat && r < 64; r++) {
                tt_schedule_t s;
                double t0 = now_s();
                tt_schedule_init(&s, d.elem_size);
                if (tt_coll_build(&d, &s) != TUTTI_OK)
                    return 1;
                t[r] = now_s() - t0;
                plan_bytes = tt_schedule_bytes(&s);
                steps = s.nsteps;
                tt_schedule_fini(&s);
            }
            qsort(t, (size_t)repeat, sizeof(double), compare_doubles);
            printf("  %8d %-6s %10.3f %10d %12zu\n", n, tt_algo_names[algos[a]],
                   t[repeat / 2] * 1e3, steps, plan_bytes);
        }
        tt_cluster_fini(&cluster);
    }
    return 0;
}
