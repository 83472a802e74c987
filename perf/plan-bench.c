/*
 * plan-bench: how long one rank takes to build its plan, and how much memory
 * the plan holds, for huge communicators (a benchmark, not a test).
 *
 *   plan-bench [--ranks-per-host 8] [--size 64M] [--repeat 5] [--part-steps 4096] N...
 *
 * For each N (default 1024 16384 65536) and algorithm (ring with one
 * channel, double binary tree, hierarchical, recursive doubling), builds the
 * allreduce plan of the rank in the middle of the cluster and prints how many
 * parts it comes in, the median time to build the first part (what a call
 * waits for before it starts), its steps, the most bytes any part holds, and
 * the time to build every part (spread over the run of the collective).
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
    uint32_t part_steps = 4096;
    size_t bytes = 64u << 20;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--ranks-per-host") == 0 && i + 1 < argc)
            per_host = atoi(argv[++i]);
        else if (strcmp(argv[i], "--repeat") == 0 && i + 1 < argc)
            repeat = TT_MIN(TT_MAX(atoi(argv[++i]), 1), 64);
        else if (strcmp(argv[i], "--size") == 0 && i + 1 < argc)
            tt_parse_size(argv[++i], &bytes);
        else if (strcmp(argv[i], "--part-steps") == 0 && i + 1 < argc)
            part_steps = (uint32_t)atoi(argv[++i]);
        else if (nsizes < 16 && atoi(argv[i]) > 0)
            sizes[nsizes++] = atoi(argv[i]);
        else {
            fprintf(stderr, "usage: plan-bench [--ranks-per-host L] [--size S] [--repeat R] "
                            "[--part-steps P] N...\n");
            return 2;
        }
    }
    if (nsizes == 0) {
        sizes[0] = 1024;
        sizes[1] = 16384;
        sizes[2] = 65536;
        nsizes = 3;
    }
    printf("# allreduce plan of the middle rank, %zu bytes of fp32, %d ranks per host, parts of "
           "%u steps, median of %d\n",
           bytes, per_host, part_steps, repeat);
    printf("# %8s %-6s %6s %14s %11s %15s %13s\n", "ranks", "algo", "parts", "first part ms",
           "steps", "max part bytes", "all parts ms");
    for (int k = 0; k < nsizes; k++) {
        int n = sizes[k];
        tt_cluster_t cluster;
        if (tt_cluster_uniform(&cluster, n / per_host, per_host, per_host, NULL) != TUTTI_OK)
            return 1;
        for (size_t a = 0; a < sizeof(algos) / sizeof(algos[0]); a++) {
            tt_coll_desc_t d = {.kind = TT_COLL_ALLREDUCE,
                                .count = bytes / 4,
                                .elem_size = 4,
                                .rank = n / 2,
                                .nranks = n,
                                .algo = algos[a],
                                .channels = 1,
                                .chunk_bytes = 256 * 1024,
                                .pipeline_slots = 4,
                                .part_steps = part_steps,
                                .cluster = &cluster};
            int parts = tt_coll_parts(&d);
            double t[64], all_t0, all_parts;
            size_t max_bytes = 0;
            int32_t steps = 0;

            for (int r = 0; r < repeat; r++) {
                tt_schedule_t s;
                double t0 = now_s();
                tt_schedule_init(&s, d.elem_size);
                if (tt_coll_build_part(&d, 0, &s) != TUTTI_OK)
                    return 1;
                t[r] = now_s() - t0;
                steps = s.nsteps;
                tt_schedule_fini(&s);
            }
            all_t0 = now_s();
            for (int part = 0; part < parts; part++) {
                tt_schedule_t s;
                tt_schedule_init(&s, d.elem_size);
                if (tt_coll_build_part(&d, part, &s) != TUTTI_OK)
                    return 1;
                max_bytes = TT_MAX(max_bytes, tt_schedule_bytes(&s));
                tt_schedule_fini(&s);
            }
            all_parts = now_s() - all_t0;
            qsort(t, (size_t)repeat, sizeof(double), compare_doubles);
            printf("  %8d %-6s %6d %14.3f %11d %15zu %13.3f\n", n, tt_algo_names[algos[a]], parts,
                   t[repeat / 2] * 1e3, steps, max_bytes, all_parts * 1e3);
        }
        tt_cluster_fini(&cluster);
    }
    return 0;
}
