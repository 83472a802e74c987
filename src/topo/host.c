/* Host identity; see host.h. */
#include "config.h"

#include "topo/host.h"

#include "util/log.h"
#include "util/sha256.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Hash the start of file @p path; returns the bytes hashed (0: unreadable or empty). */
static size_t hash_file(tt_sha256_t *hash, const char *path)
{
    char buf[128];
    FILE *f = fopen(path, "r");
    size_t n = 0;
    if (f != NULL) {
        n = fread(buf, 1, sizeof(buf), f);
        fclose(f);
    }
    tt_sha256_update(hash, buf, n);
    return n;
}

static void hash_namespace(tt_sha256_t *hash, const char *path)
{
    struct stat st;
    uint64_t ino = stat(path, &st) == 0 ? (uint64_t)st.st_ino : 0;
    tt_sha256_update(hash, &ino, sizeof(ino));
}

tutti_status_t tt_host_identify(tt_host_id_t *id)
{
    tt_sha256_t hash, machine;
    size_t boot_id;

    memset(id, 0, sizeof(*id));
    if (gethostname(id->hostname, sizeof(id->hostname) - 1) != 0)
        strcpy(id->hostname, "unknown");
    tt_sha256_init(&hash);
    tt_sha256_update(&hash, id->hostname, strlen(id->hostname));
    hash_file(&hash, "/proc/sys/kernel/random/boot_id");
    hash_namespace(&hash, "/proc/self/ns/net");
    hash_namespace(&hash, "/proc/self/ns/pid");
    tt_sha256_final(&hash, id->digest);
    /* The machine is its kernel boot; without a boot id, only the host is known. */
    tt_sha256_init(&machine);
    boot_id = hash_file(&machine, "/proc/sys/kernel/random/boot_id");
    tt_sha256_final(&machine, id->machine);
    if (boot_id == 0)
        memcpy(id->machine, id->digest, sizeof(id->machine));
    return TUTTI_OK;
}

int tt_host_same_machine(const tt_host_id_t *a, const tt_host_id_t *b)
{
    return memcmp(a->machine, b->machine, sizeof(a->machine)) == 0;
}

int tt_host_same(const tt_host_id_t *a, const tt_host_id_t *b)
{
    return memcmp(a->digest, b->digest, sizeof(a->digest)) == 0;
}
