/* The host's rails as the user names them (TUTTI_RAILS); see topo.h. */
#include "config.h"

#include "topo/topo.h"
#include "util/log.h"

#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Is @p name a network interface or an RDMA device of this host? */
static int exists_here(const char *name)
{
    char path[64 + TT_TOPO_NAME_MAX];

    if (if_nametoindex(name) != 0)
        return 1;
    snprintf(path, sizeof(path), "/sys/class/infiniband/%s", name);
    return access(path, F_OK) == 0;
}

/* The NIC of @p topo called @p name (its RDMA device or its interface), or NULL. */
static const tt_nic_t *find_nic(const tt_host_topo_t *topo, const char *name)
{
    for (int i = 0; i < topo->nnics && i < TT_TOPO_MAX_NICS; i++)
        if (strcmp(topo->nics[i].name, name) == 0 || strcmp(topo->nics[i].netdev, name) == 0)
            return &topo->nics[i];
    return NULL;
}

/* Append the rail called @p name (@p len bytes, not terminated) to @p rails. */
static tutti_status_t add_rail(const tt_host_topo_t *found, const char *name, size_t len,
                               tt_host_topo_t *rails, int live)
{
    char wanted[TT_TOPO_NAME_MAX];
    const tt_nic_t *nic;

    if (len == 0 || len >= sizeof(wanted)) {
        tt_error("TUTTI_RAILS: '%.*s' is not a device name", (int)len, name);
        return TUTTI_ERR_INVALID_ARG;
    }
    memcpy(wanted, name, len);
    wanted[len] = '\0';
    if (find_nic(rails, wanted) != NULL || rails->nnics == TT_TOPO_MAX_NICS) {
        tt_error("TUTTI_RAILS: %s", rails->nnics == TT_TOPO_MAX_NICS ? "more than 32 devices"
                                                                     : "a device is named twice");
        return TUTTI_ERR_INVALID_ARG;
    }
    nic = find_nic(found, wanted);
    if (nic != NULL) {
        rails->nics[rails->nnics++] = *nic;
        return TUTTI_OK;
    }
    if (live && !exists_here(wanted))
        tt_warn("TUTTI_RAILS: %s is neither a network interface nor an RDMA device here", wanted);
    rails->nics[rails->nnics++] = (tt_nic_t){.kind = TT_NIC_ETHERNET, .numa = -1, .package = -1};
    memcpy(rails->nics[rails->nnics - 1].name, wanted, len + 1);
    memcpy(rails->nics[rails->nnics - 1].netdev, wanted, len + 1);
    return TUTTI_OK;
}

tutti_status_t tt_topo_set_rails(tt_host_topo_t *topo, const char *list, int live)
{
    tt_host_topo_t rails = {.nnics = 0};

    if (list == NULL || list[0] == '\0')
        return TUTTI_OK;
    for (const char *p = list;; p++) {
        size_t len = strcspn(p, ",");
        TT_CHECK(add_rail(topo, p, len, &rails, live));
        p += len;
        if (*p == '\0')
            break;
    }
    memcpy(topo->nics, rails.nics, sizeof(rails.nics));
    topo->nnics = rails.nnics;
    return TUTTI_OK;
}
