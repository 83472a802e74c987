/* Job-private shared-memory segments; see segment.h. */
#include "config.h"

#include "transports/shm/segment.h"

#include "util/log.h"
#include "util/random.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

tutti_status_t tt_shm_segment_create(uint64_t comm_ctx, int rank, size_t size,
                                     char name[TT_SHM_NAME_MAX], void **base_p)
{
    uint32_t salt;
    char path[TT_SHM_NAME_MAX + 1];
    void *base;
    int fd;

    TT_CHECK(tt_random_bytes(&salt, sizeof(salt)));
    /* The creator's pid comes first so that tt_shm_segment_sweep can tell who owns it. */
    snprintf(name, TT_SHM_NAME_MAX, TT_SHM_NAME_PREFIX "%d-%016llx-%d-%08x", (int)getpid(),
             (unsigned long long)comm_ctx, rank, salt);
    snprintf(path, sizeof(path), "/%s", name);
    fd = shm_open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, S_IRUSR | S_IWUSR);
    if (fd < 0) {
        tt_error("shm: cannot create segment %s: %s", path, strerror(errno));
        return TUTTI_ERR_SYSTEM;
    }
    if (ftruncate(fd, (off_t)size) != 0) {
        tt_error("shm: cannot size segment %s to %zu bytes: %s", path, size, strerror(errno));
        goto err_unlink;
    }
    base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (base == MAP_FAILED) {
        tt_error("shm: cannot map segment %s: %s", path, strerror(errno));
        goto err_unlink;
    }
    close(fd);
    *base_p = base;
    return TUTTI_OK;

err_unlink:
    close(fd);
    shm_unlink(path);
    return TUTTI_ERR_SYSTEM;
}

tutti_status_t tt_shm_segment_open(const char *name, size_t size, void **base_p)
{
    char path[TT_SHM_NAME_MAX + 1];
    struct stat st;
    void *base;
    int fd;

    snprintf(path, sizeof(path), "/%s", name);
    fd = shm_open(path, O_RDWR | O_CLOEXEC, 0);
    if (fd < 0) {
        tt_error("shm: cannot open peer segment %s: %s", path, strerror(errno));
        return TUTTI_ERR_SYSTEM;
    }
    if (fstat(fd, &st) != 0 || (size_t)st.st_size != size) {
        tt_error("shm: peer segment %s has the wrong size", path);
        close(fd);
        return TUTTI_ERR_PROTOCOL;
    }
    base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (base == MAP_FAILED) {
        tt_error("shm: cannot map peer segment %s: %s", path, strerror(errno));
        return TUTTI_ERR_SYSTEM;
    }
    *base_p = base;
    return TUTTI_OK;
}

void tt_shm_segment_unlink(const char *name)
{
    char path[TT_SHM_NAME_MAX + 1];
    snprintf(path, sizeof(path), "/%s", name);
    if (shm_unlink(path) != 0 && errno != ENOENT)
        tt_warn("shm: cannot remove segment %s: %s", path, strerror(errno));
}

void tt_shm_segment_unmap(void *base, size_t size)
{
    if (base != NULL)
        munmap(base, size);
}

void tt_shm_segment_sweep(void)
{
    DIR *dir = opendir("/dev/shm");
    struct dirent *entry;
    size_t prefix = strlen(TT_SHM_NAME_PREFIX);

    if (dir == NULL)
        return;
    while ((entry = readdir(dir)) != NULL) {
        char *end;
        long pid;
        if (strncmp(entry->d_name, TT_SHM_NAME_PREFIX, prefix) != 0)
            continue;
        pid = strtol(entry->d_name + prefix, &end, 10);
        if (*end != '-' || pid <= 0)
            continue;
        if (kill((pid_t)pid, 0) != 0 && errno == ESRCH) {
            tt_info("shm: removing segment %s left by dead process %ld", entry->d_name, pid);
            tt_shm_segment_unlink(entry->d_name);
        }
    }
    closedir(dir);
}
