/* One RC queue pair with a chosen ack timeout and retry count, for timing
 * how a link fault surfaces as a completion error. perftest cannot set both
 * (its retry count applies only with rdma_cm, which then picks the timeout),
 * so test_rdma_vm.sh builds this instead. The two sides swap their QP
 * numbers, PSNs, GIDs and buffer keys through files in a folder both see
 * (scripts/rdma-vm.sh's RDMA_VM_DIR), so no TCP connection is involved.
 *
 *   rdma_fault_probe DIR server|client DEVICE GID_INDEX TIMEOUT RETRY [SIZE]
 *
 * The server sets up its QP, creates DIR/server.ready and waits (the target
 * of RDMA writes needs no CPU). The client RDMA-writes SIZE bytes (64 KiB by
 * default), 16 at a time, prints "running TIME" after 200 writes, and at the
 * first failed completion prints "error TIME status N (TEXT) ..." and exits
 * 1. TIME is the wall clock in seconds; TIMEOUT is the IB exponent
 * (4.096 us * 2^TIMEOUT per try). Exit 2: setup failed. */
#include <infiniband/verbs.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum { PORT = 1, OUTSTANDING = 16, QUEUE = 32 };

struct qp_info {
    uint32_t qpn, psn, rkey;
    uint64_t addr;
    union ibv_gid gid;
};

struct probe {
    const char *dir;
    int server, gid_index, timeout, retry;
    size_t size;
    char *buf;
    struct ibv_context *ctx;
    struct ibv_pd *pd;
    struct ibv_mr *mr;
    struct ibv_cq *cq;
    struct ibv_qp *qp;
    struct qp_info me, peer;
};

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void fail(const char *what)
{
    fprintf(stderr, "rdma_fault_probe: %s failed\n", what);
    exit(2);
}

static struct ibv_context *open_device(const char *name)
{
    struct ibv_device **list = ibv_get_device_list(NULL);
    struct ibv_context *ctx = NULL;
    for (int i = 0; list && list[i]; i++)
        if (strcmp(ibv_get_device_name(list[i]), name) == 0)
            ctx = ibv_open_device(list[i]);
    if (list)
        ibv_free_device_list(list);
    if (!ctx)
        fail("opening the device");
    return ctx;
}

static void create_qp(struct probe *p)
{
    struct ibv_qp_init_attr attr = {
        .qp_type = IBV_QPT_RC,
        .cap = { .max_send_wr = QUEUE, .max_recv_wr = 1, .max_send_sge = 1, .max_recv_sge = 1 },
    };
    p->pd = ibv_alloc_pd(p->ctx);
    p->buf = calloc(1, p->size);
    if (!p->pd || !p->buf)
        fail("allocating");
    p->mr = ibv_reg_mr(p->pd, p->buf, p->size, IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE);
    p->cq = ibv_create_cq(p->ctx, 2 * QUEUE, NULL, NULL, 0);
    if (!p->mr || !p->cq)
        fail("registering memory or creating the CQ");
    attr.send_cq = attr.recv_cq = p->cq;
    p->qp = ibv_create_qp(p->pd, &attr);
    if (!p->qp)
        fail("creating the QP");
    p->me.qpn = p->qp->qp_num;
    p->me.psn = (uint32_t)getpid() & 0xffffff;
    p->me.rkey = p->mr->rkey;
    p->me.addr = (uintptr_t)p->buf;
    if (ibv_query_gid(p->ctx, PORT, p->gid_index, &p->me.gid))
        fail("reading the GID");
}

/* Publishes this side's info as DIR/ROLE.info (renamed into place, so the
 * peer never reads half of it) and waits for the peer's. */
static void swap_info(struct probe *p)
{
    char path[4096], tmp[4200];
    FILE *f;
    snprintf(path, sizeof path, "%s/%s.info", p->dir, p->server ? "server" : "client");
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    f = fopen(tmp, "w");
    if (!f || fwrite(&p->me, sizeof p->me, 1, f) != 1 || fclose(f) != 0 || rename(tmp, path) != 0)
        fail("writing this side's info");
    snprintf(path, sizeof path, "%s/%s.info", p->dir, p->server ? "client" : "server");
    for (;;) {
        f = fopen(path, "r");
        if (f && fread(&p->peer, sizeof p->peer, 1, f) == 1)
            break;
        if (f)
            fclose(f);
        usleep(50000);
    }
    fclose(f);
}

static void connect_qp(struct probe *p)
{
    struct ibv_qp_attr a = { .qp_state = IBV_QPS_INIT, .port_num = PORT,
                             .qp_access_flags = IBV_ACCESS_REMOTE_WRITE };
    if (ibv_modify_qp(p->qp, &a, IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT | IBV_QP_ACCESS_FLAGS))
        fail("moving the QP to INIT");
    memset(&a, 0, sizeof a);
    a.qp_state = IBV_QPS_RTR;
    a.path_mtu = IBV_MTU_1024;
    a.dest_qp_num = p->peer.qpn;
    a.rq_psn = p->peer.psn;
    a.max_dest_rd_atomic = 1;
    a.min_rnr_timer = 12;
    a.ah_attr.is_global = 1;
    a.ah_attr.grh.dgid = p->peer.gid;
    a.ah_attr.grh.sgid_index = (uint8_t)p->gid_index;
    a.ah_attr.grh.hop_limit = 64;
    a.ah_attr.port_num = PORT;
    if (ibv_modify_qp(p->qp, &a, IBV_QP_STATE | IBV_QP_AV | IBV_QP_PATH_MTU | IBV_QP_DEST_QPN |
                      IBV_QP_RQ_PSN | IBV_QP_MAX_DEST_RD_ATOMIC | IBV_QP_MIN_RNR_TIMER))
        fail("moving the QP to RTR");
    memset(&a, 0, sizeof a);
    a.qp_state = IBV_QPS_RTS;
    a.timeout = (uint8_t)p->timeout;
    a.retry_cnt = (uint8_t)p->retry;
    a.sq_psn = p->me.psn;
    a.max_rd_atomic = 1;
    if (ibv_modify_qp(p->qp, &a, IBV_QP_STATE | IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT | IBV_QP_RNR_RETRY |
                      IBV_QP_SQ_PSN | IBV_QP_MAX_QP_RD_ATOMIC))
        fail("moving the QP to RTS");
}

/* The server says it is ready only once its QP can take writes: a client
 * writing earlier would see its first packets dropped. */
static void serve_or_wait(struct probe *p)
{
    char path[4096];
    FILE *f;
    snprintf(path, sizeof path, "%s/server.ready", p->dir);
    if (p->server) {
        f = fopen(path, "w");
        if (!f || fclose(f) != 0)
            fail("writing server.ready");
        for (;;)
            pause();
    }
    while (access(path, F_OK) != 0)
        usleep(50000);
}

static void post_write(struct probe *p, uint64_t id)
{
    struct ibv_sge sge = { .addr = (uintptr_t)p->buf, .length = (uint32_t)p->size, .lkey = p->mr->lkey };
    struct ibv_send_wr wr = { .wr_id = id, .sg_list = &sge, .num_sge = 1,
                              .opcode = IBV_WR_RDMA_WRITE, .send_flags = IBV_SEND_SIGNALED,
                              .wr.rdma = { .remote_addr = p->peer.addr, .rkey = p->peer.rkey } };
    struct ibv_send_wr *bad;
    if (ibv_post_send(p->qp, &wr, &bad))
        fail("posting a write");
}

static int write_until_error(struct probe *p)
{
    long done = 0, posted = 0;
    double last_success = now();
    for (;;) {
        struct ibv_wc wc;
        int n;
        while (posted - done < OUTSTANDING)
            post_write(p, (uint64_t)posted++);
        n = ibv_poll_cq(p->cq, 1, &wc);
        if (n < 0)
            fail("polling the CQ");
        if (n == 0)
            continue;
        if (wc.status != IBV_WC_SUCCESS) {
            double t = now();
            printf("error %.6f status %d (%s) after %ld writes, %.3f s after the last success\n", t,
                   wc.status, ibv_wc_status_str(wc.status), done, t - last_success);
            return 1;
        }
        done++;
        last_success = now();
        if (done == 200) {
            printf("running %.6f\n", last_success);
            fflush(stdout);
        }
    }
}

int main(int argc, char **argv)
{
    struct probe p = { 0 };
    if (argc < 7 || (strcmp(argv[2], "server") != 0 && strcmp(argv[2], "client") != 0)) {
        fprintf(stderr, "usage: rdma_fault_probe DIR server|client DEVICE GID_INDEX TIMEOUT RETRY [SIZE]\n");
        return 2;
    }
    p.dir = argv[1];
    p.server = strcmp(argv[2], "server") == 0;
    p.gid_index = atoi(argv[4]);
    p.timeout = atoi(argv[5]);
    p.retry = atoi(argv[6]);
    p.size = argc > 7 ? (size_t)atol(argv[7]) : 65536;
    p.ctx = open_device(argv[3]);
    create_qp(&p);
    swap_info(&p);
    connect_qp(&p);
    serve_or_wait(&p);
    return write_until_error(&p);
}
