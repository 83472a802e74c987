/* Ranks in emulated hosts (network namespaces); see netns.h. */
#define _GNU_SOURCE
#include "tests/lib/netns.h"

#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

/* Namespace number @p index of TT_TEST_NETNS in @p name; how many there are (0: unset). */
static int netns_name(int index, char *name, size_t len)
{
    const char *p = getenv("TT_TEST_NETNS");
    int count = 0;

    if (p == NULL || *p == '\0')
        return 0;
    for (;;) {
        size_t n = strcspn(p, ",");
        if (count++ == index)
            snprintf(name, len, "%.*s", (int)n, p);
        if (p[n] == '\0')
            return count;
        p += n + 1;
    }
}

/* Join the namespace called @p name; 0 on success. */
static int join(const char *name)
{
    char path[256];
    int fd, rc;

    snprintf(path, sizeof(path), "/var/run/netns/%s", name);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "netns: cannot open %s (run scripts/cluster.sh up)\n", path);
        return -1;
    }
    rc = setns(fd, CLONE_NEWNET);
    close(fd);
    if (rc != 0) {
        fprintf(stderr, "netns: cannot enter %s\n", name);
        return rc;
    }
    return 0;
}

tutti_status_t tt_netns_unique_id(tutti_unique_id_t *id)
{
    char first[128];
    int home, status;

    if (netns_name(0, first, sizeof(first)) == 0)
        return tutti_get_unique_id(id);
    /* Listen inside the first namespace, then come back. */
    home = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    if (home < 0 || join(first) != 0) {
        if (home >= 0)
            close(home);
        return TUTTI_ERR_SYSTEM;
    }
    status = tutti_get_unique_id(id);
    if (setns(home, CLONE_NEWNET) != 0)
        status = TUTTI_ERR_SYSTEM;
    close(home);
    return status;
}

/*
 * Show this process the namespace's own /sys, as ip netns exec does: UCX
 * finds network devices in /sys/class/net.
 */
static int remount_sys(void)
{
    if (unshare(CLONE_NEWNS) != 0 || mount("", "/", NULL, MS_SLAVE | MS_REC, NULL) != 0 ||
        umount2("/sys", MNT_DETACH) != 0 || mount("sysfs", "/sys", "sysfs", 0, NULL) != 0) {
        perror("netns: remounting /sys");
        return -1;
    }
    return 0;
}

int tt_netns_enter(int rank, int nranks)
{
    char name[128];
    int hosts = netns_name(0, name, sizeof(name));

    if (hosts == 0)
        return 0;
    netns_name((int)((long)rank * hosts / nranks), name, sizeof(name));
    return join(name) != 0 ? -1 : remount_sys();
}
