/* The cluster view; see cluster.h. */
#include "config.h"

#include "topo/cluster.h"

#include "util/config.h"
#include "util/log.h"
#include "util/time.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

const char *const tt_link_class_names[TT_LINK_CLASSES] = {"shm", "net"};

const tt_cost_model_t tt_cost_model_default = {
    .alpha = {[TT_LINK_SHM] = 0.4e-6, [TT_LINK_NET] = 3e-6},
    .beta = {[TT_LINK_SHM] = 10e9, [TT_LINK_NET] = 25e9},
    .gamma = 20e9,
};

tutti_status_t tt_cluster_init(tt_cluster_t *c, int nranks, const tt_rank_place_t *places,
                               int rails, const tt_cost_model_t *cost)
{
    int *fill;

    memset(c, 0, sizeof(*c));
    c->nranks = nranks;
    c->rails = rails > 0 ? rails : 1;
    c->cost = cost != NULL ? *cost : tt_cost_model_default;
    for (int r = 0; r < nranks; r++)
        if (places[r].host + 1 > c->nhosts)
            c->nhosts = places[r].host + 1;
    c->places = malloc((size_t)nranks * sizeof(*c->places));
    c->host_start = calloc((size_t)c->nhosts + 1, sizeof(int));
    c->host_ranks = malloc((size_t)nranks * sizeof(int));
    fill = calloc((size_t)c->nhosts + 1, sizeof(int));
    if (c->places == NULL || c->host_start == NULL || c->host_ranks == NULL || fill == NULL) {
        free(fill);
        tt_cluster_fini(c);
        return TUTTI_ERR_NO_MEMORY;
    }
    memcpy(c->places, places, (size_t)nranks * sizeof(*places));
    for (int r = 0; r < nranks; r++)
        c->host_start[places[r].host + 1]++;
    for (int h = 0; h < c->nhosts; h++)
        c->host_start[h + 1] += c->host_start[h];
    for (int r = 0; r < nranks; r++) {
        int h = places[r].host, slot = c->host_start[h] + places[r].local;
        if (places[r].local < 0 || slot >= c->host_start[h + 1] || fill[h] != places[r].local) {
            tt_error("cluster: rank %d has local index %d on host %d: not in rank order", r,
                     places[r].local, h);
            free(fill);
            tt_cluster_fini(c);
            return TUTTI_ERR_INVALID_ARG;
        }
        fill[h]++;
        c->host_ranks[slot] = r;
    }
    free(fill);
    c->ranks_per_host = tt_cluster_host_size(c, 0);
    for (int h = 1; h < c->nhosts; h++)
        if (tt_cluster_host_size(c, h) != c->ranks_per_host)
            c->ranks_per_host = 0;
    return TUTTI_OK;
}

tutti_status_t tt_cluster_uniform(tt_cluster_t *c, int nhosts, int per_host, int nics,
                                  const tt_cost_model_t *cost)
{
    int n = nhosts * per_host;
    tt_rank_place_t *places = malloc((size_t)n * sizeof(*places));
    tutti_status_t status;

    if (nhosts < 1 || per_host < 1 || nics < 0 || places == NULL) {
        free(places);
        return places == NULL ? TUTTI_ERR_NO_MEMORY : TUTTI_ERR_INVALID_ARG;
    }
    for (int r = 0; r < n; r++) {
        int local = r % per_host;
        places[r].host = r / per_host;
        places[r].local = local;
        /* Spread a host's ranks over its NICs in order, as a launcher binds them. */
        places[r].nic = nics > 0 ? (int)((long)local * nics / per_host) : -1;
        places[r].numa = -1;
    }
    status = tt_cluster_init(c, n, places, nics, cost);
    free(places);
    return status;
}

tutti_status_t tt_cluster_copy(tt_cluster_t *dst, const tt_cluster_t *src)
{
    return tt_cluster_init(dst, src->nranks, src->places, src->rails, &src->cost);
}

void tt_cluster_fini(tt_cluster_t *c)
{
    free(c->places);
    free(c->host_start);
    free(c->host_ranks);
    memset(c, 0, sizeof(*c));
}

/* "beta=25G" style: a rate in bytes/s with K/M/G (powers of 1000 for rates). */
static int parse_rate(const char *text, double *rate_p)
{
    char *end;
    double v = strtod(text, &end);
    switch (toupper((unsigned char)*end)) {
    case 'K':
        v *= 1e3;
        end++;
        break;
    case 'M':
        v *= 1e6;
        end++;
        break;
    case 'G':
        v *= 1e9;
        end++;
        break;
    case 'T':
        v *= 1e12;
        end++;
        break;
    default: break;
    }
    if (*end == 'B')
        end++;
    if (strncmp(end, "/s", 2) == 0)
        end += 2;
    *rate_p = v;
    return *end == '\0' && v > 0;
}

static int parse_seconds(const char *text, double *seconds_p)
{
    int64_t ns;
    if (tt_parse_duration(text, &ns) != TUTTI_OK)
        return 0;
    *seconds_p = (double)ns / TT_NS_PER_S;
    return 1;
}

/* One "key=value" word of a link or reduce line. */
static int parse_cost_word(const char *word, double *alpha, double *beta, double *gamma)
{
    const char *eq = strchr(word, '=');
    if (eq == NULL)
        return 0;
    if (alpha != NULL && strncmp(word, "alpha=", 6) == 0)
        return parse_seconds(eq + 1, alpha);
    if (beta != NULL && strncmp(word, "beta=", 5) == 0)
        return parse_rate(eq + 1, beta);
    if (gamma != NULL && strncmp(word, "gamma=", 6) == 0)
        return parse_rate(eq + 1, gamma);
    return 0;
}

tutti_status_t tt_cluster_parse(tt_cluster_t *c, FILE *in, const char *name)
{
    tt_cost_model_t cost = tt_cost_model_default;
    long hosts = 0, per_host = 0, nics = 0;
    char line[512];
    int lineno = 0;

    while (fgets(line, sizeof(line), in) != NULL) {
        char *words[8], *save = NULL, *hash = strchr(line, '#');
        int n = 0, ok = 1;

        lineno++;
        if (hash != NULL)
            *hash = '\0';
        for (char *w = strtok_r(line, " \t\r\n", &save); w != NULL && n < 8;
             w = strtok_r(NULL, " \t\r\n", &save))
            words[n++] = w;
        if (n == 0)
            continue;
        if (n == 2 && strcmp(words[0], "hosts") == 0)
            ok = (hosts = strtol(words[1], NULL, 10)) > 0;
        else if (n == 2 && strcmp(words[0], "ranks_per_host") == 0)
            ok = (per_host = strtol(words[1], NULL, 10)) > 0;
        else if (n == 2 && strcmp(words[0], "nics_per_host") == 0)
            ok = (nics = strtol(words[1], NULL, 10)) >= 0;
        else if (n >= 3 && strcmp(words[0], "link") == 0) {
            int cls = -1;
            for (int k = 0; k < TT_LINK_CLASSES; k++)
                if (strcmp(words[1], tt_link_class_names[k]) == 0)
                    cls = k;
            ok = cls >= 0;
            for (int k = 2; k < n && ok; k++)
                ok = parse_cost_word(words[k], &cost.alpha[cls], &cost.beta[cls], NULL);
        } else if (n >= 2 && strcmp(words[0], "reduce") == 0) {
            for (int k = 1; k < n && ok; k++)
                ok = parse_cost_word(words[k], NULL, NULL, &cost.gamma);
        } else {
            ok = 0;
        }
        if (!ok) {
            tt_error("cluster description %s, line %d: cannot read '%s'", name, lineno, words[0]);
            return TUTTI_ERR_INVALID_ARG;
        }
    }
    if (hosts <= 0 || per_host <= 0 || hosts * per_host > (1L << 24)) {
        tt_error("cluster description %s: needs 'hosts' and 'ranks_per_host' (at most 16M ranks)",
                 name);
        return TUTTI_ERR_INVALID_ARG;
    }
    return tt_cluster_uniform(c, (int)hosts, (int)per_host, (int)nics, &cost);
}

void tt_cluster_print(const tt_cluster_t *c, FILE *out)
{
    fprintf(out, "cluster: %d ranks on %d hosts", c->nranks, c->nhosts);
    if (c->ranks_per_host > 0)
        fprintf(out, ", %d per host", c->ranks_per_host);
    fprintf(out, ", %d rail%s\n", c->rails, c->rails == 1 ? "" : "s");
    for (int k = 0; k < TT_LINK_CLASSES; k++)
        fprintf(out, "  link %-3s alpha %.2f us, beta %.1f GB/s\n", tt_link_class_names[k],
                c->cost.alpha[k] * 1e6, c->cost.beta[k] / 1e9);
    fprintf(out, "  reduce   gamma %.1f GB/s\n", c->cost.gamma / 1e9);
}
