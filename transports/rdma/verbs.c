/* Loading libibverbs at run time; see verbs.h. */
#include "config.h"

#include "transports/rdma/verbs.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

static tt_verbs_t verbs;
static char load_error[160];
static pthread_once_t load_once = PTHREAD_ONCE_INIT;

/* Each entry: the library's name for the function, and where it goes. */
#define VERB(name)                         \
    {                                      \
        "ibv_" #name, (void **)&verbs.name \
    }

static void load(void)
{
    const struct {
        const char *symbol;
        void **slot;
    } table[] = {
        VERB(get_device_list), VERB(free_device_list), VERB(get_device_name), VERB(open_device),
        VERB(close_device),    VERB(query_device),     VERB(query_port),      VERB(query_gid),
        VERB(alloc_pd),        VERB(dealloc_pd),       VERB(reg_mr),          VERB(dereg_mr),
        VERB(create_cq),       VERB(destroy_cq),       VERB(create_qp),       VERB(modify_qp),
        VERB(destroy_qp),      VERB(get_async_event),  VERB(ack_async_event), VERB(wc_status_str),
        VERB(event_type_str),
    };
    void *lib = dlopen("libibverbs.so.1", RTLD_NOW | RTLD_LOCAL);

    if (lib == NULL) {
        snprintf(load_error, sizeof(load_error),
                 "cannot load libibverbs.so.1 (install rdma-core "
                 "and ibverbs-providers): %s",
                 dlerror());
        return;
    }
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
        *table[i].slot = dlsym(lib, table[i].symbol);
        if (*table[i].slot == NULL) {
            snprintf(load_error, sizeof(load_error), "libibverbs.so.1 has no %s", table[i].symbol);
            dlclose(lib);
            return;
        }
    }
    /* Kept loaded for the life of the process: providers stay mapped with it. */
}

const tt_verbs_t *tt_verbs_load(char *why, size_t why_size)
{
    pthread_once(&load_once, load);
    if (load_error[0] != '\0') {
        snprintf(why, why_size, "%s", load_error);
        return NULL;
    }
    return &verbs;
}

int tt_verbs_query_port(const tt_verbs_t *v, struct ibv_context *context, uint8_t port,
                        struct ibv_port_attr *attr)
{
    memset(attr, 0, sizeof(*attr));
    return v->query_port(context, port, (struct _compat_ibv_port_attr *)(void *)attr);
}
