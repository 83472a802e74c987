/* tutti-topo host: this host as tutti discovers it, and where the local ranks land. */
#include "config.h"

#include "topo_cmd.h"

#include "topo/topo.h"
#include "util/config.h"

#include <getopt.h>
#include <stdio.h>

static void host_usage(FILE *out)
{
    fprintf(out,
            "usage: tutti-topo host [--ranks L] [--rank l]\n"
            "Discover this host with hwloc (or read the hwloc XML file TUTTI_TOPO_FILE names)\n"
            "and print it, with the place of local rank l (default 0) of L (default 1): its\n"
            "NUMA node, its slice of the cores and its nearest NIC. With L > 1, every local\n"
            "rank's place too.\n");
}

int cmd_host(int argc, char **argv)
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
            status = tt_topo_discover(&settings, l, ranks, &t);
            if (status != TUTTI_OK) {
                fprintf(stderr, "tutti-topo: cannot place local rank %d: %s\n", l,
                        tutti_status_string(status));
                return EXIT_FAIL;
            }
            printf("    %3d: NUMA %d, package %d, PUs L#%d-%d, NIC %s\n", l, t.my_numa,
                   t.my_package, t.my_first_pu, t.my_first_pu + t.my_npus - 1,
                   t.my_nic >= 0 ? t.nics[t.my_nic].name : "none");
        }
    }
    return EXIT_OK;
}
