/*
 * One tutti communicator per MPI communicator, kept as an attribute of it:
 * MPI_COMM_WORLD's is made in MPI_Init, the others at the first served
 * blocking collective (creating one is collective, and a nonblocking call
 * must not block). A duplicate or split of a communicator gets its own
 * (the attribute is not copied). Freeing the MPI communicator destroys the
 * tutti one; MPI_Finalize destroys those still alive, oldest first.
 *
 * Creating: rank 0 makes a unique id (on loopback when every rank runs in
 * this host's network namespace, else on its first network interface unless
 * TUTTI_BOOTSTRAP_ADDR says otherwise), broadcasts it with PMPI_Bcast, and
 * every rank joins. If any rank fails, all of them drop theirs and the MPI
 * communicator falls back for good.
 */
#include "tutti_mpi.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* What the attribute holds. */
typedef struct served_comm {
    tutti_comm_t comm;        /* NULL: this MPI communicator falls back */
    MPI_Comm mpi;             /* the MPI communicator, for MPI_Finalize */
    struct served_comm *next; /* live tutti communicators, oldest first */
} served_comm_t;

static int keyval = MPI_KEYVAL_INVALID;
static int enabled;
static pthread_mutex_t live_lock = PTHREAD_MUTEX_INITIALIZER;
static served_comm_t *live;

static void live_add(served_comm_t *s)
{
    served_comm_t **at;
    pthread_mutex_lock(&live_lock);
    for (at = &live; *at != NULL; at = &(*at)->next)
        ;
    *at = s;
    pthread_mutex_unlock(&live_lock);
}

static void live_remove(served_comm_t *s)
{
    pthread_mutex_lock(&live_lock);
    for (served_comm_t **at = &live; *at != NULL; at = &(*at)->next)
        if (*at == s) {
            *at = s->next;
            break;
        }
    pthread_mutex_unlock(&live_lock);
}

/* The attribute's delete callback: MPI_Comm_free, or MPI_Finalize through tm_comm_stop. */
static int delete_served(MPI_Comm comm, int key, void *value, void *extra)
{
    served_comm_t *s = value;
    (void)key, (void)extra;
    if (s->comm != NULL) {
        live_remove(s);
        tm_requests_drain(comm); /* MPI lets a communicator be freed with calls in flight */
        tutti_comm_destroy(s->comm);
    }
    free(s);
    return MPI_SUCCESS;
}

/* FNV-1a over @p len bytes, continuing from @p h. */
static uint64_t fnv1a(uint64_t h, const void *data, size_t len)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

/* This kernel and network namespace: ranks with equal keys reach each other on loopback. */
static uint64_t host_key(void)
{
    uint64_t h = 0xcbf29ce484222325ull;
    char boot[64] = "";
    struct stat st;
    FILE *f = fopen("/proc/sys/kernel/random/boot_id", "r");

    if (f != NULL) {
        if (fgets(boot, sizeof(boot), f) == NULL)
            boot[0] = '\0';
        fclose(f);
    }
    h = fnv1a(h, boot, strlen(boot));
    if (stat("/proc/self/ns/net", &st) == 0)
        h = fnv1a(h, &st.st_ino, sizeof(st.st_ino));
    return h;
}

/* Do the ranks of @p comm run in more than one host (network namespace)? Collective. */
static int spans_hosts(MPI_Comm comm)
{
    uint64_t key = host_key(), mine[2] = {key, ~key}, least[2];
    PMPI_Allreduce(mine, least, 2, MPI_UINT64_T, MPI_MIN, comm);
    return least[0] != ~least[1]; /* the least key differs from the greatest */
}

/* The IPv4 address of this host's first network interface that is up, not loopback. */
static int first_interface_address(char *out, size_t out_len)
{
    struct ifaddrs *all, *i;
    int found = 0;

    if (getifaddrs(&all) != 0)
        return 0;
    for (i = all; i != NULL && !found; i = i->ifa_next)
        if (i->ifa_addr != NULL && i->ifa_addr->sa_family == AF_INET && (i->ifa_flags & IFF_UP) &&
            !(i->ifa_flags & IFF_LOOPBACK))
            found = inet_ntop(AF_INET, &((struct sockaddr_in *)i->ifa_addr)->sin_addr, out,
                              (socklen_t)out_len) != NULL;
    freeifaddrs(all);
    return found;
}

/* Rank 0's unique id, reachable from every rank of the communicator. */
static tutti_status_t make_id(int spans, tutti_unique_id_t *id)
{
    char addr[INET_ADDRSTRLEN + 2];
    tutti_config_t config;
    tutti_status_t status;

    if (!spans || getenv("TUTTI_BOOTSTRAP_ADDR") != NULL)
        return tutti_get_unique_id(id);
    if (!first_interface_address(addr, sizeof(addr) - 2))
        return TUTTI_ERR_NOT_FOUND;
    strcat(addr, ":0");
    status = tutti_config_create(&config);
    if (status != TUTTI_OK)
        return status;
    status = tutti_config_set(config, "TUTTI_BOOTSTRAP_ADDR", addr);
    if (status == TUTTI_OK)
        status = tutti_get_unique_id_config(config, id);
    tutti_config_destroy(config);
    return status;
}

/* A tutti communicator for @p comm, or NULL on every rank if any rank failed. Collective. */
static tutti_comm_t create(MPI_Comm comm)
{
    struct {
        int status;
        tutti_unique_id_t id;
    } root;
    int rank, size, ok, all_ok;
    int spans = spans_hosts(comm);
    tutti_comm_t tc = NULL;

    PMPI_Comm_rank(comm, &rank);
    PMPI_Comm_size(comm, &size);
    memset(&root, 0, sizeof(root));
    if (rank == 0)
        root.status = make_id(spans, &root.id);
    PMPI_Bcast(&root, (int)sizeof(root), MPI_BYTE, 0, comm);
    ok = root.status == TUTTI_OK && tutti_comm_init(size, rank, &root.id, NULL, &tc) == TUTTI_OK;
    PMPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_MIN, comm);
    if (!all_ok) {
        if (tc != NULL)
            tutti_comm_abort(tc);
        if (rank == 0)
            fprintf(stderr,
                    "tutti-mpi: no tutti communicator for a communicator of %d ranks (%s); "
                    "its collectives fall back to MPI's\n",
                    size, tutti_status_string((tutti_status_t)root.status));
        return NULL;
    }
    return tc;
}

tutti_comm_t tm_comm_get(MPI_Comm comm, int may_create)
{
    served_comm_t *s;
    int found = 0, inter = 1;

    if (!enabled || comm == MPI_COMM_NULL)
        return NULL;
    if (PMPI_Comm_get_attr(comm, keyval, &s, &found) != MPI_SUCCESS)
        return NULL;
    if (found)
        return s->comm;
    if (!may_create || (s = calloc(1, sizeof(*s))) == NULL)
        return NULL;
    s->mpi = comm;
    if (PMPI_Comm_test_inter(comm, &inter) == MPI_SUCCESS && !inter)
        s->comm = create(comm);
    if (s->comm != NULL)
        live_add(s);
    PMPI_Comm_set_attr(comm, keyval, s);
    return s->comm;
}

void tm_comm_start(void)
{
    const char *mode = getenv("TUTTI_MPI");

    enabled = mode == NULL ||
              !(strcmp(mode, "off") == 0 || strcmp(mode, "0") == 0 || strcmp(mode, "no") == 0);
    if (!enabled || PMPI_Comm_create_keyval(MPI_COMM_NULL_COPY_FN, delete_served, &keyval, NULL) !=
                        MPI_SUCCESS) {
        enabled = 0;
        return;
    }
    tm_comm_get(MPI_COMM_WORLD, 1);
}

void tm_comm_stop(void)
{
    served_comm_t *s;

    if (keyval == MPI_KEYVAL_INVALID)
        return;
    /* Nobody is inside a collective any more once everyone is here. */
    PMPI_Barrier(MPI_COMM_WORLD);
    while ((s = live) != NULL)
        if (PMPI_Comm_delete_attr(s->mpi, keyval) != MPI_SUCCESS) { /* else it unlinked itself */
            live_remove(s);
            tutti_comm_destroy(s->comm);
        }
    PMPI_Comm_free_keyval(&keyval);
    enabled = 0;
}

TM_EXPORT int MPI_Init(int *argc, char ***argv)
{
    int rc = PMPI_Init(argc, argv);
    if (rc == MPI_SUCCESS)
        tm_comm_start();
    return rc;
}

TM_EXPORT int MPI_Init_thread(int *argc, char ***argv, int required, int *provided)
{
    int rc = PMPI_Init_thread(argc, argv, required, provided);
    if (rc == MPI_SUCCESS)
        tm_comm_start();
    return rc;
}

TM_EXPORT int MPI_Finalize(void)
{
    tm_stats_report();
    tm_comm_stop();
    return PMPI_Finalize();
}
