/*
 * What rank 0 prints: nccl-tests' table (header, one row per size with the
 * out-of-place and in-place figures, the footer with the wrong count and the
 * average bus bandwidth), and with -J the same figures as a JSON document.
 *
 * Under a traffic pattern (all-to-all-v) a row adds three columns after
 * the usual thirteen, which keep their places: the busiest rank's bytes
 * and, out of place and in place, those bytes over the time. busbw
 * (algbw (n-1)/n) says what an average rank sends off-rank per second,
 * but a skewed pattern waits for its busiest rank: the one that sends or
 * receives the most bytes to or from the others (its own block is a local
 * copy and left out) cannot finish before its link has moved them. The
 * busiest rank's bandwidth is that bound's figure: it equals busbw under
 * the uniform pattern, so a skewed pattern whose busiest bw matches a
 * uniform run of the same busiest bytes loses nothing to the skew beyond
 * the busiest rank's extra bytes.
 */
#include "perf_internal.h"

#include <errno.h>
#include <math.h>
#include <string.h>

static const char *const aggregate_names[] = {[PERF_AGG_RANK0] = "rank 0",
                                              [PERF_AGG_AVG] = "average",
                                              [PERF_AGG_MIN] = "min",
                                              [PERF_AGG_MAX] = "max"};

/* 67108864 -> "64 MiB"; sizes that are not whole KiB stay in bytes. */
static void format_size(size_t bytes, char *text, size_t len)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB"};
    int u = 0;
    while (u < 3 && bytes >= 1024 && bytes % 1024 == 0) {
        bytes /= 1024;
        u++;
    }
    snprintf(text, len, "%zu %s", bytes, units[u]);
}

/* @p text as a JSON string, quoted and escaped. */
static void json_string(FILE *f, const char *text)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)text; *p != '\0'; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p < 0x20)
            fprintf(f, "\\u%04x", *p);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}

/* A number as JSON has them (no inf or NaN: null). */
static void json_number(FILE *f, double v)
{
    if (isfinite(v))
        fprintf(f, "%.17g", v);
    else
        fputs("null", f);
}

/* The comma list of the types (or ops) the run covers. */
static void list_text(const perf_opts_t *o, int ops, char *text, size_t len)
{
    text[0] = '\0';
    for (int k = 0; k < (ops ? o->nops : o->ndtypes); k++)
        snprintf(text + strlen(text), len - strlen(text), "%s%s", k ? "," : "",
                 ops ? perf_op_name(o->op_list[k]) : perf_dtype_name(o->dtype_list[k]));
}

/* The traffic pattern and the parameters it uses. */
static void json_pattern(FILE *f, const perf_pattern_opts_t *p)
{
    fputs(",\n  \"pattern\": {\"name\": ", f);
    json_string(f, perf_pattern_name(p->pattern));
    if (p->pattern != PERF_PATTERN_UNIFORM)
        fprintf(f, ", \"seed\": %llu", (unsigned long long)p->seed);
    if (p->pattern == PERF_PATTERN_MOE) {
        fprintf(f, ", \"experts\": %d, \"topk\": %d, \"zipf\": ", p->experts, p->topk);
        json_number(f, p->zipf);
        fprintf(f, ", \"tokens\": %ld", p->tokens);
    }
    fputc('}', f);
}

static int json_begin(perf_run_t *run, const char *library)
{
    const perf_opts_t *o = run->opts;
    FILE *f = fopen(o->json_path, "w");

    if (f == NULL) {
        fprintf(stderr, "%s: cannot write %s: %s\n", run->be->program, o->json_path,
                strerror(errno));
        return -1;
    }
    run->json = f;
    fputs("{\n  \"program\": ", f);
    json_string(f, run->be->program);
    fputs(",\n  \"library\": ", f);
    json_string(f, library);
    fputs(",\n  \"collective\": ", f);
    json_string(f, o->coll->name);
    fprintf(f,
            ",\n  \"nranks\": %d,\n  \"iters\": %ld,\n  \"warmup_iters\": %ld,\n"
            "  \"check\": %s,\n  \"blocking\": %s,\n  \"time_aggregate\": ",
            run->nranks, o->iters, o->warmup, o->check ? "true" : "false",
            o->blocking ? "true" : "false");
    json_string(f, aggregate_names[o->aggregate]);
    fputs(",\n  \"busbw_factor\": ", f);
    json_number(f, o->coll->busbw_factor(run->nranks));
    if (o->coll->has_pattern)
        json_pattern(f, &o->pattern);
    fputs(",\n  \"rows\": [", f);
    return 0;
}

/* The type column: none for a collective without data. */
static const char *type_text(const perf_run_t *run)
{
    return run->opts->coll->has_size ? perf_dtype_name(run->dtype) : "none";
}

/* The fields every row has: size, count, type, op, root. */
static void json_row_start(perf_run_t *run, size_t bytes, size_t count)
{
    const perf_coll_t *coll = run->opts->coll;
    FILE *f = run->json;

    fprintf(f, "%s\n    {\"size\": %zu, \"count\": %zu, \"type\": ", run->json_rows++ ? "," : "",
            bytes, count);
    json_string(f, type_text(run));
    fputs(", \"redop\": ", f);
    if (coll->has_op)
        json_string(f, perf_op_name(run->op));
    else
        fputs("null", f);
    fprintf(f, ", \"root\": %d", coll->has_root ? run->opts->root : -1);
}

/* The header's lines and columns for the busiest rank (traffic patterns only). */
static void pattern_header(const perf_run_t *run)
{
    char text[256];

    perf_pattern_text(&run->opts->pattern, run->nranks, text, sizeof(text));
    printf("# pattern %s\n", text);
    printf("# busiest = the most bytes one rank sends to or receives from the other ranks;"
           " busiest bw = busiest / time\n");
}

int perf_report_begin(perf_run_t *run, const char *library)
{
    const perf_opts_t *o = run->opts;
    char types[128], ops[64], step[48], lo[32], hi[32];

    if (o->json_path != NULL && json_begin(run, library) != 0)
        return -1;
    list_text(o, 0, types, sizeof(types));
    list_text(o, 1, ops, sizeof(ops));
    if (o->step_bytes > 0) {
        format_size(o->step_bytes, lo, sizeof(lo));
        snprintf(step, sizeof(step), "step %s", lo);
    } else
        snprintf(step, sizeof(step), "factor %zu", o->factor);

    printf("# %s %s: %d ranks", run->be->program, o->coll->name, run->nranks);
    if (o->coll->has_size)
        printf(", datatype %s", types);
    if (o->coll->has_op)
        printf(", op %s", ops);
    printf(", %ld iterations after %ld warm-up, %s calls, check %s\n", o->iters, o->warmup,
           o->blocking ? "blocking" : "nonblocking", o->check ? "on" : "off");
    printf("# library: %s\n", library);
    format_size(o->min_bytes, lo, sizeof(lo));
    format_size(o->max_bytes, hi, sizeof(hi));
    if (o->coll->has_size)
        printf("# sizes %s to %s, %s; ", lo, hi, step);
    else
        printf("# ");
    printf("time: mean per call over iterations, %s over ranks; busbw = algbw * %s\n",
           aggregate_names[o->aggregate], o->coll->busbw_text);
    if (o->coll->has_pattern)
        pattern_header(run);
    printf("#\n");
    /* The group labels sit over their four columns (the row prefix is 49 wide). */
    printf("#%48s%-37s", "", "  ---------- out-of-place ---------");
    if (o->coll->has_pattern)
        printf("%-37s%s\n", "  ------------ in-place -----------",
               "  -------- busiest rank --------");
    else
        printf("%s\n", "  ------------ in-place -----------");
    printf("# %10s %12s %8s %6s %5s  %10s %8s %8s %6s  %10s %8s %8s %6s", "size", "count", "type",
           "redop", "root", "time", "algbw", "busbw", "#wrong", "time", "algbw", "busbw", "#wrong");
    if (o->coll->has_pattern)
        printf("  %12s %8s %8s", "bytes", "oop-bw", "ip-bw");
    printf("\n# %10s %12s %8s %6s %5s  %10s %8s %8s %6s  %10s %8s %8s %6s", "(B)", "(elements)", "",
           "", "", "(us)", "(GB/s)", "(GB/s)", "", "(us)", "(GB/s)", "(GB/s)", "");
    if (o->coll->has_pattern)
        printf("  %12s %8s %8s", "(B)", "(GB/s)", "(GB/s)");
    printf("\n");
    fflush(stdout);
    return 0;
}

/* The row's first five columns. */
static void print_prefix(const perf_run_t *run, size_t bytes, size_t count)
{
    const perf_coll_t *coll = run->opts->coll;
    printf("  %10zu %12zu %8s %6s %5d  ", bytes, count, type_text(run),
           coll->has_op ? perf_op_name(run->op) : "none", coll->has_root ? run->opts->root : -1);
}

/* @p bytes in @p us microseconds, in GB/s (B/us = MB/s). */
static double gbps(size_t bytes, double us)
{
    return us > 0 ? (double)bytes / us * 1e-3 : 0;
}

/* One placement's figures in the JSON file (@p p: 0 out of place, 1 in place). */
static void json_placement(perf_run_t *run, const perf_row_t *row, int p, double factor)
{
    static const char *const placements[] = {"out_of_place", "in_place"};
    double algbw = gbps(row->bytes, row->time_us[p]);
    FILE *f = run->json;

    fprintf(f, ", \"%s\": {\"time_us\": ", placements[p]);
    json_number(f, row->time_us[p]);
    fputs(", \"algbw_gbps\": ", f);
    json_number(f, algbw);
    fputs(", \"busbw_gbps\": ", f);
    json_number(f, algbw * factor);
    if (run->opts->coll->has_pattern) {
        fputs(", \"busiest_bw_gbps\": ", f);
        json_number(f, gbps(row->busiest_bytes, row->time_us[p]));
    }
    fputs(", \"wrong\": ", f);
    if (run->opts->check)
        json_number(f, row->wrong[p]);
    else
        fputs("null", f);
    fputc('}', f);
}

void perf_report_row(perf_run_t *run, const perf_row_t *row)
{
    const perf_opts_t *o = run->opts;
    double factor = o->coll->busbw_factor(run->nranks);

    print_prefix(run, row->bytes, row->count);
    if (run->json != NULL) {
        json_row_start(run, row->bytes, row->count);
        if (o->coll->has_pattern)
            fprintf(run->json, ", \"busiest_bytes\": %zu", row->busiest_bytes);
    }
    for (int p = 0; p < 2; p++) {
        double algbw = gbps(row->bytes, row->time_us[p]);
        char wrong[24] = "N/A";

        if (o->check)
            snprintf(wrong, sizeof(wrong), "%.0f", row->wrong[p]);
        run->busbw_sum += algbw * factor;
        run->busiest_bw_sum += gbps(row->busiest_bytes, row->time_us[p]);
        run->busbw_rows++;
        printf("%s%10.2f %8.3f %8.3f %6s", p ? "  " : "", row->time_us[p], algbw, algbw * factor,
               wrong);
        if (run->json != NULL)
            json_placement(run, row, p, factor);
    }
    if (o->coll->has_pattern)
        printf("  %12zu %8.3f %8.3f", row->busiest_bytes, gbps(row->busiest_bytes, row->time_us[0]),
               gbps(row->busiest_bytes, row->time_us[1]));
    printf("\n");
    if (run->json != NULL)
        fputc('}', run->json);
    fflush(stdout);
}

void perf_report_unsupported(perf_run_t *run, size_t bytes, size_t count)
{
    print_prefix(run, bytes, count);
    printf("unsupported by this library: skipped\n");
    fflush(stdout);
    if (run->json != NULL) {
        json_row_start(run, bytes, count);
        fputs(", \"unsupported\": true}", run->json);
    }
}

int perf_report_end(perf_run_t *run)
{
    double avg = run->busbw_rows > 0 ? run->busbw_sum / (double)run->busbw_rows : 0.0;
    double avg_busiest = run->busbw_rows > 0 ? run->busiest_bw_sum / (double)run->busbw_rows : 0.0;
    int status = 0;

    if (run->opts->check)
        printf("# Out of bounds values : %.0f %s\n", run->wrong_total,
               run->wrong_total == 0 ? "OK" : "FAILED");
    else
        printf("# Out of bounds values : not checked (-c 0)\n");
    printf("# Avg bus bandwidth    : %.3f\n", avg);
    if (run->opts->coll->has_pattern)
        printf("# Avg busiest bw       : %.3f\n", avg_busiest);
    printf("#\n");
    fflush(stdout);
    if (run->json != NULL) {
        fputs("\n  ],\n  \"wrong_total\": ", run->json);
        if (run->opts->check)
            json_number(run->json, run->wrong_total);
        else
            fputs("null", run->json);
        fputs(",\n  \"avg_busbw_gbps\": ", run->json);
        json_number(run->json, avg);
        if (run->opts->coll->has_pattern) {
            fputs(",\n  \"avg_busiest_bw_gbps\": ", run->json);
            json_number(run->json, avg_busiest);
        }
        fputs("\n}\n", run->json);
        if (ferror(run->json) | fclose(run->json)) {
            fprintf(stderr, "%s: writing %s failed\n", run->be->program, run->opts->json_path);
            status = -1;
        }
        run->json = NULL;
    }
    return status;
}
