/*
 * tutti-topo draw: a plan's communication graph, who sends to whom, as
 * Graphviz DOT (or SVG, through Graphviz's dot).
 */
#include "config.h"

#include "topo_cmd.h"

#include "coll/cost.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void draw_usage(FILE *out)
{
    fprintf(out,
            "usage: tutti-topo draw [CLUSTER] [--collective C] [--algo A] [--size S]\n"
            "                       [--channel c] [--format dot|svg] [-o FILE] [--collapse]\n"
            "                       [--max-hosts N] [--root r] [--elem-size B]\n"
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
            "  --channel c             only channel c's transfers\n"
            "  --root r                root of a broadcast or reduce (default 0)\n"
            "  --elem-size B           bytes per element (default 4)\n");
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

int cmd_draw(int argc, char **argv)
{
    static const struct option options[] = {CLUSTER_LONG_OPTIONS,
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
    cluster_opts_t o = CLUSTER_OPTS_DEFAULT;
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
    if (collapse && (host_inner = calloc((size_t)c.nhosts, sizeof(uint64_t))) == NULL) {
        out_of_memory("for the hosts");
        goto out;
    }
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
                out_of_memory("for the graph's edges");
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
