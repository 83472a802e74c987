/*
 * gloo-perf: the tutti-perf measurement on Gloo's collectives (the library
 * under PyTorch's CPU backend), over Gloo's TCP transport, for comparisons
 * run the same way (same loop, sizes, checks and table).
 *
 *   tutti-run -n 4 gloo-perf allreduce -b 8 -e 64M -f 2
 *
 * Ranks come from the launcher's environment (RANK and WORLD_SIZE as
 * tutti-run and torchrun set them, or Open MPI's OMPI_COMM_WORLD_RANK and
 * _SIZE) and meet through a gloo::rendezvous::FileStore: ranks on one
 * machine share its file system even in different network namespaces. The
 * directory is GLOO_PERF_STORE, else /tmp/gloo-perf-<job>, where the job is
 * MASTER_PORT (or Open MPI's PMIX_NAMESPACE); the keys carry the job as a
 * prefix too. Once every rank is connected each rank removes its keys, so a
 * run that dies later leaves nothing behind; one killed during the
 * rendezvous leaves its keys, and a later job on the same MASTER_PORT then
 * fails at once ("File already exists") until the directory is removed.
 * A rank listens on the interface
 * GLOO_SOCKET_IFNAME names, else on the address it reaches MASTER_ADDR from
 * (its own host's, in a namespace), else on 127.0.0.1.
 *
 * Gloo has no bf16 and no avg: those rows print as unsupported. It has no
 * nonblocking collectives: -z 0 runs the blocking ones. Its fp16 reductions
 * can leave elements unwritten (see half_op()): fp16 uses this file's. Where Gloo's forms
 * differ from tutti's, the call does what a program porting between them
 * would (the extra work counted in the time):
 *   - reduce: Gloo's ring writes the output buffer on every rank, so away
 *     from the root the output is scratch memory and the receive buffer is
 *     left alone;
 *   - reduce-scatter: Gloo has only the old-style algorithm object
 *     ReduceScatterHalvingDoubling, built for each call. It reduces the
 *     whole input in place and leaves this rank's block at its start: out
 *     of place the input is copied to scratch first (the send buffer must
 *     not change), and the block is then moved to where tutti puts it;
 *   - all-to-all and all-to-all-v in place: Gloo's receive into the output
 *     while they still send from the input, so one buffer cannot be both:
 *     the input is copied to scratch first. Gloo's all-to-all-v takes a
 *     count per rank and packs the blocks in rank order, as the benchmark
 *     lays them out.
 */
extern "C" {
#include "perf_common.h"
}

#include <gloo/allgather.h>
#include <gloo/allreduce.h>
#include <gloo/alltoall.h>
#include <gloo/alltoallv.h>
#include <gloo/barrier.h>
#include <gloo/broadcast.h>
#include <gloo/config.h>
#include <gloo/math.h>
#include <gloo/reduce.h>
#include <gloo/reduce_scatter.h>
#include <gloo/rendezvous/context.h>
#include <gloo/rendezvous/file_store.h>
#include <gloo/rendezvous/prefix_store.h>
#include <gloo/transport/tcp/device.h>
#include <gloo/types.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <netdb.h>
#include <stdexcept>
#include <string>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

/* Error codes this backend returns; error_string() gives the last one's details. */
enum { GP_ERR_ENV = 1, GP_ERR_GLOO, GP_ERR_SIZE };

/* Per process: the connected context and scratch memory (reduce, reduce-scatter). */
typedef struct gloo_perf {
    std::shared_ptr<gloo::Context> context;
    std::vector<unsigned char> scratch;
} gloo_perf_t;

/*
 * What the last failure was. error_string() takes no context, so like
 * mpi-perf's text buffer this one is file-wide.
 */
static char last_error[1024];

static int failure(int err, const char *format, ...)
{
    va_list ap;
    va_start(ap, format);
    vsnprintf(last_error, sizeof(last_error), format, ap);
    va_end(ap);
    return err;
}

/* Run @p body; an exception (Gloo's, or std::bad_alloc) becomes GP_ERR_GLOO. */
template <typename F> static int guarded(F body)
{
    try {
        body();
        return 0;
    } catch (const std::exception &e) {
        return failure(GP_ERR_GLOO, "%s", e.what());
    }
}

/* The value of the first of @p names that is set, or NULL. */
static const char *first_env(const char *const *names, size_t n)
{
    for (size_t k = 0; k < n; k++) {
        const char *value = getenv(names[k]);
        if (value != NULL)
            return value;
    }
    return NULL;
}

/* A non-negative integer from the first of @p names that is set; -1 if none is. */
static int env_int(const char *const *names, size_t n)
{
    const char *text = first_env(names, n);
    char *end;
    long v;

    if (text == NULL)
        return -1;
    v = strtol(text, &end, 10);
    return end != text && *end == '\0' && v >= 0 && v <= INT_MAX ? (int)v : -1;
}

/* What names this job, the same on every rank: MASTER_PORT, or Open MPI's job; NULL if none. */
static const char *job_name(void)
{
    static const char *const names[] = {"MASTER_PORT", "PMIX_NAMESPACE"};
    return first_env(names, 2);
}

/* The address this host reaches @p host from (a UDP connect sends nothing; it only routes). */
static std::string local_address_toward(const char *host)
{
    struct addrinfo hints = {}, *ai = NULL;
    struct sockaddr_storage local;
    socklen_t len = sizeof(local);
    char text[NI_MAXHOST] = "";
    int fd = -1, ok = 0;

    hints.ai_socktype = SOCK_DGRAM;
    if (getaddrinfo(host, "9", &hints, &ai) == 0) {
        fd = socket(ai->ai_family, SOCK_DGRAM, 0);
        ok = fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) == 0 &&
             getsockname(fd, (struct sockaddr *)&local, &len) == 0 &&
             getnameinfo((struct sockaddr *)&local, len, text, sizeof(text), NULL, 0,
                         NI_NUMERICHOST) == 0;
        if (fd >= 0)
            close(fd);
        freeaddrinfo(ai);
    }
    if (!ok)
        throw std::runtime_error(std::string("no local address reaches MASTER_ADDR ") + host);
    return text;
}

/* Where this rank listens (see the top of the file). */
static gloo::transport::tcp::attr device_attr(void)
{
    gloo::transport::tcp::attr attr;
    const char *iface = getenv("GLOO_SOCKET_IFNAME");
    const char *master = getenv("MASTER_ADDR");

    if (iface != NULL && iface[0] != '\0')
        attr.iface = iface;
    else
        attr.hostname = master != NULL ? local_address_toward(master) : "127.0.0.1";
    return attr;
}

/*
 * The rendezvous directory, as this rank uses it: when it goes, it removes
 * the keys this rank wrote and, if the directory is the default one, the
 * directory (which only the last rank to leave finds empty).
 */
class key_dir_t : public gloo::rendezvous::FileStore
{
  public:
    key_dir_t(const std::string &path, bool remove_dir) : FileStore(path), remove_dir_(remove_dir)
    {
    }

    ~key_dir_t() override
    {
        for (const std::string &key : getAllKeyFilePaths())
            unlink(key.c_str());
        if (remove_dir_)
            rmdir(basePath_.c_str());
    }

  private:
    bool remove_dir_;
};

/* Connect this rank to all the others through the store in @p dir; throws on failure. */
static std::shared_ptr<gloo::Context> connect_all(const std::string &dir, bool own_dir,
                                                  const std::string &job, int rank, int nranks)
{
    auto context = std::make_shared<gloo::rendezvous::Context>(rank, nranks);
    auto device = gloo::transport::tcp::CreateDevice(device_attr());

    /* Every rank makes the directory; whoever comes second finds it there. */
    if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)
        throw std::runtime_error("cannot make " + dir + ": " + strerror(errno));
    key_dir_t keys(dir, own_dir);
    gloo::rendezvous::PrefixStore store("gloo-perf-" + job, keys);
    context->connectFullMesh(store, device);
    /* Every rank has read every key once all are connected: then the keys can go. */
    gloo::BarrierOptions everyone(context);
    gloo::barrier(everyone);
    return context;
}

static int gp_init(void **ctx_p, int *rank_p, int *nranks_p)
{
    static const char *const rank_names[] = {"RANK", "OMPI_COMM_WORLD_RANK"};
    static const char *const size_names[] = {"WORLD_SIZE", "OMPI_COMM_WORLD_SIZE"};
    int rank = env_int(rank_names, 2), nranks = env_int(size_names, 2);
    const char *store = getenv("GLOO_PERF_STORE"), *job = job_name();
    gloo_perf_t *g = NULL;
    std::string dir;
    int err;

    if (rank < 0 || nranks < 1 || rank >= nranks)
        return failure(GP_ERR_ENV, "no rank and size in the environment (RANK and WORLD_SIZE, "
                                   "or OMPI_COMM_WORLD_RANK and _SIZE): start it with tutti-run");
    if (store == NULL && job == NULL)
        return failure(GP_ERR_ENV, "no MASTER_PORT to name the rendezvous: set GLOO_PERF_STORE "
                                   "to a directory every rank sees");
    dir = store != NULL ? store : std::string("/tmp/gloo-perf-") + job;
    err = guarded([&] {
        g = new gloo_perf_t{connect_all(dir, store == NULL, job ? job : "", rank, nranks), {}};
    });
    if (err != 0)
        return err;
    *ctx_p = g;
    *rank_p = rank;
    *nranks_p = nranks;
    return 0;
}

static void gp_describe(void *ctx, char *text, size_t len)
{
    (void)ctx;
    snprintf(text, len, "Gloo %d.%d.%d (Debian libgloo-dev), tcp transport", GLOO_VERSION_MAJOR,
             GLOO_VERSION_MINOR, GLOO_VERSION_PATCH);
}

/* out[i] = a[i] op b[i] for n elements: the form the new-style collectives take. */
typedef void reduce_fn_t(void *out, const void *a, const void *b, size_t n);

/* Gloo's element-wise reduction of @p op on T (math.h). */
template <typename T> static reduce_fn_t *reduction(perf_op_t op)
{
    switch (op) {
    case PERF_SUM: return gloo::sum<T>;
    case PERF_PROD: return gloo::product<T>;
    case PERF_MIN: return gloo::min<T>;
    default: return gloo::max<T>;
    }
}

/* The same for the old-style reduce-scatter. */
template <typename T> static const gloo::ReductionFunction<T> *reduction_function(perf_op_t op)
{
    switch (op) {
    case PERF_SUM: return gloo::ReductionFunction<T>::sum;
    case PERF_PROD: return gloo::ReductionFunction<T>::product;
    case PERF_MIN: return gloo::ReductionFunction<T>::min;
    default: return gloo::ReductionFunction<T>::max;
    }
}

/*
 * fp16 has its own reductions: gloo::float16's copy assignment skips the
 * store when the destination's old bits, read as an integer, convert to the
 * new value (its operator!= compares with rhs.x as a number), so Gloo's
 * sum<float16> and the others leave stale elements in memory that held
 * other data (reduce's scratch after an earlier type: wrong results). These
 * compute in float as Gloo does and store the bits.
 */
template <perf_op_t OP> static void half_op(void *out, const void *a, const void *b, size_t n)
{
    gloo::float16 *c = (gloo::float16 *)out;
    const gloo::float16 *x = (const gloo::float16 *)a, *y = (const gloo::float16 *)b;

    for (size_t i = 0; i < n; i++) {
        float u = gloo::cpu_half2float(x[i]), v = gloo::cpu_half2float(y[i]);
        float r = OP == PERF_SUM    ? u + v
                  : OP == PERF_PROD ? u * v
                  : OP == PERF_MIN  ? std::min(u, v)
                                    : std::max(u, v);
        c[i].x = gloo::cpu_float2half_rn(r).x;
    }
}

template <> reduce_fn_t *reduction<gloo::float16>(perf_op_t op)
{
    switch (op) {
    case PERF_SUM: return half_op<PERF_SUM>;
    case PERF_PROD: return half_op<PERF_PROD>;
    case PERF_MIN: return half_op<PERF_MIN>;
    default: return half_op<PERF_MAX>;
    }
}

/* a[i] = a[i] op b[i]: the old-style form. */
template <perf_op_t OP> static void half_op_into(gloo::float16 *a, const gloo::float16 *b, size_t n)
{
    half_op<OP>(a, a, b, n);
}

template <>
const gloo::ReductionFunction<gloo::float16> *reduction_function<gloo::float16>(perf_op_t op)
{
    typedef gloo::ReductionFunction<gloo::float16> fn_t;
    static const fn_t sum(gloo::SUM, half_op_into<PERF_SUM>);
    static const fn_t product(gloo::PRODUCT, half_op_into<PERF_PROD>);
    static const fn_t min(gloo::MIN, half_op_into<PERF_MIN>);
    static const fn_t max(gloo::MAX, half_op_into<PERF_MAX>);

    switch (op) {
    case PERF_SUM: return &sum;
    case PERF_PROD: return &product;
    case PERF_MIN: return &min;
    default: return &max;
    }
}

/* At least @p bytes of scratch memory, kept for the next call. */
static void *scratch(gloo_perf_t *g, size_t bytes)
{
    if (g->scratch.size() < bytes)
        g->scratch.resize(bytes);
    return g->scratch.data();
}

template <typename T> static void reduce_scatter(gloo_perf_t *g, const perf_call_t *c)
{
    size_t nranks = (size_t)g->context->size, bytes = c->count * sizeof(T);
    void *whole = (void *)c->sendbuf; /* in place, the send buffer is the receive buffer */

    if (!c->in_place) {
        whole = scratch(g, nranks * bytes);
        memcpy(whole, c->sendbuf, nranks * bytes);
    }
    gloo::ReduceScatterHalvingDoubling<T> algorithm(
        g->context, {(T *)whole}, (int)(c->count * nranks), std::vector<int>(nranks, (int)c->count),
        reduction_function<T>(c->op));
    algorithm.run();
    if (c->recvbuf != whole)
        memmove(c->recvbuf, whole, bytes);
}

/* In place, a copy of the first @p n elements of the input, in scratch memory; else the input. */
template <typename T> static T *alltoall_input(gloo_perf_t *g, const perf_call_t *c, size_t n)
{
    void *copy;

    if (!c->in_place)
        return (T *)c->sendbuf;
    copy = scratch(g, n * sizeof(T));
    memcpy(copy, c->sendbuf, n * sizeof(T));
    return (T *)copy;
}

/* @p n counts as Gloo takes them; throws unless @p displs packs them in rank order. */
static std::vector<int64_t> packed_counts(const size_t *counts, const size_t *displs, size_t n)
{
    std::vector<int64_t> v(n);
    size_t at = 0;

    for (size_t k = 0; k < n; k++) {
        if (displs[k] != at)
            throw std::invalid_argument("Gloo's alltoallv takes blocks packed in rank order");
        v[k] = (int64_t)counts[k];
        at += counts[k];
    }
    return v;
}

template <typename T> static void alltoallv(gloo_perf_t *g, const perf_call_t *c)
{
    size_t nranks = (size_t)g->context->size;
    std::vector<int64_t> sendcounts = packed_counts(c->sendcounts, c->sdispls, nranks);
    std::vector<int64_t> recvcounts = packed_counts(c->recvcounts, c->rdispls, nranks);
    size_t send_n = c->sdispls[nranks - 1] + c->sendcounts[nranks - 1];
    gloo::AlltoallvOptions o(g->context);

    o.setInput(alltoall_input<T>(g, c, send_n), sendcounts);
    o.setOutput((T *)c->recvbuf, recvcounts);
    gloo::alltoallv(o);
}

/*
 * Run @p c on elements of type T; throws what Gloo throws. Gloo only reads
 * an input buffer, so the send buffer's const is cast away to hand it over.
 */
template <typename T> static void run_as(gloo_perf_t *g, const perf_call_t *c)
{
    const std::shared_ptr<gloo::Context> &context = g->context;
    T *in = (T *)c->sendbuf, *out = (T *)c->recvbuf;
    size_t n = c->count;

    switch (c->kind) {
    case PERF_ALLREDUCE: {
        gloo::AllreduceOptions o(context);
        if (!c->in_place)
            o.setInput(in, n);
        o.setOutput(out, n);
        o.setReduceFunction(reduction<T>(c->op));
        gloo::allreduce(o);
        break;
    }
    case PERF_REDUCE_SCATTER: reduce_scatter<T>(g, c); break;
    case PERF_ALLGATHER: {
        /* Without an input, Gloo finds this rank's block in the output: tutti's in place. */
        gloo::AllgatherOptions o(context);
        if (!c->in_place)
            o.setInput(in, n);
        o.setOutput(out, n * (size_t)context->size);
        gloo::allgather(o);
        break;
    }
    case PERF_BROADCAST: {
        gloo::BroadcastOptions o(context);
        if (context->rank == c->root && !c->in_place)
            o.setInput(in, n);
        o.setOutput(out, n);
        o.setRoot(c->root);
        gloo::broadcast(o);
        break;
    }
    case PERF_REDUCE: {
        gloo::ReduceOptions o(context);
        if (context->rank != c->root)
            out = (T *)scratch(g, n * sizeof(T));
        if (context->rank != c->root || !c->in_place)
            o.setInput(in, n);
        o.setOutput(out, n);
        o.setRoot(c->root);
        o.setReduceFunction(reduction<T>(c->op));
        gloo::reduce(o);
        break;
    }
    case PERF_BARRIER: {
        gloo::BarrierOptions o(context);
        gloo::barrier(o);
        break;
    }
    case PERF_ALLTOALL: {
        gloo::AlltoallOptions o(context);
        n *= (size_t)context->size;
        o.setInput(alltoall_input<T>(g, c, n), n);
        o.setOutput(out, n);
        gloo::alltoall(o);
        break;
    }
    case PERF_ALLTOALLV: alltoallv<T>(g, c); break;
    default: throw std::invalid_argument("unknown collective");
    }
}

typedef void run_fn_t(gloo_perf_t *g, const perf_call_t *c);

/* run_as() for @p dtype, or NULL for a type Gloo has not (bf16). */
static run_fn_t *runner(perf_dtype_t dtype)
{
    switch (dtype) {
    case PERF_INT8: return run_as<int8_t>;
    case PERF_UINT8: return run_as<uint8_t>;
    case PERF_INT32: return run_as<int32_t>;
    case PERF_UINT32: return run_as<uint32_t>;
    case PERF_INT64: return run_as<int64_t>;
    case PERF_UINT64: return run_as<uint64_t>;
    case PERF_FP16: return run_as<gloo::float16>;
    case PERF_FP32: return run_as<float>;
    case PERF_FP64: return run_as<double>;
    default: return NULL;
    }
}

static int gp_supports(perf_coll_kind_t kind, perf_dtype_t dtype, perf_op_t op)
{
    return kind < PERF_NUM_COLLS && runner(dtype) != NULL && op != PERF_AVG;
}

static int gp_run(void *ctx, const perf_call_t *c)
{
    gloo_perf_t *g = (gloo_perf_t *)ctx;

    /* The old-style reduce-scatter holds the size of the whole input, in bytes, in an int. */
    if (c->kind == PERF_REDUCE_SCATTER &&
        c->count > (size_t)INT_MAX / perf_dtype_size(c->dtype) / (size_t)g->context->size)
        return failure(GP_ERR_SIZE,
                       "reduce-scatter of %zu elements per rank: Gloo's takes "
                       "under 2 GiB in all",
                       c->count);
    /* c->nonblocking is ignored: Gloo has only blocking collectives. */
    return guarded([&] { runner(c->dtype)(g, c); });
}

static int gp_allreduce_doubles(void *ctx, double *values, size_t n, perf_op_t op)
{
    perf_call_t c = {};

    c.kind = PERF_ALLREDUCE;
    c.sendbuf = c.recvbuf = values;
    c.count = n;
    c.dtype = PERF_FP64;
    c.op = op;
    c.in_place = 1;
    return gp_run(ctx, &c);
}

static int gp_barrier(void *ctx)
{
    return guarded([&] {
        gloo::BarrierOptions o(((gloo_perf_t *)ctx)->context);
        gloo::barrier(o);
    });
}

static const char *gp_error_string(int err)
{
    (void)err;
    return last_error;
}

/* The peers see their connections close and fail in turn. */
static void gp_abort(void *ctx)
{
    (void)ctx;
    fflush(NULL);
    _exit(PERF_EXIT_FAILED);
}

/* A barrier first, so that no rank closes a connection a peer still reads from. */
static int gp_fini(void *ctx)
{
    int err = gp_barrier(ctx);
    delete (gloo_perf_t *)ctx;
    return err;
}

static const perf_backend_t gloo_backend = {
    .size = sizeof(perf_backend_t),
    .program = "gloo-perf",
    .init = gp_init,
    .describe = gp_describe,
    .supports = gp_supports,
    .run = gp_run,
    .allreduce_doubles = gp_allreduce_doubles,
    .barrier = gp_barrier,
    .error_string = gp_error_string,
    .abort = gp_abort,
    .fini = gp_fini,
};

int main(int argc, char **argv)
{
    return perf_main(argc, argv, &gloo_backend);
}
