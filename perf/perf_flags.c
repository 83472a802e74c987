/* The command line of tutti-perf and mpi-perf, in nccl-tests' spirit; see usage(). */
#include "perf_internal.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *out, const char *program)
{
    fprintf(out,
            "usage: %s COLLECTIVE [flags]\n"
            "  COLLECTIVE              %s\n"
            "  -b, --minbytes N        smallest size in bytes (default 8); suffixes K M G\n"
            "                          (powers of 1024); below one element means one element\n"
            "  -e, --maxbytes N        largest size (default 64M)\n"
            "  -f, --stepfactor F      multiply the size by F from row to row (default 2)\n"
            "  -i, --stepbytes N       add N bytes from row to row instead\n"
            "  -n, --iters N           timed calls per size and placement (default 20)\n"
            "  -w, --warmup_iters N    untimed calls before them (default 5)\n"
            "  -c, --check 0|1         check every result element (default 1)\n"
            "  -d, --datatype T        int8 uint8 int32 uint32 int64 uint64 fp16 bf16 fp32\n"
            "                          fp64 (also char int half float16 bfloat16 float\n"
            "                          float32 double float64), a comma list, or all\n"
            "                          (default fp32)\n"
            "  -o, --op OP             sum prod min max avg, a comma list, or all\n"
            "                          (default sum)\n"
            "  -r, --root R            root rank of rooted collectives (default 0)\n"
            "  -a, --average A         the time of a row, from the ranks' mean times:\n"
            "                          0 rank 0's, 1 the average (default), 2 the\n"
            "                          smallest, 3 the largest\n"
            "  -z, --blocking 0|1      1: the blocking calls (default); 0: the nonblocking\n"
            "                          ones, each waited for before the next\n"
            "  -J, --json FILE         also write the results to FILE as JSON (rank 0)\n"
            "  -p, --pattern P         alltoallv's traffic (default uniform):\n"
            "                          uniform  the same count for every pair of ranks;\n"
            "                          random   a weight per (sender, receiver) pair, 0 for\n"
            "                                   about a quarter of them, else 1..16;\n"
            "                          moe      every rank routes --tokens tokens, each to\n"
            "                                   --topk distinct experts out of --experts\n"
            "                                   (spread evenly over the ranks) drawn with\n"
            "                                   a Zipf skew; a token goes to a rank once\n"
            "                                   however many of its experts live there\n"
            "                          Every rank draws the same matrix from --seed; each\n"
            "                          row splits its data over the pairs in proportion\n"
            "      --experts E         moe: experts (default 64)\n"
            "      --topk K            moe: experts per token, <= E (default 2)\n"
            "      --zipf S            moe: expert of popularity p (from 0) has weight\n"
            "                          1/(p+1)^S, 0 for none (default 1)\n"
            "      --tokens T          moe: tokens per rank that shape the matrix (default\n"
            "                          4096; the row's size sets the bytes per token)\n"
            "      --seed N            random, moe: the seed all ranks draw from (default 1)\n"
            "  -h, --help              this text\n"
            "      --corrupt           for testing the checker only: change one result\n"
            "                          element before every check, on the root (rooted\n"
            "                          collectives) or the last rank\n"
            "Each size runs out of place, then in place. time is the mean time of one\n"
            "call over the iterations, combined over the ranks as -a says; algbw =\n"
            "size / time; busbw = algbw times the collective's factor (allreduce\n"
            "2(n-1)/n, reduce_scatter, allgather, alltoall and alltoallv (n-1)/n,\n"
            "broadcast and reduce 1). The size of alltoall is what one rank sends\n"
            "(count elements to each rank); of alltoallv what a rank sends on average\n"
            "(count is the average per pair). alltoallv adds the bound the busiest rank\n"
            "sets: busiest = the most bytes any one rank sends to other ranks or\n"
            "receives from them (its own block left out), and busiest bw = busiest /\n"
            "time, per placement. A rank moves its busiest bytes at no more than its\n"
            "link's speed, so busiest bw compares with the busbw of a uniform pattern\n"
            "(where the two are equal): near it, the skew costs no more than the busiest\n"
            "rank's extra bytes. #wrong sums the wrong elements over the ranks.\n"
            "Exit status: 0 all right, 1 wrong results, 2 bad flags, 3 a library call\n"
            "failed.\n",
            program, perf_coll_names(26));
}

/* Flags without a letter. */
enum { OPT_CORRUPT = 256, OPT_EXPERTS, OPT_TOPK, OPT_ZIPF, OPT_TOKENS, OPT_SEED };

/* Every rank draws tokens * topk experts per rank, each a scan of the experts: keep it small. */
#define MAX_EXPERTS 4096
#define MAX_TOKENS (1L << 20) /* a pair's weight is at most 2^20 (perf_traffic.c) */

/* "64M" -> 67108864. Returns 0 on success. */
static int parse_size(const char *text, size_t *bytes_p)
{
    char *end;
    unsigned long long v;
    unsigned shift = 0;

    errno = 0;
    if (*text == '-')
        return -1;
    v = strtoull(text, &end, 10);
    if (errno != 0 || end == text)
        return -1;
    switch (*end) {
    case 'k':
    case 'K':
        shift = 10;
        end++;
        break;
    case 'm':
    case 'M':
        shift = 20;
        end++;
        break;
    case 'g':
    case 'G':
        shift = 30;
        end++;
        break;
    default: break;
    }
    if (shift > 0 && (*end == 'i' || *end == 'I'))
        end++;
    if (*end == 'b' || *end == 'B')
        end++;
    if (*end != '\0' || v > (SIZE_MAX >> shift))
        return -1;
    *bytes_p = (size_t)v << shift;
    return 0;
}

static int parse_long(const char *text, long min, long *v_p)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || v < min)
        return -1;
    *v_p = v;
    return 0;
}

/* A number in [min, max] into *v_p (left alone on failure). Returns 0 on success. */
static int parse_double(const char *text, double min, double max, double *v_p)
{
    char *end;
    double v;

    errno = 0;
    v = strtod(text, &end);
    if (errno != 0 || end == text || *end != '\0' || !(v >= min && v <= max))
        return -1;
    *v_p = v;
    return 0;
}

/* An integer in [min, max] into *v_p (left alone on failure). Returns 0 on success. */
static int parse_int(const char *text, int min, int max, int *v_p)
{
    long v;

    if (parse_long(text, min, &v) != 0 || v > max)
        return -1;
    *v_p = (int)v;
    return 0;
}

/* A comma list of names (or "all") into @p list; returns the count or -1. */
static int parse_list(const char *text, int (*find)(const char *, size_t), int nall, int *list)
{
    int n = 0;

    if (strcmp(text, "all") == 0) {
        for (int v = 0; v < nall; v++)
            list[v] = v;
        return nall;
    }
    while (*text != '\0') {
        size_t len = strcspn(text, ",");
        int v = find(text, len);
        if (v < 0 || n == nall)
            return -1;
        list[n++] = v;
        text += len + (text[len] == ',');
    }
    return n;
}

/* Ranks other than 0 keep quiet about bad flags: every rank would say the same. */
static int quiet_rank(void)
{
    static const char *const names[] = {"TUTTI_RANK", "OMPI_COMM_WORLD_RANK", "PMI_RANK", "RANK"};
    for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++) {
        const char *v = getenv(names[k]);
        if (v != NULL)
            return strcmp(v, "0") != 0;
    }
    return 0;
}

/* The pattern flags: sets @p bad_p on a bad value. Returns 1 if @p c is one of them. */
static int pattern_flag(int c, const char *arg, perf_pattern_opts_t *p, const char **bad_p)
{
    long v;

    switch (c) {
    case 'p':
        v = perf_find_pattern(arg, strlen(arg));
        if (v < 0)
            *bad_p = "-p wants uniform, random or moe";
        else
            p->pattern = (perf_pattern_t)v;
        return 1;
    case OPT_EXPERTS:
        if (parse_int(arg, 1, MAX_EXPERTS, &p->experts) != 0)
            *bad_p = "--experts wants an integer from 1 to 4096";
        return 1;
    case OPT_TOPK:
        if (parse_int(arg, 1, MAX_EXPERTS, &p->topk) != 0)
            *bad_p = "--topk wants an integer >= 1";
        return 1;
    case OPT_ZIPF:
        if (parse_double(arg, 0, 16, &p->zipf) != 0)
            *bad_p = "--zipf wants a number from 0 to 16";
        return 1;
    case OPT_TOKENS:
        if (parse_long(arg, 1, &v) != 0 || v > MAX_TOKENS)
            *bad_p = "--tokens wants an integer from 1 to 1048576";
        else
            p->tokens = v;
        return 1;
    case OPT_SEED:
        if (parse_long(arg, 0, &v) != 0)
            *bad_p = "--seed wants an integer >= 0";
        else
            p->seed = (uint64_t)v;
        return 1;
    default: return 0;
    }
}

int perf_parse_flags(int argc, char **argv, const char *program, perf_opts_t *o)
{
    static const char shortopts[] = "b:e:f:i:n:w:c:d:o:r:a:z:J:p:h";
    static const struct option longopts[] = {
        {"minbytes", required_argument, NULL, 'b'},
        {"maxbytes", required_argument, NULL, 'e'},
        {"stepfactor", required_argument, NULL, 'f'},
        {"stepbytes", required_argument, NULL, 'i'},
        {"iters", required_argument, NULL, 'n'},
        {"warmup_iters", required_argument, NULL, 'w'},
        {"check", required_argument, NULL, 'c'},
        {"datatype", required_argument, NULL, 'd'},
        {"op", required_argument, NULL, 'o'},
        {"root", required_argument, NULL, 'r'},
        {"average", required_argument, NULL, 'a'},
        {"blocking", required_argument, NULL, 'z'},
        {"json", required_argument, NULL, 'J'},
        {"pattern", required_argument, NULL, 'p'},
        {"experts", required_argument, NULL, OPT_EXPERTS},
        {"topk", required_argument, NULL, OPT_TOPK},
        {"zipf", required_argument, NULL, OPT_ZIPF},
        {"tokens", required_argument, NULL, OPT_TOKENS},
        {"seed", required_argument, NULL, OPT_SEED},
        {"help", no_argument, NULL, 'h'},
        {"corrupt", no_argument, NULL, OPT_CORRUPT},
        {NULL, 0, NULL, 0},
    };
    int list[PERF_NUM_DTYPES + PERF_NUM_OPS], n, c;
    long v;
    const char *bad = NULL;
    char flag_text[96];

    memset(o, 0, sizeof(*o));
    o->min_bytes = 8;
    o->max_bytes = (size_t)64 << 20;
    o->factor = 2;
    o->iters = 20;
    o->warmup = 5;
    o->check = 1;
    o->blocking = 1;
    o->aggregate = PERF_AGG_AVG;
    o->dtype_list[0] = PERF_FP32;
    o->ndtypes = 1;
    o->op_list[0] = PERF_SUM;
    o->nops = 1;
    o->pattern = (perf_pattern_opts_t){PERF_PATTERN_UNIFORM, 64, 2, 1.0, 4096, 1};

    if (argc >= 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
        usage(stdout, program);
        return 1;
    }
    if (argc < 2 || argv[1][0] == '-') {
        bad = "name a collective first";
        goto err;
    }
    o->coll = perf_coll_find(argv[1]);
    if (o->coll == NULL) {
        bad = "unknown collective (--help lists them)";
        goto err;
    }
    optind = 2;
    opterr = 0; /* getopt's own messages would come from every rank */
    while ((c = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
        if (pattern_flag(c, optarg, &o->pattern, &bad)) {
            o->pattern_set = 1;
            if (bad != NULL)
                goto err;
            continue;
        }
        switch (c) {
        case 'b':
            if (parse_size(optarg, &o->min_bytes) != 0)
                bad = "-b wants a size such as 8, 4K or 1M";
            break;
        case 'e':
            if (parse_size(optarg, &o->max_bytes) != 0)
                bad = "-e wants a size such as 8, 4K or 1M";
            break;
        case 'f':
            if (parse_long(optarg, 2, &v) != 0)
                bad = "-f wants an integer >= 2";
            else
                o->factor = (size_t)v;
            break;
        case 'i':
            if (parse_size(optarg, &o->step_bytes) != 0 || o->step_bytes == 0)
                bad = "-i wants a size > 0";
            break;
        case 'n':
            if (parse_long(optarg, 1, &o->iters) != 0)
                bad = "-n wants an integer >= 1";
            break;
        case 'w':
            if (parse_long(optarg, 0, &o->warmup) != 0)
                bad = "-w wants an integer >= 0";
            break;
        case 'c':
            if (parse_int(optarg, 0, 1, &o->check) != 0)
                bad = "-c wants 0 or 1";
            break;
        case 'd':
            n = parse_list(optarg, perf_find_dtype, PERF_NUM_DTYPES, list);
            if (n <= 0)
                bad = "-d wants datatypes from the list in --help, or all";
            for (int k = 0; k < n; k++)
                o->dtype_list[k] = (perf_dtype_t)list[k];
            o->ndtypes = n > 0 ? n : o->ndtypes;
            break;
        case 'o':
            n = parse_list(optarg, perf_find_op, PERF_NUM_OPS, list);
            if (n <= 0)
                bad = "-o wants sum, prod, min, max, avg, a comma list or all";
            for (int k = 0; k < n; k++)
                o->op_list[k] = (perf_op_t)list[k];
            o->nops = n > 0 ? n : o->nops;
            break;
        case 'r':
            if (parse_int(optarg, 0, 1 << 30, &o->root) != 0)
                bad = "-r wants a rank";
            break;
        case 'a':
            if (parse_long(optarg, 0, &v) != 0 || v > PERF_AGG_MAX)
                bad = "-a wants 0 (rank 0), 1 (average), 2 (min) or 3 (max)";
            else
                o->aggregate = (perf_aggregate_t)v;
            break;
        case 'z':
            if (parse_int(optarg, 0, 1, &o->blocking) != 0)
                bad = "-z wants 0 (nonblocking) or 1 (blocking)";
            break;
        case 'J':
            if (optarg[0] == '\0')
                bad = "-J wants a file name";
            else
                o->json_path = optarg;
            break;
        case 'h': usage(stdout, program); return 1;
        case OPT_CORRUPT: o->corrupt = 1; break;
        default:
            snprintf(flag_text, sizeof(flag_text), "%s: %s", argv[optind - 1],
                     optopt > OPT_CORRUPT || (optopt != 0 && strchr(shortopts, optopt) != NULL)
                         ? "missing value"
                         : "unknown flag");
            bad = flag_text;
            break;
        }
        if (bad != NULL)
            goto err;
    }
    if (optind < argc)
        bad = "unexpected argument after the flags";
    else if (o->min_bytes > o->max_bytes)
        bad = "-b is larger than -e";
    else if (o->pattern_set && !o->coll->has_pattern)
        bad = "-p and the moe flags are for alltoallv only";
    else if (o->pattern.topk > o->pattern.experts)
        bad = "--topk is larger than --experts";
    if (bad == NULL)
        return 0;
err:
    if (!quiet_rank())
        fprintf(stderr, "%s: %s\n(%s --help lists the flags)\n", program, bad, program);
    return -1;
}
