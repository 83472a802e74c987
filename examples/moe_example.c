/*
 * One Mixture-of-Experts layer's communication with tutti, end to end.
 *
 * Every rank holds some tokens (vectors of `hidden` floats) and a router's
 * choice of top-k experts for each, with weights. The experts are spread
 * evenly over the ranks: rank r hosts experts r*L .. r*L+L-1 (L per rank),
 * its local experts 0 .. L-1. One layer is:
 *   1. tutti_moe_layout_create: the ranks exchange the routing (collective);
 *   2. tutti_moe_dispatch: every token goes to the ranks of its experts;
 *   3. each rank runs its local experts on the rows it received: here a toy
 *      expert that multiplies its input by (1 + its local id);
 *   4. tutti_moe_combine: the outputs come back, summed with the weights.
 * The program then checks each token against what the toy experts must
 * give, and prints a summary.
 *
 *   tutti-run -n 4 ./moe_example [tokens [hidden [experts_per_rank [top_k]]]]
 */
#include <tutti.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* A small deterministic random generator (xorshift64*), seeded per rank. */
static uint64_t next_random(uint64_t *state)
{
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    return *state * 0x2545f4914f6cdd1dull;
}

static int fail(const char *what, tutti_status_t status)
{
    fprintf(stderr, "moe_example: %s: %s\n", what, tutti_status_string(status));
    return 1;
}

int main(int argc, char **argv)
{
    size_t tokens = argc > 1 ? strtoul(argv[1], NULL, 10) : 64;
    size_t hidden = argc > 2 ? strtoul(argv[2], NULL, 10) : 16;
    int per_rank = argc > 3 ? atoi(argv[3]) : 2;
    int top_k = argc > 4 ? atoi(argv[4]) : 2;
    int rank, nranks, num_experts, status = 0;
    uint64_t state;
    tutti_comm_t comm;
    tutti_moe_layout_t layout;
    tutti_status_t s;
    size_t rows, row = 0, *expert_rows, *sent;
    int32_t *experts;
    float *weights, *x, *expert_buf, *y;
    double worst = 0.0;

    /* The launcher (tutti-run, torchrun, mpirun, Slurm) says who we are. */
    if ((s = tutti_comm_init_env(NULL, &comm)) != TUTTI_OK)
        return fail("tutti_comm_init_env", s);
    tutti_comm_rank(comm, &rank);
    tutti_comm_size(comm, &nranks);
    num_experts = per_rank * nranks;
    if (per_rank < 1 || top_k < 1 || top_k > num_experts) {
        fprintf(stderr, "moe_example: need 1 <= top_k <= experts (%d)\n", num_experts);
        tutti_comm_destroy(comm);
        return 2;
    }

    /*
     * The router's output: top_k distinct experts per token, with positive
     * weights summing to 1. Ranks hold different numbers of tokens.
     */
    state = 0x9e3779b97f4a7c15ull * (uint64_t)(rank + 1);
    tokens += (size_t)rank % 3;
    experts = malloc(tokens * (size_t)top_k * sizeof(*experts) + 1);
    weights = malloc(tokens * (size_t)top_k * sizeof(*weights) + 1);
    x = malloc(tokens * hidden * sizeof(*x) + 1);
    y = malloc(tokens * hidden * sizeof(*y) + 1);
    for (size_t t = 0; t < tokens; t++) {
        int32_t *ids = experts + t * (size_t)top_k;
        float *w = weights + t * (size_t)top_k, sum = 0.0f;
        for (int k = 0; k < top_k; k++) {
            int dup;
            do { /* draw until the id is new for this token */
                ids[k] = (int32_t)(next_random(&state) % (uint64_t)num_experts);
                dup = 0;
                for (int j = 0; j < k; j++)
                    dup |= ids[j] == ids[k];
            } while (dup);
            w[k] = 1.0f + (float)(next_random(&state) % 8);
            sum += w[k];
        }
        for (int k = 0; k < top_k; k++)
            w[k] /= sum;
        for (size_t h = 0; h < hidden; h++)
            x[t * hidden + h] = (float)(next_random(&state) % 1000) / 100.0f - 5.0f;
    }

    /* 1. The layout: who sends what where. Collective. */
    s = tutti_moe_layout_create(tokens, top_k, experts, weights, num_experts, comm, &layout);
    if (s != TUTTI_OK)
        return fail("tutti_moe_layout_create", s);
    expert_rows = malloc((size_t)per_rank * sizeof(*expert_rows));
    sent = malloc((size_t)nranks * sizeof(*sent));
    tutti_moe_layout_rows(layout, &rows, expert_rows);
    tutti_moe_layout_sent(layout, sent);

    /* 2. Dispatch into one buffer for all local experts, grouped by expert. */
    expert_buf = malloc(rows * hidden * sizeof(*expert_buf) + 1);
    if ((s = tutti_moe_dispatch(layout, x, hidden, TUTTI_FP32, expert_buf)) != TUTTI_OK)
        return fail("tutti_moe_dispatch", s);

    /* 3. The experts, in place: local expert e's rows follow expert e-1's. */
    for (int e = 0; e < per_rank; e++)
        for (size_t r = 0; r < expert_rows[e]; r++, row++)
            for (size_t h = 0; h < hidden; h++)
                expert_buf[row * hidden + h] *= (float)(1 + e);

    /* 4. Combine: every token gets sum over its experts of weight x output. */
    if ((s = tutti_moe_combine(layout, expert_buf, hidden, TUTTI_FP32, y)) != TUTTI_OK)
        return fail("tutti_moe_combine", s);

    /* Check: token t must come back as x[t] * sum_k w_k (1 + local id of e_k). */
    for (size_t t = 0; t < tokens; t++) {
        double scale = 0.0;
        for (int k = 0; k < top_k; k++)
            scale += weights[t * (size_t)top_k + (size_t)k] *
                     (1 + experts[t * (size_t)top_k + (size_t)k] % per_rank);
        for (size_t h = 0; h < hidden; h++) {
            double want = x[t * hidden + h] * scale, got = y[t * hidden + h];
            double err = fabs(got - want) / (fabs(want) + 1e-6);
            if (err > worst)
                worst = err;
        }
    }
    if (worst > 1e-5)
        status = 1;
    printf("rank %d: %zu tokens, sent %zu", rank, tokens, sent[0]);
    for (int r = 1; r < nranks; r++)
        printf("/%zu", sent[r]);
    printf(" to ranks 0..%d, received %zu rows (", nranks - 1, rows);
    for (int e = 0; e < per_rank; e++)
        printf("%s%zu", e ? "/" : "", expert_rows[e]);
    printf(" per local expert), worst relative error %.2g: %s\n", worst,
           status == 0 ? "OK" : "WRONG");

    tutti_moe_layout_destroy(layout);
    free(expert_buf);
    free(expert_rows);
    free(sent);
    free(experts);
    free(weights);
    free(x);
    free(y);
    if ((s = tutti_comm_destroy(comm)) != TUTTI_OK)
        return fail("tutti_comm_destroy", s);
    return status;
}
