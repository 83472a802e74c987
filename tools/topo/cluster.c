/* tutti-topo cluster: a cluster description file as tutti reads it. */
#include "config.h"

#include "topo_cmd.h"

#include "api/links.h"
#include "topo/cluster.h"

#include <getopt.h>
#include <stdio.h>

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

static const char *transport_name(const char *name)
{
    return name != NULL ? name : "none (the ranks must share a host)";
}

int cmd_cluster(int argc, char **argv)
{
    static const struct option options[] = {{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    cluster_opts_t o = CLUSTER_OPTS_DEFAULT;
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
    printf("  transports (TUTTI_TRANSPORTS): inside a host %s, between hosts %s\n",
           transport_name(tt_links_choice(NULL, 1)), transport_name(tt_links_choice(NULL, 0)));
    printf("  a 1 MiB message: shm %.2f us, net %.2f us; combining it %.2f us\n",
           (c.cost.alpha[TT_LINK_SHM] + 1048576.0 / c.cost.beta[TT_LINK_SHM]) * 1e6,
           (c.cost.alpha[TT_LINK_NET] + 1048576.0 / c.cost.beta[TT_LINK_NET]) * 1e6,
           1048576.0 / c.cost.gamma * 1e6);
    tt_cluster_fini(&c);
    return EXIT_OK;
}
