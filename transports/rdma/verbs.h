/*
 * libibverbs, loaded at run time. libtutti does not link against it: on a
 * machine without rdma-core the library still loads, and the RDMA transport
 * says why it is off. Only the calls that are real functions in
 * libibverbs.so.1 are looked up; posting and polling are inline in the
 * header (they go through the device context's own table) and need nothing.
 */
#ifndef TT_RDMA_VERBS_H
#define TT_RDMA_VERBS_H

#include <infiniband/verbs.h>

#include <stddef.h>

/* The libibverbs functions the transport calls, by their library names. */
typedef struct tt_verbs {
    struct ibv_device **(*get_device_list)(int *num_devices);
    void (*free_device_list)(struct ibv_device **list);
    const char *(*get_device_name)(struct ibv_device *device);
    struct ibv_context *(*open_device)(struct ibv_device *device);
    int (*close_device)(struct ibv_context *context);
    int (*query_device)(struct ibv_context *context, struct ibv_device_attr *attr);
    /* the compatibility entry point: fills the fields older headers knew */
    int (*query_port)(struct ibv_context *context, uint8_t port,
                      struct _compat_ibv_port_attr *attr);
    int (*query_gid)(struct ibv_context *context, uint8_t port, int index, union ibv_gid *gid);
    struct ibv_pd *(*alloc_pd)(struct ibv_context *context);
    int (*dealloc_pd)(struct ibv_pd *pd);
    struct ibv_mr *(*reg_mr)(struct ibv_pd *pd, void *addr, size_t length, int access);
    int (*dereg_mr)(struct ibv_mr *mr);
    struct ibv_cq *(*create_cq)(struct ibv_context *context, int cqe, void *cq_context,
                                struct ibv_comp_channel *channel, int comp_vector);
    int (*destroy_cq)(struct ibv_cq *cq);
    struct ibv_qp *(*create_qp)(struct ibv_pd *pd, struct ibv_qp_init_attr *attr);
    int (*modify_qp)(struct ibv_qp *qp, struct ibv_qp_attr *attr, int attr_mask);
    int (*destroy_qp)(struct ibv_qp *qp);
    int (*get_async_event)(struct ibv_context *context, struct ibv_async_event *event);
    void (*ack_async_event)(struct ibv_async_event *event);
    const char *(*wc_status_str)(enum ibv_wc_status status);
    const char *(*event_type_str)(enum ibv_event_type event);
} tt_verbs_t;

/*
 * The loaded functions, or NULL with the reason in @p why (no
 * libibverbs.so.1, a missing symbol). Loads once per process; thread-safe.
 */
const tt_verbs_t *tt_verbs_load(char *why, size_t why_size);

/* Port attributes through @p v (the header's ibv_query_port is an inline wrapper). */
int tt_verbs_query_port(const tt_verbs_t *v, struct ibv_context *context, uint8_t port,
                        struct ibv_port_attr *attr);

#endif
