/*
 * tutti-topo's command line: integers, sizes and names, and the cluster
 * options every command that plans takes, with the cluster they describe.
 */
#include "config.h"

#include "topo_cmd.h"

#include "topo/cluster.h"
#include "util/config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int parse_int(const char *text, int min, int *value_p)
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

int parse_bytes(const char *text, uint64_t *bytes_p)
{
    size_t size;
    if (tt_parse_size(text, &size) != TUTTI_OK)
        return 0;
    *bytes_p = size;
    return 1;
}

int parse_count(const char *text, uint64_t *count_p)
{
    static const char suffixes[] = "KMG";
    uint64_t scale = 1;
    unsigned long long v;
    char *end;

    errno = 0;
    v = strtoull(text, &end, 10);
    if (errno != 0 || end == text || text[0] == '-')
        return 0;
    if (*end != '\0') {
        const char *s = strchr(suffixes, *end);
        if (s == NULL || end[1] != '\0')
            return 0;
        for (long k = 0; k <= s - suffixes; k++)
            scale *= 1000;
    }
    if (v > UINT64_MAX / scale)
        return 0;
    *count_p = v * scale;
    return 1;
}

int kind_by_name(const char *name, tt_coll_kind_t *kind_p)
{
    for (int k = 0; k < TT_COLL_KIND_COUNT; k++)
        if (strcmp(name, tt_coll_kind_names[k]) == 0) {
            *kind_p = (tt_coll_kind_t)k;
            return 1;
        }
    return 0;
}

int algo_by_name(const char *name, tt_algo_t *algo_p)
{
    for (int a = 0; a < TT_ALGO_COUNT; a++)
        if (strcmp(name, tt_algo_names[a]) == 0) {
            *algo_p = (tt_algo_t)a;
            return 1;
        }
    return 0;
}

int cluster_option(cluster_opts_t *o, int opt, const char *arg, int *bad_p)
{
    switch (opt) {
    case OPT_CLUSTER: o->file = arg; return 1;
    case OPT_HOSTS: *bad_p |= !parse_int(arg, 1, &o->hosts); return 1;
    case OPT_PER_HOST: *bad_p |= !parse_int(arg, 1, &o->per_host); return 1;
    case OPT_NICS: *bad_p |= !parse_int(arg, 0, &o->nics); return 1;
    default: return 0;
    }
}

int load_cluster(const cluster_opts_t *o, tt_cluster_t *c)
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
