/*
 * Unit tests of src/topo discovery: hwloc XML fixtures of machines we do not
 * have (a dual-socket host with 8 InfiniBand NICs and 8 GPUs, a 2-NUMA
 * server, a small single-socket machine, and hwloc's own test machines),
 * the slice rule, NIC spreading, dump and reload, bad files, and the live
 * machine. Fixtures are found under $TOP_SRCDIR/tests/fixtures/topo (set by
 * the Makefile), else under tests/fixtures/topo from the current directory.
 */
#include "config.h"

#include "tests/lib/unit.h"
#include "topo/topo.h"

#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define DGX "dgx-like-2s-8nic-8gpu.xml"
#define TWO_NUMA "2numa-2nic.xml"
#define SMALL "small-1socket.xml"
#define HWLOC_24 "24em64t-2n6c2t-pci.xml"
#define HWLOC_32 "32em64t-2n8c2t-pci-wholeio.xml"
#define HWLOC_96 "96em64t-4n4d3ca2co-pci.xml"

START_TEST(config_table)
{
    tt_topo_settings_t settings;
    ck_assert_str_eq(tt_topo_config_table.module, "topo");
    ck_assert_uint_eq(tt_topo_config_table.nfields, 3);
    ck_assert_str_eq(tt_topo_config_table.fields[0].name, "TOPO_FILE");
    ck_assert_str_eq(tt_topo_config_table.fields[1].name, "TOPO_DUMP_FILE");
    ck_assert_str_eq(tt_topo_config_table.fields[2].name, "RAILS");
    unsetenv("TUTTI_TOPO_FILE");
    setenv("TUTTI_TOPO_DUMP_FILE", "/x/%h.xml", 1);
    setenv("TUTTI_RAILS", "rail0,rail1", 1);
    ck_assert_int_eq(tt_config_load(&tt_topo_config_table, NULL, &settings), TUTTI_OK);
    ck_assert_str_eq(settings.file, "");
    ck_assert_str_eq(settings.dump_file, "/x/%h.xml");
    ck_assert_str_eq(settings.rails, "rail0,rail1");
    unsetenv("TUTTI_TOPO_DUMP_FILE");
    unsetenv("TUTTI_RAILS");
}
END_TEST

START_TEST(bad_arguments)
{
    tt_host_topo_t topo;
    ck_assert_int_eq(tt_topo_discover(NULL, 0, 1, NULL), TUTTI_ERR_INVALID_ARG);
    ck_assert_int_eq(tt_topo_discover(NULL, 0, 0, &topo), TUTTI_ERR_INVALID_ARG);
    ck_assert_int_eq(tt_topo_discover(NULL, 2, 2, &topo), TUTTI_ERR_INVALID_ARG);
    ck_assert_int_eq(tt_topo_discover(NULL, -1, 2, &topo), TUTTI_ERR_INVALID_ARG);
}
END_TEST

/*
 * A process in another network namespace is on another host (the test
 * cluster's emulated hosts), but on the same machine: the ranks of both
 * share its cores. Needs the right to make a namespace (root, as in CI);
 * without it only the same-process identities are checked.
 */
START_TEST(namespaces_share_the_machine)
{
    tt_host_id_t here, again, there;
    int fds[2], status = 0;
    pid_t pid;

    ck_assert_int_eq(tt_host_identify(&here), TUTTI_OK);
    ck_assert_int_eq(tt_host_identify(&again), TUTTI_OK);
    ck_assert(tt_host_same(&here, &again) && tt_host_same_machine(&here, &again));
    ck_assert_int_eq(pipe(fds), 0);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        tt_host_id_t id;
        if (unshare(CLONE_NEWNET) != 0)
            _exit(77);
        tt_host_identify(&id);
        _exit(write(fds[1], &id, sizeof(id)) == (ssize_t)sizeof(id) ? 0 : 1);
    }
    close(fds[1]);
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 77) {
        fprintf(stderr, "namespaces_share_the_machine: cannot make a namespace here: skipped\n");
        close(fds[0]);
        return;
    }
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child failed");
    ck_assert_int_eq(read(fds[0], &there, sizeof(there)), (ssize_t)sizeof(there));
    close(fds[0]);
    ck_assert(!tt_host_same(&here, &there));
    ck_assert(tt_host_same_machine(&here, &there));
}
END_TEST

/* The live machine: whatever it is, a sane description of it. */
START_TEST(live_machine)
{
    tt_host_topo_t topo;
    tt_host_id_t id;

    ck_assert_int_eq(tt_topo_discover(NULL, 0, 1, &topo), TUTTI_OK);
    ck_assert_int_eq(tt_host_identify(&id), TUTTI_OK);
    ck_assert(tt_host_same(&topo.id, &id));
    ck_assert_str_eq(topo.id.hostname, id.hostname);
    ck_assert_int_ge(topo.npackages, 1);
    ck_assert_int_ge(topo.nnumas, 1);
    ck_assert_int_ge(topo.ncores, 1);
    ck_assert_int_ge(topo.npus, topo.ncores);
    ck_assert_int_ge(topo.my_npus, 1);
    ck_assert_int_ge(topo.my_first_pu, 0);
    ck_assert_int_le(topo.my_first_pu + topo.my_npus, topo.npus);
    ck_assert_int_ge(topo.my_numa, 0);
    ck_assert_int_lt(topo.my_numa, topo.nnumas);
    ck_assert_int_ge(topo.nnics, 0);
    ck_assert_int_le(topo.nnics, TT_TOPO_MAX_NICS);
    for (int i = 0; i < topo.nnics; i++) {
        ck_assert_str_ne(topo.nics[i].name, "");
        ck_assert_str_ne(topo.nics[i].name, "lo");
        ck_assert_int_ge(topo.nics[i].kind, TT_NIC_ETHERNET);
        ck_assert_int_le(topo.nics[i].kind, TT_NIC_OTHER);
        ck_assert_int_lt(topo.nics[i].numa, topo.nnumas);
    }
    if (topo.nnics == 0)
        ck_assert_int_eq(topo.my_nic, -1);
    else
        ck_assert(topo.my_nic >= 0 && topo.my_nic < topo.nnics);
#ifdef HAVE_HWLOC
    /* An unbound test process places itself by the slice rule. */
    if (!topo.bound) {
        ck_assert_int_eq(topo.my_first_pu, 0);
        ck_assert_int_eq(topo.my_npus, topo.npus);
    }
#else
    ck_assert_int_eq(topo.nnics, 0);
    ck_assert_int_eq(topo.ngpus, 0);
    ck_assert_int_eq(topo.npackages, 1);
    ck_assert_int_eq(topo.ncores, (int)sysconf(_SC_NPROCESSORS_ONLN));
#endif
}
END_TEST

/* Hand-made descriptions for the tiers: NUMA node, then package, then any. */
static tt_host_topo_t made_topo(int npackages, int nnumas)
{
    tt_host_topo_t topo;
    memset(&topo, 0, sizeof(topo));
    topo.npackages = npackages;
    topo.nnumas = nnumas;
    topo.my_numa = topo.my_package = topo.my_nic = -1;
    return topo;
}

static void add_made_nic(tt_host_topo_t *topo, const char *name, int kind, int numa, int package)
{
    tt_nic_t *nic = &topo->nics[topo->nnics++];
    snprintf(nic->name, sizeof(nic->name), "%s", name);
    nic->kind = kind;
    nic->numa = numa;
    nic->package = package;
}

START_TEST(nearest_nic_tiers)
{
    tt_host_topo_t topo = made_topo(2, 4);

    ck_assert_int_eq(tt_topo_nearest_nic(&topo, 0, 0), -1); /* no NIC at all */

    /* Two packages of two NUMA nodes; NICs on nodes 0 and 2 only. NUMA 1
     * has no NIC: the one of its package. */
    add_made_nic(&topo, "a", TT_NIC_ROCE, 0, 0);
    add_made_nic(&topo, "b", TT_NIC_ROCE, 2, 1);
    ck_assert_int_eq(tt_topo_nearest_nic(&topo, 1, 0), 0);
    ck_assert_int_eq(tt_topo_nearest_nic(&topo, 1, 1), 0);
    ck_assert_int_eq(tt_topo_nearest_nic(&topo, 3, 0), 1);
    ck_assert_int_eq(tt_topo_nearest_nic(&topo, 2, 7), 1);

    /* A NIC attached to the package (both its NUMA nodes) serves both. */
    topo = made_topo(2, 4);
    add_made_nic(&topo, "p0", TT_NIC_INFINIBAND, -1, 0);
    add_made_nic(&topo, "p1", TT_NIC_INFINIBAND, -1, 1);
    ck_assert_int_eq(tt_topo_nearest_nic(&topo, 1, 0), 0);
    ck_assert_int_eq(tt_topo_nearest_nic(&topo, 2, 0), 1);

    /* RDMA beats locality: an Ethernet port on the rank's node loses to an
     * InfiniBand NIC on the other. */
    topo = made_topo(2, 2);
    add_made_nic(&topo, "eth0", TT_NIC_ETHERNET, 0, 0);
    add_made_nic(&topo, "mlx5_0", TT_NIC_INFINIBAND, 1, 1);
    ck_assert_int_eq(tt_topo_nearest_nic(&topo, 0, 0), 1);

    /* Ethernet only: the local one, then any. */
    topo = made_topo(1, 2);
    add_made_nic(&topo, "eth0", TT_NIC_ETHERNET, 1, 0);
    add_made_nic(&topo, "eth1", TT_NIC_ETHERNET, 1, 0);
    ck_assert_int_eq(tt_topo_nearest_nic(&topo, 1, 1), 1);
    ck_assert_int_eq(tt_topo_nearest_nic(&topo, 0, 0), 0); /* same package */
    topo = made_topo(1, 1);
    add_made_nic(&topo, "x", TT_NIC_OTHER, -1, -1);
    ck_assert_int_eq(tt_topo_nearest_nic(&topo, 0, 5), 0);
}
END_TEST

/* TUTTI_RAILS on the live host: the named devices are its NICs, the rank's nearest the first. */
START_TEST(rails_on_live_host)
{
    tt_topo_settings_t settings;
    tt_host_topo_t topo;

    memset(&settings, 0, sizeof(settings));
    snprintf(settings.rails, sizeof(settings.rails), "%s", "lo,tt-no-such-if");
    ck_assert_int_eq(tt_topo_discover(&settings, 0, 1, &topo), TUTTI_OK);
    ck_assert_int_eq(topo.nnics, 2);
    ck_assert_str_eq(topo.nics[0].name, "lo");
    ck_assert_str_eq(topo.nics[0].netdev, "lo");
    ck_assert_int_eq(topo.nics[0].kind, TT_NIC_ETHERNET);
    ck_assert_int_eq(topo.nics[0].numa, -1);
    ck_assert_str_eq(topo.nics[1].name, "tt-no-such-if");
    ck_assert_int_eq(topo.my_nic, 0);
}
END_TEST

/* A rails list that names nothing, or a device twice, or too many, is refused whole. */
START_TEST(bad_rails)
{
    static const char *const lists[] = {
        ",",           "rail0,",
        ",rail0",      "rail0,,rail1",
        "rail0,rail0", "a-name-longer-than-thirty-one-bytes-is-not-one"};
    char many[TT_CONFIG_STRING_MAX] = "";
    tt_host_topo_t topo = {.nnics = 0};

    for (size_t i = 0; i < TT_ARRAY_SIZE(lists); i++) {
        ck_assert_msg(tt_topo_set_rails(&topo, lists[i], 0) == TUTTI_ERR_INVALID_ARG, "'%s'",
                      lists[i]);
        ck_assert_int_eq(topo.nnics, 0);
    }
    for (int i = 0; i <= TT_TOPO_MAX_NICS; i++)
        snprintf(many + strlen(many), sizeof(many) - strlen(many), "%se%d", i ? "," : "", i);
    ck_assert_int_eq(tt_topo_set_rails(&topo, many, 0), TUTTI_ERR_INVALID_ARG);
    ck_assert_int_eq(tt_topo_set_rails(&topo, "", 0), TUTTI_OK);
    ck_assert_int_eq(topo.nnics, 0);
}
END_TEST

#ifdef HAVE_HWLOC

static const char *fixture(const char *name)
{
    static char path[1024];
    const char *top = getenv("TOP_SRCDIR");
    snprintf(path, sizeof(path), "%s%stests/fixtures/topo/%s", top != NULL ? top : "",
             top != NULL ? "/" : "", name);
    ck_assert_msg(access(path, R_OK) == 0, "fixture %s not found (is TOP_SRCDIR set?)", path);
    return path;
}

static tt_topo_settings_t file_settings(const char *path)
{
    tt_topo_settings_t settings;
    memset(&settings, 0, sizeof(settings));
    snprintf(settings.file, sizeof(settings.file), "%s", path);
    return settings;
}

/* Describe fixture @p name as local rank @p l of @p n. */
static tt_host_topo_t describe(const char *name, int l, int n)
{
    tt_topo_settings_t settings = file_settings(fixture(name));
    tt_host_topo_t topo;
    ck_assert_int_eq(tt_topo_discover(&settings, l, n, &topo), TUTTI_OK);
    return topo;
}

static int find_nic(const tt_host_topo_t *topo, const char *name)
{
    for (int i = 0; i < topo->nnics; i++)
        if (strcmp(topo->nics[i].name, name) == 0)
            return i;
    return -1;
}

static int find_gpu(const tt_host_topo_t *topo, const char *name)
{
    for (int i = 0; i < topo->ngpus; i++)
        if (strcmp(topo->gpus[i].name, name) == 0)
            return i;
    return -1;
}

/* A file name of this process's own in the temporary directory. */
static char *temp_path(char *path, size_t size, const char *suffix)
{
    const char *dir = getenv("TMPDIR");
    snprintf(path, size, "%s/tt-topo-%ld-%s", dir != NULL ? dir : "/tmp", (long)getpid(), suffix);
    return path;
}

/* Run discovery with stderr captured; returns the status and the log text. */
static tutti_status_t discover_logged(const tt_topo_settings_t *settings, tt_host_topo_t *topo,
                                      char *log, size_t size)
{
    char path[256];
    int saved = dup(STDERR_FILENO);
    FILE *f = fopen(temp_path(path, sizeof(path), "stderr"), "w+");
    tutti_status_t status;
    size_t n;

    ck_assert_ptr_nonnull(f);
    fflush(stderr);
    dup2(fileno(f), STDERR_FILENO);
    status = tt_topo_discover(settings, 0, 1, topo);
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    rewind(f);
    n = fread(log, 1, size - 1, f);
    log[n] = '\0';
    fclose(f);
    unlink(path);
    return status;
}

static void write_file(const char *path, const char *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(data, 1, size, f), size);
    fclose(f);
}

static char *read_file(const char *path, size_t *size_p)
{
    FILE *f = fopen(path, "rb");
    char *data;
    long size;
    ck_assert_ptr_nonnull(f);
    fseek(f, 0, SEEK_END);
    size = ftell(f);
    rewind(f);
    data = malloc((size_t)size + 1);
    ck_assert_ptr_nonnull(data);
    ck_assert_uint_eq(fread(data, 1, (size_t)size, f), (size_t)size);
    data[size] = '\0';
    fclose(f);
    *size_p = (size_t)size;
    return data;
}

/* Everything but the digest (which hashes the file) and the host name. */
static void assert_same_description(const tt_host_topo_t *a, const tt_host_topo_t *b)
{
    ck_assert_int_eq(a->npackages, b->npackages);
    ck_assert_int_eq(a->nnumas, b->nnumas);
    ck_assert_int_eq(a->ncores, b->ncores);
    ck_assert_int_eq(a->npus, b->npus);
    ck_assert_mem_eq(a->cache_bytes, b->cache_bytes, sizeof(a->cache_bytes));
    ck_assert_int_eq(a->nnics, b->nnics);
    ck_assert_mem_eq(a->nics, b->nics, sizeof(a->nics[0]) * (size_t)a->nnics);
    ck_assert_int_eq(a->ngpus, b->ngpus);
    ck_assert_mem_eq(a->gpus, b->gpus, sizeof(a->gpus[0]) * (size_t)a->ngpus);
    ck_assert_int_eq(a->my_numa, b->my_numa);
    ck_assert_int_eq(a->my_package, b->my_package);
    ck_assert_int_eq(a->my_first_pu, b->my_first_pu);
    ck_assert_int_eq(a->my_npus, b->my_npus);
    ck_assert_int_eq(a->my_nic, b->my_nic);
    ck_assert_int_eq(a->bound, b->bound);
}

/* hwloc failing on the live host still gives a usable description. */
START_TEST(hwloc_failure_falls_back)
{
    tt_topo_settings_t settings;
    tt_host_topo_t topo;
    char log[4096], dump[256];
    long n = sysconf(_SC_NPROCESSORS_ONLN);

    memset(&settings, 0, sizeof(settings));
    snprintf(settings.dump_file, sizeof(settings.dump_file), "%s",
             temp_path(dump, sizeof(dump), "never.xml"));
    setenv("HWLOC_COMPONENTS", "stop", 1); /* hwloc's own switch: no discovery at all */
    ck_assert_int_eq(discover_logged(&settings, &topo, log, sizeof(log)), TUTTI_OK);
    unsetenv("HWLOC_COMPONENTS");
    ck_assert_msg(strstr(log, "without hwloc") != NULL, "log: %s", log);
    ck_assert_int_eq(topo.npackages, 1);
    ck_assert_int_eq(topo.nnumas, 1);
    ck_assert_int_eq(topo.ncores, (int)n);
    ck_assert_int_eq(topo.npus, (int)n);
    ck_assert_int_eq(topo.nnics, 0);
    ck_assert_int_eq(topo.ngpus, 0);
    ck_assert_int_eq(topo.my_nic, -1);
    ck_assert_int_eq(topo.my_npus, (int)n);
    ck_assert_int_ne(access(dump, F_OK), 0);
}
END_TEST

/* A rank bound to one CPU sits there, whatever its local rank says. */
START_TEST(live_binding)
{
    cpu_set_t saved, one;
    tt_host_topo_t topo;
    int cpu = -1;

    ck_assert_int_eq(sched_getaffinity(0, sizeof(saved), &saved), 0);
    if (CPU_COUNT(&saved) < 2)
        return; /* a single CPU cannot be a part of the host */
    for (int c = CPU_SETSIZE - 1; c >= 0 && cpu < 0; c--)
        if (CPU_ISSET(c, &saved))
            cpu = c;
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    ck_assert_int_eq(sched_setaffinity(0, sizeof(one), &one), 0);
    ck_assert_int_eq(tt_topo_discover(NULL, 0, 4, &topo), TUTTI_OK);
    ck_assert_int_eq(sched_setaffinity(0, sizeof(saved), &saved), 0);
    ck_assert_int_eq(topo.bound, 1);
    ck_assert_int_eq(topo.my_npus, 1);
    ck_assert(topo.my_first_pu >= 0 && topo.my_first_pu < topo.npus);
    ck_assert_int_ge(topo.my_numa, 0);

    /* The same process unbound again: the slice rule (rank 0 of 4). */
    ck_assert_int_eq(tt_topo_discover(NULL, 0, 4, &topo), TUTTI_OK);
    ck_assert_int_eq(topo.bound, 0);
    ck_assert_int_eq(topo.my_first_pu, 0);
}
END_TEST

START_TEST(dgx_counts_and_caches)
{
    tt_host_topo_t topo = describe(DGX, 0, 1);
    ck_assert_str_eq(topo.id.hostname, "dgx-like");
    ck_assert_int_eq(topo.npackages, 2);
    ck_assert_int_eq(topo.nnumas, 2);
    ck_assert_int_eq(topo.ncores, 16);
    ck_assert_int_eq(topo.npus, 32);
    ck_assert_uint_eq(topo.cache_bytes[0], 0);
    ck_assert_uint_eq(topo.cache_bytes[1], 48 * 1024);
    ck_assert_uint_eq(topo.cache_bytes[2], 2 * 1024 * 1024);
    ck_assert_uint_eq(topo.cache_bytes[3], 105 * 1024 * 1024);
    ck_assert_int_eq(topo.bound, 0);
}
END_TEST

START_TEST(dgx_nics)
{
    tt_host_topo_t topo = describe(DGX, 0, 1);
    int eno1 = find_nic(&topo, "eno1");

    /* Eight HCAs, each an RDMA device merged with its IPoIB interface, and
     * the management port. */
    ck_assert_int_eq(topo.nnics, 9);
    ck_assert_int_ge(eno1, 0);
    ck_assert_str_eq(topo.nics[eno1].netdev, "eno1");
    ck_assert_int_eq(topo.nics[eno1].kind, TT_NIC_ETHERNET);
    ck_assert_str_eq(topo.nics[eno1].pci_busid, "0000:05:00.0");
    ck_assert_int_eq(topo.nics[eno1].numa, 0);
    ck_assert(topo.nics[eno1].gbps > 3.9 && topo.nics[eno1].gbps < 4.1); /* PCIe gen2 x1 */
    for (int i = 0; i < 8; i++) {
        char name[16], netdev[16], busid[16];
        int n;
        snprintf(name, sizeof(name), "mlx5_%d", i);
        snprintf(netdev, sizeof(netdev), "ib%d", i);
        snprintf(busid, sizeof(busid), "0000:%02x:00.0", (i < 4 ? 0x13 : 0x53) + 0x10 * i);
        n = find_nic(&topo, name);
        ck_assert_msg(n >= 0, "%s missing", name);
        ck_assert_str_eq(topo.nics[n].netdev, netdev);
        ck_assert_int_eq(topo.nics[n].kind, TT_NIC_INFINIBAND);
        ck_assert_str_eq(topo.nics[n].pci_busid, busid);
        ck_assert_int_eq(topo.nics[n].numa, i / 4);
        ck_assert_int_eq(topo.nics[n].package, i / 4);
        ck_assert(topo.nics[n].gbps > 504 && topo.nics[n].gbps < 505); /* PCIe gen5 x16 */
    }
}
END_TEST

/* Rails named on the DGX-like host: found NICs (by RDMA device or interface) keep their
 * description, in the order given; another name is a plain interface. */
START_TEST(dgx_rails_chosen)
{
    tt_topo_settings_t settings = file_settings(fixture(DGX));
    tt_host_topo_t topo;

    snprintf(settings.rails, sizeof(settings.rails), "%s", "ib6,mlx5_1,veth9");
    ck_assert_int_eq(tt_topo_discover(&settings, 0, 1, &topo), TUTTI_OK);
    ck_assert_int_eq(topo.nnics, 3);
    ck_assert_str_eq(topo.nics[0].name, "mlx5_6");
    ck_assert_str_eq(topo.nics[0].netdev, "ib6");
    ck_assert_int_eq(topo.nics[0].kind, TT_NIC_INFINIBAND);
    ck_assert_int_eq(topo.nics[0].numa, 1);
    ck_assert_str_eq(topo.nics[1].name, "mlx5_1");
    ck_assert_int_eq(topo.nics[1].numa, 0);
    ck_assert_str_eq(topo.nics[2].name, "veth9");
    ck_assert_int_eq(topo.nics[2].kind, TT_NIC_ETHERNET);
    /* Local rank 0 is on NUMA node 0; only RDMA NICs are candidates: mlx5_1. */
    ck_assert_int_eq(topo.my_nic, 1);
    snprintf(settings.rails, sizeof(settings.rails), "%s", "ib6,ib6");
    ck_assert_int_eq(tt_topo_discover(&settings, 0, 1, &topo), TUTTI_ERR_INVALID_ARG);
}
END_TEST

START_TEST(dgx_gpus)
{
    tt_host_topo_t topo = describe(DGX, 0, 1);

    /* Eight H100s named after CUDA (not their DRM cards); the BMC's VGA
     * display (card0) is not a GPU. */
    ck_assert_int_eq(topo.ngpus, 8);
    ck_assert_int_lt(find_gpu(&topo, "card0"), 0);
    for (int i = 0; i < 8; i++) {
        char name[16];
        int g, n;
        snprintf(name, sizeof(name), "cuda%d", i);
        g = find_gpu(&topo, name);
        ck_assert_msg(g >= 0, "%s missing", name);
        ck_assert_int_eq(topo.gpus[g].numa, i / 4);
        ck_assert_int_eq(topo.gpus[g].package, i / 4);
        /* Its NIC sits behind the same switch: the bus before its own. */
        snprintf(name, sizeof(name), "mlx5_%d", i);
        n = find_nic(&topo, name);
        ck_assert_int_eq(strtol(topo.gpus[g].pci_busid + 5, NULL, 16),
                         strtol(topo.nics[n].pci_busid + 5, NULL, 16) + 1);
    }
}
END_TEST

/* 8 ranks on the DGX-like host: rank l on NUMA l/4, 2 cores each, 8 NICs. */
START_TEST(dgx_slices_eight_ranks)
{
    int used[TT_TOPO_MAX_NICS] = {0};

    for (int l = 0; l < 8; l++) {
        tt_host_topo_t topo = describe(DGX, l, 8);
        const tt_nic_t *nic;
        ck_assert_int_eq(topo.bound, 0);
        ck_assert_int_eq(topo.my_numa, l / 4);
        ck_assert_int_eq(topo.my_package, l / 4);
        ck_assert_int_eq(topo.my_first_pu, 4 * l);
        ck_assert_int_eq(topo.my_npus, 4);
        ck_assert_int_ge(topo.my_nic, 0);
        nic = &topo.nics[topo.my_nic];
        ck_assert_int_eq(nic->kind, TT_NIC_INFINIBAND);
        ck_assert_int_eq(nic->numa, topo.my_numa);
        ck_assert_msg(used[topo.my_nic] == 0, "rank %d shares %s", l, nic->name);
        used[topo.my_nic] = 1;
    }
}
END_TEST

/* Other rank counts: every rank gets a slice, NUMA-local NICs, even use. */
START_TEST(dgx_slices_other_counts)
{
    static const int counts[] = {1, 2, 3, 5, 16, 24, 32, 40};

    for (size_t c = 0; c < TT_ARRAY_SIZE(counts); c++) {
        int n = counts[c], next_pu = 0, per_nic[TT_TOPO_MAX_NICS] = {0};
        for (int l = 0; l < n; l++) {
            tt_host_topo_t topo = describe(DGX, l, n);
            int first_core = l * 16 / n;
            if (topo.my_first_pu != 2 * first_core || topo.my_npus < 2 ||
                (n <= 16 && topo.my_first_pu != next_pu) || topo.my_numa != first_core / 8 ||
                topo.my_nic < 0 || topo.nics[topo.my_nic].numa != topo.my_numa)
                ck_abort_msg("%d ranks: rank %d got PUs %d+%d, NUMA %d, NIC %d", n, l,
                             topo.my_first_pu, topo.my_npus, topo.my_numa, topo.my_nic);
            next_pu = topo.my_first_pu + topo.my_npus;
            per_nic[topo.my_nic]++;
        }
        if (n <= 16)
            ck_assert_int_eq(next_pu, 32); /* the slices cover the host */
        /* Ranks share a NIC only when there are more ranks than NICs on their node. */
        for (int i = 0; i < TT_TOPO_MAX_NICS; i++)
            if (per_nic[i] > (n + 7) / 8 + 1)
                ck_abort_msg("%d ranks: NIC %d carries %d ranks", n, i, per_nic[i]);
    }
}
END_TEST

START_TEST(nearest_nic_spreads)
{
    tt_host_topo_t topo = describe(DGX, 0, 1);

    /* Ranks of one NUMA node cycle over its NICs; never the Ethernet port. */
    for (int index = 0; index < 12; index++) {
        int n0 = tt_topo_nearest_nic(&topo, 0, index), n1 = tt_topo_nearest_nic(&topo, 1, index);
        char expect0[16], expect1[16];
        snprintf(expect0, sizeof(expect0), "mlx5_%d", index % 4);
        snprintf(expect1, sizeof(expect1), "mlx5_%d", 4 + index % 4);
        ck_assert_str_eq(topo.nics[n0].name, expect0);
        ck_assert_str_eq(topo.nics[n1].name, expect1);
    }
    /* Unknown NUMA node: any RDMA NIC; a negative index counts as 0. */
    ck_assert_int_eq(topo.nics[tt_topo_nearest_nic(&topo, -1, 3)].kind, TT_NIC_INFINIBAND);
    ck_assert_str_eq(topo.nics[tt_topo_nearest_nic(&topo, 1, -5)].name, "mlx5_4");
}
END_TEST

START_TEST(two_numa_server)
{
    tt_host_topo_t topo = describe(TWO_NUMA, 0, 1);
    int eth0 = find_nic(&topo, "eth0"), eth1 = find_nic(&topo, "eth1");

    ck_assert_str_eq(topo.id.hostname, "2numa-2nic");
    ck_assert_int_eq(topo.npackages, 2);
    ck_assert_int_eq(topo.nnumas, 2);
    ck_assert_int_eq(topo.ncores, 12);
    ck_assert_int_eq(topo.npus, 24);
    ck_assert_uint_eq(topo.cache_bytes[1], 32 * 1024);
    ck_assert_uint_eq(topo.cache_bytes[2], 256 * 1024);
    ck_assert_uint_eq(topo.cache_bytes[3], 12 * 1024 * 1024);
    ck_assert_int_eq(topo.nnics, 2);
    ck_assert_int_ge(eth0, 0);
    ck_assert_int_ge(eth1, 0);
    ck_assert_int_eq(topo.nics[eth0].kind, TT_NIC_ETHERNET);
    ck_assert_int_eq(topo.nics[eth1].kind, TT_NIC_ETHERNET);
    ck_assert_int_eq(topo.nics[eth0].numa, 0);
    ck_assert_int_eq(topo.nics[eth1].numa, 1);
    ck_assert_str_eq(topo.nics[eth1].pci_busid, "0000:14:00.0");
    ck_assert_int_eq(topo.ngpus, 0); /* 3D controllers without a driver's device */

    /* 4 ranks: two per NUMA node, each on its node's NIC. */
    for (int l = 0; l < 4; l++) {
        topo = describe(TWO_NUMA, l, 4);
        ck_assert_int_eq(topo.my_numa, l / 2);
        ck_assert_int_eq(topo.my_npus, 6);
        ck_assert_str_eq(topo.nics[topo.my_nic].name, l < 2 ? "eth0" : "eth1");
    }
}
END_TEST

START_TEST(small_machine)
{
    tt_host_topo_t topo = describe(SMALL, 1, 2);

    ck_assert_str_eq(topo.id.hostname, "small-1socket");
    ck_assert_int_eq(topo.npackages, 1);
    ck_assert_int_eq(topo.nnumas, 1);
    ck_assert_int_eq(topo.ncores, 4);
    ck_assert_int_eq(topo.npus, 8);
    ck_assert_uint_eq(topo.cache_bytes[1], 48 * 1024);
    ck_assert_uint_eq(topo.cache_bytes[2], 1280 * 1024);
    ck_assert_uint_eq(topo.cache_bytes[3], 12 * 1024 * 1024);
    ck_assert_int_eq(topo.nnics, 1);
    ck_assert_str_eq(topo.nics[0].name, "enp0s31f6");
    ck_assert_str_eq(topo.nics[0].netdev, "enp0s31f6");
    ck_assert_int_eq(topo.nics[0].kind, TT_NIC_ETHERNET);
    ck_assert_int_eq(topo.nics[0].numa, 0);
    ck_assert_int_eq(topo.nics[0].package, 0);
    ck_assert(topo.nics[0].gbps == 0); /* a chipset port has no PCI link speed */
    ck_assert_int_eq(topo.ngpus, 0);   /* integrated graphics: a VGA display only */
    ck_assert_int_eq(topo.my_first_pu, 4);
    ck_assert_int_eq(topo.my_npus, 4);
    ck_assert_int_eq(topo.my_nic, 0);
}
END_TEST

/* hwloc's own test machines, as they are. */
START_TEST(hwloc_fixtures)
{
    tt_host_topo_t topo = describe(HWLOC_24, 0, 1);
    int mlx;

    /* A ConnectX-3 with an InfiniBand and an Ethernet port on one PCI
     * function: one InfiniBand NIC named after the RDMA device. */
    ck_assert_str_eq(topo.id.hostname, "mirage004");
    ck_assert_int_eq(topo.nnics, 3);
    mlx = find_nic(&topo, "mlx4_0");
    ck_assert_int_ge(mlx, 0);
    ck_assert_str_eq(topo.nics[mlx].netdev, "ib0");
    ck_assert_int_eq(topo.nics[mlx].kind, TT_NIC_INFINIBAND);
    ck_assert_int_eq(topo.nics[mlx].numa, 0);
    ck_assert(topo.nics[mlx].gbps == 16.0); /* 2 GB/s */
    ck_assert_int_eq(topo.nics[find_nic(&topo, "eth1")].kind, TT_NIC_ETHERNET);
    ck_assert_int_eq(topo.ngpus, 0);
    /* Every rank prefers the only RDMA NIC, even from the other NUMA node. */
    topo = describe(HWLOC_24, 1, 2);
    ck_assert_int_eq(topo.my_numa, 1);
    ck_assert_str_eq(topo.nics[topo.my_nic].name, "mlx4_0");

    topo = describe(HWLOC_32, 0, 1);
    ck_assert_int_eq(topo.npus, 32);
    ck_assert_int_eq(topo.nnics, 3);
    mlx = find_nic(&topo, "mlx5_0");
    ck_assert_int_ge(mlx, 0);
    ck_assert_str_eq(topo.nics[mlx].netdev, "ib0");
    ck_assert_int_eq(topo.nics[mlx].kind, TT_NIC_INFINIBAND);
    ck_assert_int_eq(topo.nics[mlx].numa, 1);
    ck_assert_int_eq(topo.ngpus, 2);
    ck_assert_int_ge(find_gpu(&topo, "cuda0"), 0);
    ck_assert_int_ge(find_gpu(&topo, "opencl0d1"), 0);
    ck_assert_int_eq(topo.gpus[find_gpu(&topo, "cuda0")].numa, 1);
    ck_assert_str_eq(topo.gpus[find_gpu(&topo, "cuda0")].pci_busid, "0000:84:00.0");

    /* NUMA nodes above packages: a NIC is local to a node, not a package. */
    topo = describe(HWLOC_96, 0, 1);
    ck_assert_int_eq(topo.npus, 96);
    ck_assert_int_eq(topo.nnics, 8);
    ck_assert_int_eq(topo.ngpus, 0); /* the server's VGA display */
    for (int i = 0; i < topo.nnics; i++) {
        ck_assert_int_eq(topo.nics[i].kind, TT_NIC_ETHERNET);
        ck_assert_int_ge(topo.nics[i].numa, 0);
        ck_assert_int_eq(topo.nics[i].package, -1);
    }
}
END_TEST

/* Hand-written hosts: a machine without packages, cores or caches whose
 * only network device is not on PCI, and the same with PCI network devices
 * of every kind. */
#define XML_SETS(cpus) "cpuset=\"" cpus "\" complete_cpuset=\"" cpus "\" "
#define XML_NODE "nodeset=\"0x1\" complete_nodeset=\"0x1\" "
static const char soc_head[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    "<!DOCTYPE topology SYSTEM \"hwloc2.dtd\">\n"
    "<topology version=\"2.0\">\n"
    "<object type=\"Machine\" os_index=\"0\" " XML_SETS(
        "0x3") "allowed_cpuset=\"0x3\" " XML_NODE "allowed_nodeset=\"0x1\" gp_index=\"1\">\n"
               "<info name=\"HostName\" value=\"soc\"/>\n"
               "<object type=\"NUMANode\" os_index=\"0\" " XML_SETS("0x3") XML_NODE
    "gp_index=\"2\" local_memory=\"1073741824\"/>\n"
    "<object type=\"PU\" os_index=\"0\" " XML_SETS("0x1") XML_NODE
    "gp_index=\"3\"/>\n"
    "<object type=\"PU\" os_index=\"1\" " XML_SETS("0x2") XML_NODE
    "gp_index=\"4\"/>\n"
    "<object type=\"OSDev\" gp_index=\"5\" name=\"end0\" osdev_type=\"2\">\n"
    "<info name=\"Address\" value=\"d8:3a:dd:01:02:03\"/></object>\n"
    "<object type=\"OSDev\" gp_index=\"6\" name=\"lo\" osdev_type=\"2\"/>\n";
static const char soc_tail[] = "</object>\n</topology>\n";
#define XML_PCI(gp, busid, class_id)                                                           \
    "<object type=\"PCIDev\" gp_index=\"" gp "\" pci_busid=\"" busid "\" pci_type=\"" class_id \
    " [15b3:1017] [15b3:0007] 00\" pci_link_speed=\"15.753846\">\n"
#define XML_OSDEV(gp, name, type) \
    "<object type=\"OSDev\" gp_index=\"" gp "\" name=\"" name "\" osdev_type=\"" type "\">\n"
static const char pci_nics[] =
    "<object type=\"Bridge\" gp_index=\"10\" bridge_type=\"0-1\" depth=\"0\" "
    "bridge_pci=\"0000:[00-02]\">\n"
    /* RoCE: an RDMA device and an Ethernet interface. */
    XML_PCI("11", "0000:01:00.0", "0200") XML_OSDEV(
        "12", "enp1s0f0np0", "2") "<info name=\"Address\" "
                                  "value=\"b8:ce:f6:00:00:01\"/></object>\n" XML_OSDEV(
                                      "13", "mlx5_0", "3") "<info name=\"Port1LID\" "
                                                           "value=\"0x0\"/></object>\n</object>\n"
    /* InfiniBand without IPoIB: told by the LID. */
    XML_PCI("14", "0000:01:00.1", "0200")
        XML_OSDEV("15", "mlx5_1", "3") "<info name=\"Port1State\" value=\"4\"/><info "
                                       "name=\"Port1LID\" value=\"0x5\"/></object>\n"
                                       "</object>\n"
    /* InfiniBand without IPoIB, port down: told by the PCI class. */
    XML_PCI("16", "0000:01:00.2", "0207") XML_OSDEV(
        "17", "mlx5_2", "3") "<info name=\"Port1LID\" value=\"0x0\"/></object>\n</object>\n"
    /* RoCE without its interface: the Ethernet PCI class. */
    XML_PCI("18", "0000:01:00.3", "0200") XML_OSDEV("19", "mlx5_3", "3") "</object>\n</object>\n"
    /* An IPoIB interface whose RDMA device is missing. */
    XML_PCI("20", "0000:02:00.0", "0207") XML_OSDEV(
        "21", "ib0",
        "2") "<info name=\"Address\" "
             "value=\"00:00:10:29:fe:80:00:00:00:00:00:00:a0:88:c2:03:00:10:6c:20\"/></object>\n"
             "</object>\n</object>\n";

static tt_host_topo_t describe_text(const char *head, const char *middle, const char *tail)
{
    char path[256], *text = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&text, &size);
    tt_topo_settings_t settings = file_settings(temp_path(path, sizeof(path), "made.xml"));
    tt_host_topo_t topo;

    ck_assert_ptr_nonnull(f);
    fprintf(f, "%s%s%s", head, middle, tail);
    fclose(f);
    write_file(path, text, size);
    free(text);
    ck_assert_int_eq(tt_topo_discover(&settings, 1, 2, &topo), TUTTI_OK);
    unlink(path);
    return topo;
}

START_TEST(non_pci_and_kinds)
{
    static const struct {
        const char *name, *netdev;
        int kind;
    } expect[] = {
        {"mlx5_0", "enp1s0f0np0", TT_NIC_ROCE}, {"mlx5_1", "", TT_NIC_INFINIBAND},
        {"mlx5_2", "", TT_NIC_INFINIBAND},      {"mlx5_3", "", TT_NIC_ROCE},
        {"ib0", "ib0", TT_NIC_OTHER},
    };
    tt_host_topo_t topo = describe_text(soc_head, "", soc_tail);

    /* No PCI NIC: the platform NIC is the way off the host (never "lo"). */
    ck_assert_str_eq(topo.id.hostname, "soc");
    ck_assert_int_eq(topo.npackages, 1);
    ck_assert_int_eq(topo.ncores, 2); /* no core objects: PUs count as cores */
    ck_assert_uint_eq(topo.cache_bytes[1] + topo.cache_bytes[2] + topo.cache_bytes[3], 0);
    ck_assert_int_eq(topo.nnics, 1);
    ck_assert_str_eq(topo.nics[0].name, "end0");
    ck_assert_str_eq(topo.nics[0].pci_busid, "");
    ck_assert_int_eq(topo.nics[0].kind, TT_NIC_ETHERNET);
    ck_assert_int_eq(topo.nics[0].numa, 0);
    ck_assert_int_eq(topo.nics[0].package, 0);
    ck_assert_int_eq(topo.my_package, 0);
    ck_assert_int_eq(topo.my_first_pu, 1);
    ck_assert_int_eq(topo.my_nic, 0);

    /* With PCI NICs, only they count; each kind told apart. */
    topo = describe_text(soc_head, pci_nics, soc_tail);
    ck_assert_int_eq(topo.nnics, (int)TT_ARRAY_SIZE(expect));
    for (int i = 0; i < topo.nnics; i++) {
        ck_assert_str_eq(topo.nics[i].name, expect[i].name);
        ck_assert_str_eq(topo.nics[i].netdev, expect[i].netdev);
        ck_assert_int_eq(topo.nics[i].kind, expect[i].kind);
        ck_assert(topo.nics[i].gbps > 126 && topo.nics[i].gbps < 127); /* PCIe gen3 x16 */
    }
}
END_TEST

/* Without a HostName the file's name names the host; the content is its identity. */
START_TEST(file_host_identity)
{
    tt_host_topo_t a = describe(SMALL, 0, 1), b = describe(SMALL, 0, 1), c = describe(DGX, 0, 1);
    char path[256], name[256];
    tt_topo_settings_t settings = file_settings(temp_path(path, sizeof(path), "nameless.xml"));
    tt_host_topo_t d;
    size_t size;
    char *data = read_file(fixture(SMALL), &size), *at = strstr(data, "HostName");

    ck_assert(tt_host_same(&a.id, &b.id));
    ck_assert(!tt_host_same(&a.id, &c.id));
    ck_assert_ptr_nonnull(at);
    memcpy(at, "HostHame", 8);
    write_file(path, data, size);
    free(data);
    ck_assert_int_eq(tt_topo_discover(&settings, 0, 1, &d), TUTTI_OK);
    unlink(path);
    snprintf(name, sizeof(name), "%s", strrchr(path, '/') + 1);
    name[strlen(name) - 4] = '\0'; /* without ".xml" */
    ck_assert_str_eq(d.id.hostname, name);
    ck_assert(!tt_host_same(&a.id, &d.id));
}
END_TEST

/* TUTTI_TOPO_DUMP_FILE then TUTTI_TOPO_FILE: the same description. */
START_TEST(dump_and_reload)
{
    static const char *const names[] = {DGX, TWO_NUMA, SMALL, HWLOC_32};
    char dump[256], expanded[512];
    tt_topo_settings_t settings;

    temp_path(dump, sizeof(dump), "dump-%h.xml");
    for (size_t i = 0; i < TT_ARRAY_SIZE(names); i++) {
        tt_host_topo_t first, again;
        setenv("TUTTI_TOPO_FILE", fixture(names[i]), 1);
        setenv("TUTTI_TOPO_DUMP_FILE", dump, 1);
        ck_assert_int_eq(tt_config_load(&tt_topo_config_table, NULL, &settings), TUTTI_OK);
        ck_assert_int_eq(tt_topo_discover(&settings, 0, 3, &first), TUTTI_OK);

        snprintf(expanded, sizeof(expanded), "%.*s%s.xml", (int)(strlen(dump) - 6), dump,
                 first.id.hostname);
        ck_assert_msg(access(expanded, R_OK) == 0, "%s not written", expanded);
        setenv("TUTTI_TOPO_FILE", expanded, 1);
        unsetenv("TUTTI_TOPO_DUMP_FILE");
        ck_assert_int_eq(tt_config_load(&tt_topo_config_table, NULL, &settings), TUTTI_OK);
        ck_assert_int_eq(tt_topo_discover(&settings, 0, 3, &again), TUTTI_OK);
        unlink(expanded);
        assert_same_description(&first, &again);
        ck_assert_str_eq(first.id.hostname, again.id.hostname);
    }
    unsetenv("TUTTI_TOPO_FILE");

    /* Only local rank 0 writes. */
    memset(&settings, 0, sizeof(settings));
    snprintf(settings.file, sizeof(settings.file), "%s", fixture(SMALL));
    temp_path(settings.dump_file, sizeof(settings.dump_file), "rank1.xml");
    {
        tt_host_topo_t topo;
        ck_assert_int_eq(tt_topo_discover(&settings, 1, 2, &topo), TUTTI_OK);
        ck_assert_int_ne(access(settings.dump_file, F_OK), 0);
    }
}
END_TEST

/* The live machine dumped and read back describes the same host. */
START_TEST(live_dump_and_reload)
{
    tt_topo_settings_t settings;
    tt_host_topo_t live, again;

    memset(&settings, 0, sizeof(settings));
    temp_path(settings.dump_file, sizeof(settings.dump_file), "live.xml");
    ck_assert_int_eq(tt_topo_discover(&settings, 0, 1, &live), TUTTI_OK);
    snprintf(settings.file, sizeof(settings.file), "%s", settings.dump_file);
    settings.dump_file[0] = '\0';
    ck_assert_int_eq(tt_topo_discover(&settings, 0, 1, &again), TUTTI_OK);
    unlink(settings.file);
    ck_assert_str_eq(live.id.hostname, again.id.hostname);
    ck_assert(!tt_host_same(&live.id, &again.id)); /* a described host is not this one */
    if (live.bound) {
        again.my_numa = live.my_numa;
        again.my_package = live.my_package;
        again.my_first_pu = live.my_first_pu;
        again.my_npus = live.my_npus;
        again.my_nic = live.my_nic;
        again.bound = live.bound;
    }
    assert_same_description(&live, &again);
}
END_TEST

/* A missing or broken TUTTI_TOPO_FILE: an error naming the file, the
 * output untouched, no crash. */
START_TEST(bad_files)
{
#define CONTENT(text)          \
    {                          \
        text, sizeof(text) - 1 \
    }
    static const struct {
        const char *data;
        size_t size;
    } contents[] = {
        CONTENT(""),
        CONTENT("this is not XML\n"),
        CONTENT("<?xml version=\"1.0\"?>\n<topology version=\"2.0\">\n<object type=\"Machine\""),
        CONTENT("<?xml version=\"1.0\"?>\n<notatopology/>\n"),
        CONTENT("<?xml version=\"1.0\"?>\n<topology version=\"2.0\"></topology>\n"),
        CONTENT("\x01\x02\xff\xfe garbage \x00 more"),
    };
#undef CONTENT
    char path[256], log[4096];
    tt_topo_settings_t settings = file_settings("/nonexistent/dir/topo.xml");
    tt_host_topo_t topo, untouched;
    size_t size;
    char *dgx = read_file(fixture(DGX), &size);

    memset(&topo, 0x5a, sizeof(topo));
    untouched = topo;
    ck_assert_int_eq(discover_logged(&settings, &topo, log, sizeof(log)), TUTTI_ERR_INVALID_ARG);
    ck_assert_msg(strstr(log, "/nonexistent/dir/topo.xml") != NULL, "log: %s", log);
    ck_assert_mem_eq(&topo, &untouched, sizeof(topo));

    settings = file_settings(temp_path(path, sizeof(path), "bad.xml"));
    for (size_t i = 0; i < TT_ARRAY_SIZE(contents) + 1; i++) {
        if (i < TT_ARRAY_SIZE(contents))
            write_file(path, contents[i].data, contents[i].size);
        else
            write_file(path, dgx, size / 2); /* a truncated real file */
        ck_assert_int_eq(discover_logged(&settings, &topo, log, sizeof(log)),
                         TUTTI_ERR_INVALID_ARG);
        ck_assert_msg(strstr(log, path) != NULL, "case %zu, log: %s", i, log);
        ck_assert_mem_eq(&topo, &untouched, sizeof(topo));
    }
    free(dgx);
    unlink(path);
}
END_TEST

START_TEST(print_summary)
{
    char *text = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&text, &size);
    tt_host_topo_t topo = describe(DGX, 5, 8);

    ck_assert_ptr_nonnull(f);
    tt_topo_print(&topo, f);
    fclose(f);
    ck_assert_ptr_nonnull(strstr(text, "host dgx-like"));
    ck_assert_ptr_nonnull(strstr(text, "2 packages, 2 NUMA nodes, 16 cores, 32 PUs"));
    ck_assert_ptr_nonnull(strstr(text, "L1d 48 KiB, L2 2 MiB, L3 105 MiB"));
    ck_assert_ptr_nonnull(strstr(text, "mlx5_7"));
    ck_assert_ptr_nonnull(strstr(text, "InfiniBand"));
    ck_assert_ptr_nonnull(strstr(text, "cuda3"));
    ck_assert_ptr_nonnull(strstr(text, "this rank: NUMA 1, package 1, PUs L#20-23"));
    ck_assert_ptr_nonnull(strstr(text, "nearest NIC mlx5_5"));
    free(text);
}
END_TEST

#else /* !HAVE_HWLOC */

START_TEST(file_needs_hwloc)
{
    tt_topo_settings_t settings;
    tt_host_topo_t topo;
    memset(&settings, 0, sizeof(settings));
    snprintf(settings.file, sizeof(settings.file), "%s", "any.xml");
    ck_assert_int_eq(tt_topo_discover(&settings, 0, 1, &topo), TUTTI_ERR_UNSUPPORTED);
}
END_TEST

START_TEST(fallback_slices)
{
    int n = (int)sysconf(_SC_NPROCESSORS_ONLN), next = 0;
    for (int l = 0; l < 3; l++) {
        tt_host_topo_t topo;
        ck_assert_int_eq(tt_topo_discover(NULL, l, 3, &topo), TUTTI_OK);
        ck_assert_int_eq(topo.my_numa, 0);
        ck_assert_int_eq(topo.my_nic, -1);
        ck_assert_int_ge(topo.my_npus, 1);
        if (n >= 3) {
            ck_assert_int_eq(topo.my_first_pu, next);
            next += topo.my_npus;
        }
    }
    if (n >= 3)
        ck_assert_int_eq(next, n);
}
END_TEST

#endif

static Suite *topo_suite(void)
{
    Suite *s = suite_create("topo");
    TCase *tc = tcase_create("topo");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, config_table);
    tcase_add_test(tc, bad_arguments);
    tcase_add_test(tc, live_machine);
    tcase_add_test(tc, namespaces_share_the_machine);
    tcase_add_test(tc, nearest_nic_tiers);
    tcase_add_test(tc, rails_on_live_host);
    tcase_add_test(tc, bad_rails);
#ifdef HAVE_HWLOC
    tcase_add_test(tc, live_binding);
    tcase_add_test(tc, hwloc_failure_falls_back);
    tcase_add_test(tc, dgx_counts_and_caches);
    tcase_add_test(tc, dgx_nics);
    tcase_add_test(tc, dgx_rails_chosen);
    tcase_add_test(tc, dgx_gpus);
    tcase_add_test(tc, dgx_slices_eight_ranks);
    tcase_add_test(tc, dgx_slices_other_counts);
    tcase_add_test(tc, nearest_nic_spreads);
    tcase_add_test(tc, two_numa_server);
    tcase_add_test(tc, small_machine);
    tcase_add_test(tc, hwloc_fixtures);
    tcase_add_test(tc, non_pci_and_kinds);
    tcase_add_test(tc, file_host_identity);
    tcase_add_test(tc, dump_and_reload);
    tcase_add_test(tc, live_dump_and_reload);
    tcase_add_test(tc, bad_files);
    tcase_add_test(tc, print_summary);
#else
    tcase_add_test(tc, file_needs_hwloc);
    tcase_add_test(tc, fallback_slices);
#endif
    suite_add_tcase(s, tc);
    return s;
}

TT_UNIT_MAIN(topo_suite)
