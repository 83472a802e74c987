/*
 * What tutti-topo's commands share: exit statuses, option codes, the cluster
 * options, parsing and formatting numbers, and describing a call as a
 * communicator would. One file per command (host.c, cluster.c, plan.c,
 * draw.c, simulate.c) holds its usage and its entry point below; main.c
 * picks the command; options.c, format.c and desc.c hold the helpers.
 */
#ifndef TT_TOOLS_TOPO_CMD_H
#define TT_TOOLS_TOPO_CMD_H

#include "coll/coll.h"
#include "topo/cluster.h"

#include <stddef.h>
#include <stdint.h>

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };

#define DEFAULT_MAX_STEPS 200000000ull /* a simulation larger than this is refused */

/* ------------------------------------------------------------ commands */

/*
 * The commands. Each takes the arguments after "tutti-topo" (argv[0] is the
 * command's name), prints its usage for --help, and returns an EXIT_* status.
 */

/* host: this host as tutti discovers it, and where the local ranks land. */
int cmd_host(int argc, char **argv);

/* cluster: a cluster description file as tutti reads it. */
int cmd_cluster(int argc, char **argv);

/* plan: per message size, what tutti would run and the model's time. */
int cmd_plan(int argc, char **argv);

/* draw: a plan's communication graph, as Graphviz DOT or SVG. */
int cmd_draw(int argc, char **argv);

/* simulate: every rank's plan for one call, timed by the schedule simulator. */
int cmd_simulate(int argc, char **argv);

/* ------------------------------------------------------------ options (options.c) */

/* An integer from @p min to 2^24 in *value_p; 1 if @p text is one, else 0. */
int parse_int(const char *text, int min, int *value_p);

/* A size as the settings take them ("256K", "1G") in *bytes_p; 1 if @p text is one, else 0. */
int parse_bytes(const char *text, uint64_t *bytes_p);

/* A count, with K, M or G for thousands, millions, billions ("200M"); 1 if @p text is one. */
int parse_count(const char *text, uint64_t *count_p);

/* The collective named @p name ("allreduce", ...) in *kind_p; 1 if there is one, else 0. */
int kind_by_name(const char *name, tt_coll_kind_t *kind_p);

/* The algorithm named @p name ("ring", ...) in *algo_p; 1 if there is one, else 0. */
int algo_by_name(const char *name, tt_algo_t *algo_p);

/* What --cluster, --hosts, --ranks-per-host and --nics say. */
typedef struct cluster_opts {
    const char *file;
    int hosts, per_host, nics;
} cluster_opts_t;

/* The cluster options' defaults: one host of 8 ranks and one NIC. */
#define CLUSTER_OPTS_DEFAULT \
    {                        \
        NULL, 1, 8, 1        \
    }

/* The cluster options' entries of a getopt_long table. */
#define CLUSTER_LONG_OPTIONS                                       \
    {"cluster", required_argument, NULL, OPT_CLUSTER},             \
        {"hosts", required_argument, NULL, OPT_HOSTS},             \
        {"ranks-per-host", required_argument, NULL, OPT_PER_HOST}, \
    {                                                              \
        "nics", required_argument, NULL, OPT_NICS                  \
    }

/* The cluster options' lines of a command's usage. */
#define CLUSTER_USAGE                                                                     \
    "  --cluster FILE          a cluster description (see 'tutti-topo cluster --help')\n" \
    "  --hosts H               or a cluster of H hosts (default 1) ...\n"                 \
    "  --ranks-per-host L      ... of L ranks each (default 8) ...\n"                     \
    "  --nics R                ... and R NICs each (default 1), with the default costs\n"

/* getopt_long codes of the long options; every command's table takes its own from these. */
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
int cluster_option(cluster_opts_t *o, int opt, const char *arg, int *bad_p);

/* Build the cluster the options describe; logs and returns non-zero on failure. */
int load_cluster(const cluster_opts_t *o, tt_cluster_t *c);

/* ------------------------------------------------------------ formatting (format.c) */

/* Each writes into @p buf of @p len bytes and returns @p buf. */

/* "1.5 MiB" */
const char *format_bytes(double bytes, char *buf, size_t len);

/* "256K" (sizes as the settings take them) */
const char *format_size(uint64_t bytes, char *buf, size_t len);

/* "12.3 us" / "4.56 ms" / "1.23 s" */
const char *format_seconds(double s, char *buf, size_t len);

/* Say on standard error that memory ran out while doing @p what; returns 1. */
int out_of_memory(const char *what);

/* ------------------------------------------------------------ descriptions (desc.c) */

/* Bus bandwidth over algorithm bandwidth, as nccl-tests define it. */
double busbw_factor(tt_coll_kind_t kind, int n);

/* A description of a call moving @p bytes (tt_cost_bytes' sense) on @p c; algorithm unset. */
tt_coll_desc_t make_desc(tt_coll_kind_t kind, uint64_t bytes, size_t elem, int root,
                         const tt_cluster_t *c);

/* Can @p algo build this plan on @p c? Says why not. */
int algo_usable(tt_algo_t algo, tt_coll_kind_t kind, const tt_cluster_t *c);

/*
 * Resolve @p d as a communicator would (TUTTI_* settings, the tuning file,
 * the model), then apply what the command line forces. Returns what decided
 * the algorithm, NULL on failure (logged).
 */
const char *resolve(tt_coll_desc_t *d, const tt_cluster_t *c, tt_algo_t algo, size_t chunk,
                    int channels);

/*
 * About how many steps all ranks' plans of @p d hold, from a few ranks'
 * plans (the algorithms give every rank nearly the same number), in
 * *total_p; the largest one sampled in *max_p, and the largest part of one
 * in *part_max_p if not NULL. Non-zero if a plan cannot be built (logged).
 */
int estimate_steps(tt_coll_desc_t d, uint64_t *total_p, uint64_t *max_p, uint64_t *part_max_p);

#endif
