/*
 * tutti-topo: look at a host, a cluster and the plans tutti would run on
 * it, without running anything.
 *
 *   tutti-topo host [--ranks L] [--rank l]          this host (TUTTI_TOPO_FILE: an hwloc XML)
 *   tutti-topo cluster FILE                         a cluster description, as tutti reads it
 *   tutti-topo plan [CLUSTER] [--collective C]      per message size: algorithm, chunk, time
 *   tutti-topo draw [CLUSTER] [--algo A]            who sends to whom (Graphviz DOT or SVG)
 *   tutti-topo simulate [CLUSTER] [--size S]        every rank's plan, timed by the simulator
 *
 * CLUSTER is --cluster FILE or --hosts H --ranks-per-host L --nics R (default
 * costs). Selection honours TUTTI_ALGO, TUTTI_TUNING_FILE, TUTTI_CHUNK_SIZE
 * and TUTTI_CHANNELS as a communicator would. Exit status: 0 done, 1 failed
 * (including a refused or deadlocked simulation), 2 bad usage.
 *
 * This file picks the command; each command is a file of its own in
 * tools/topo/, its entry point declared in topo_cmd.h.
 */
#include "config.h"

#include "topo_cmd.h"

#include "util/compiler.h"

#include <stdio.h>
#include <string.h>

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
