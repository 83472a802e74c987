/* The first communicator: from a unique id, or from the launcher's environment. */
#include "config.h"

#include "api/launch.h"

#include "api/comm.h"
#include "api/settings.h"
#include "util/log.h"
#include "util/sha256.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(sizeof(tt_bootstrap_id_t) <= TUTTI_UNIQUE_ID_BYTES,
               "the bootstrap id must fit in a tutti_unique_id_t");

static const tt_config_field_t launch_fields[] = {
    {"RANK", "",
     "this process's rank for tutti_comm_init_env (else RANK, OMPI_COMM_WORLD_RANK, "
     "PMI_RANK, SLURM_PROCID)",
     TT_CFG_STRING, offsetof(tt_launch_settings_t, rank), NULL, 0},
    {"NRANKS", "",
     "number of ranks for tutti_comm_init_env (else WORLD_SIZE, "
     "OMPI_COMM_WORLD_SIZE, PMI_SIZE, SLURM_NTASKS)",
     TT_CFG_STRING, offsetof(tt_launch_settings_t, nranks), NULL, 0},
    {"ADDR", "", "rendezvous host:port served by rank 0 (else MASTER_ADDR:MASTER_PORT)",
     TT_CFG_STRING, offsetof(tt_launch_settings_t, address), NULL, 0},
    {"SECRET", "", "job secret authenticating every rendezvous connection (tutti-run sets one)",
     TT_CFG_STRING, offsetof(tt_launch_settings_t, secret), NULL, 1},
};

const tt_config_table_t tt_launch_config_table = {
    "launch", launch_fields, TT_ARRAY_SIZE(launch_fields), sizeof(tt_launch_settings_t)};

/* Where other launchers put the rank and size, in the order tutti looks. */
static const char *const foreign_rank_vars[] = {"RANK",      "OMPI_COMM_WORLD_RANK", "PMI_RANK",
                                                "PMIX_RANK", "SLURM_PROCID",         NULL};
static const char *const foreign_size_vars[] = {"WORLD_SIZE", "OMPI_COMM_WORLD_SIZE", "PMI_SIZE",
                                                "SLURM_NTASKS", NULL};
/* Job identifiers that make a derived secret differ between jobs. */
static const char *const foreign_job_vars[] = {"TORCHELASTIC_RUN_ID", "SLURM_JOB_ID",
                                               "OMPI_MCA_ess_base_jobid", "PMIX_NAMESPACE", NULL};

static uint64_t world_ctx(const tt_bootstrap_id_t *id)
{
    unsigned char digest[TT_SHA256_BYTES];
    uint64_t ctx;
    tt_sha256_t hash;
    tt_sha256_init(&hash);
    tt_sha256_update(&hash, "world", 5);
    tt_sha256_update(&hash, id->secret, sizeof(id->secret));
    tt_sha256_final(&hash, digest);
    memcpy(&ctx, digest, sizeof(ctx));
    return ctx;
}

tutti_status_t tutti_get_unique_id(tutti_unique_id_t *id_p)
{
    return tutti_get_unique_id_config(NULL, id_p);
}

tutti_status_t tutti_get_unique_id_config(tutti_config_t config, tutti_unique_id_t *id_p)
{
    tt_bootstrap_settings_t settings;
    tt_bootstrap_id_t id;

    if (id_p == NULL)
        return TUTTI_ERR_INVALID_ARG;
    TT_CHECK(tt_config_load(&tt_bootstrap_config_table, config != NULL ? &config->overrides : NULL,
                            &settings));
    TT_CHECK(tt_bootstrap_id_create(settings.address, &id));
    memset(id_p, 0, sizeof(*id_p));
    memcpy(id_p->bytes, &id, sizeof(id));
    return TUTTI_OK;
}

static tutti_status_t init_from_id(int nranks, int rank, const tt_bootstrap_id_t *id,
                                   const tt_config_overrides_t *overrides, tutti_comm_t *comm_p)
{
    tt_bootstrap_settings_t bs_settings;
    tt_engine_settings_t exec;
    tt_bootstrap_t *bs;
    int *session_ranks;

    TT_CHECK(tt_settings_validate(overrides));
    TT_CHECK(tt_log_configure(overrides));
    tt_log_set_rank(rank);
    TT_CHECK(tt_config_load(&tt_bootstrap_config_table, overrides, &bs_settings));
    TT_CHECK(tt_config_load(&tt_engine_config_table, overrides, &exec));
    session_ranks = malloc((size_t)nranks * sizeof(int));
    if (session_ranks == NULL)
        return TUTTI_ERR_NO_MEMORY;
    for (int r = 0; r < nranks; r++)
        session_ranks[r] = r;
    {
        tutti_status_t status =
            tt_bootstrap_open(id, rank, nranks, &bs_settings, exec.failure_timeout_ns, &bs);
        if (status != TUTTI_OK) {
            free(session_ranks);
            return status;
        }
    }
    return tt_comm_create(bs, rank, nranks, session_ranks, world_ctx(id), overrides, comm_p);
}

tutti_status_t tutti_comm_init(int nranks, int rank, const tutti_unique_id_t *id,
                               tutti_config_t config, tutti_comm_t *comm_p)
{
    tt_bootstrap_id_t bid;

    if (id == NULL || comm_p == NULL || nranks < 1 || rank < 0 || rank >= nranks) {
        tt_error("tutti_comm_init: need an id, a result pointer and 0 <= rank (%d) < nranks (%d)",
                 rank, nranks);
        return TUTTI_ERR_INVALID_ARG;
    }
    memcpy(&bid, id->bytes, sizeof(bid));
    return init_from_id(nranks, rank, &bid, config != NULL ? &config->overrides : NULL, comm_p);
}

/* The first of @p names set in the environment, or NULL. */
static const char *first_env(const char *const *names, const char **which_p)
{
    for (int i = 0; names[i] != NULL; i++) {
        const char *value = getenv(names[i]);
        if (value != NULL && value[0] != '\0') {
            *which_p = names[i];
            return value;
        }
    }
    return NULL;
}

static tutti_status_t parse_int(const char *text, const char *what, const char *source,
                                int *value_p)
{
    char *end;
    long value;
    errno = 0;
    value = text != NULL ? strtol(text, &end, 10) : -1;
    if (text == NULL || errno != 0 || *end != '\0' || value < 0 || value > 1 << 30) {
        if (text == NULL)
            tt_error("tutti_comm_init_env: no %s in the environment (set TUTTI_%s, or run under "
                     "tutti-run, torchrun, mpirun or srun)",
                     what, strcmp(what, "rank") == 0 ? "RANK" : "NRANKS");
        else
            tt_error("tutti_comm_init_env: %s='%s' is not a valid %s", source, text, what);
        return TUTTI_ERR_INVALID_ARG;
    }
    *value_p = (int)value;
    return TUTTI_OK;
}

/* The secret when none is given: the same on every rank of one job, different between jobs. */
static void derive_secret(const char *address, int nranks, unsigned char out[TT_SHA256_BYTES])
{
    const char *which = NULL, *job = first_env(foreign_job_vars, &which);
    tt_sha256_t hash;

    tt_sha256_init(&hash);
    tt_sha256_update(&hash, "tutti-derived-secret", 20);
    tt_sha256_update(&hash, address, strlen(address));
    tt_sha256_update(&hash, &nranks, sizeof(nranks));
    if (job != NULL)
        tt_sha256_update(&hash, job, strlen(job));
    tt_sha256_final(&hash, out);
    tt_info("no TUTTI_SECRET: using one derived from the address, size%s%s (keeps strangers "
            "out, but is not secret)",
            job != NULL ? " and " : "", job != NULL ? which : "");
}

tutti_status_t tutti_comm_init_env(tutti_config_t config, tutti_comm_t *comm_p)
{
    const tt_config_overrides_t *overrides = config != NULL ? &config->overrides : NULL;
    tt_launch_settings_t launch;
    const char *source = "TUTTI_RANK", *text, *master_addr, *master_port;
    char address[TT_CONFIG_STRING_MAX + 16];
    unsigned char derived[TT_SHA256_BYTES];
    tt_bootstrap_id_t id;
    int rank, nranks;

    if (comm_p == NULL)
        return TUTTI_ERR_INVALID_ARG;
    TT_CHECK(tt_config_load(&tt_launch_config_table, overrides, &launch));
    text = launch.rank[0] != '\0' ? launch.rank : first_env(foreign_rank_vars, &source);
    TT_CHECK(parse_int(text, "rank", source, &rank));
    source = "TUTTI_NRANKS";
    text = launch.nranks[0] != '\0' ? launch.nranks : first_env(foreign_size_vars, &source);
    TT_CHECK(parse_int(text, "number of ranks", source, &nranks));
    if (nranks < 1 || rank >= nranks) {
        tt_error("tutti_comm_init_env: rank %d is not below the number of ranks %d", rank, nranks);
        return TUTTI_ERR_INVALID_ARG;
    }
    master_addr = getenv("MASTER_ADDR");
    master_port = getenv("MASTER_PORT");
    if (launch.address[0] != '\0') {
        snprintf(address, sizeof(address), "%s", launch.address);
    } else if (master_addr != NULL && master_port != NULL) {
        snprintf(address, sizeof(address), strchr(master_addr, ':') ? "[%s]:%s" : "%s:%s",
                 master_addr, master_port);
    } else {
        tt_error("tutti_comm_init_env: no rendezvous address (set TUTTI_ADDR=host:port, or "
                 "MASTER_ADDR and MASTER_PORT)");
        return TUTTI_ERR_INVALID_ARG;
    }
    if (launch.secret[0] != '\0') {
        TT_CHECK(tt_bootstrap_id_init(address, launch.secret, strlen(launch.secret), &id));
    } else {
        derive_secret(address, nranks, derived);
        TT_CHECK(tt_bootstrap_id_init(address, derived, sizeof(derived), &id));
    }
    return init_from_id(nranks, rank, &id, overrides, comm_p);
}
