/*
 * check_mpi_colls: MPI conformance of every collective the MPI backend
 * (libtutti_mpi) interposes, written against the MPI standard alone. It
 * includes no tutti header, so the same binary runs with and without the
 * backend preloaded, and the run without it checks the test itself.
 *
 *   mpirun -np 4 check_mpi_colls [-q] [-t] [-v] [-k] [-g GROUP,...] [-s SALT[-SALT]]
 *
 *   -q  quick: fewer datatype x op x collective combinations (for MPIs that
 *       crawl when ranks oversubscribe the cores)
 *   -t  MPI_Init_thread(MPI_THREAD_MULTIPLE), and collectives from two
 *       threads at once on their own communicators
 *   -v  rank 0 prints each case before running it
 *   -k  keep going after a failing case (for triage; a hang still hangs)
 *   -g  run only these groups (types, shapes, comms, fallback, nonblocking,
 *       lazy, barrier, errors, intercomm, threads, typemaps)
 *   -s  run only the case with this salt (failures print it), or the cases
 *       LO-HI: a reproducer is the same command with -g GROUP -s SALT
 *
 * Every rank can compute every other rank's input, so each result is checked
 * element by element against a reference computed here. Inputs are small
 * integers or halves, so integer and floating-point results are exact in any
 * reduction order, and extremes (type limits, infinities) for min and max.
 * Buffers carry guard bytes on both sides and the holes of datatypes with
 * gaps hold a sentinel: both must survive every call. Send buffers must come
 * back unchanged. The first failure prints everything needed to repeat it
 * (collective, datatype, op, count, root, in place, communicator, rank,
 * element, got, expected) and the job ends with MPI_Abort.
 */
#define _GNU_SOURCE
#include <math.h>
#include <mpi.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SENTINEL 0xa5
#define GUARD 64

static int wrank, wsize;
static int quick, verbose;
static int keep_going;  /* -k: report each failing case and go on */
static int case_failed; /* this case already reported (-k) */
static long failures;
static int salt_lo, salt_hi; /* -s: run only the cases with these salts */
static int salt_counter;     /* one per case, the same on every rank */
static long cases_run;       /* cases this rank took part in */

/*
 * Bugs of the MPIs this test meets (Debian 12's Open MPI 4.1.4 and MPICH
 * 4.0.2), found by running it without the backend. Where the MPI has one,
 * the cases it breaks are narrowed or skipped, the same way with and
 * without the backend, and the run says so at the end.
 */
enum bug {
    BUG_MPICH_REDUCE_INPLACE,
    BUG_MPICH_UNSIGNED_MINMAX,
    BUG_OMPI_ULONG_MINMAX,
    BUG_OMPI_IA2AV_ZEROS,
    BUG_MPICH_A2A_HOLES,
    BUG_OMPI_FREE_IN_FLIGHT,
    NBUGS
};

static struct {
    const char *what;
    int present;
    long hits;
} bugs[NBUGS] = {
    [BUG_MPICH_REDUCE_INPLACE] = {"MPICH 4.0-4.1.1 crashes in MPI_Reduce with MPI_IN_PLACE at a "
                                  "root other than 0 above 2 KiB (pmodels/mpich#6540): skipped",
                                  0, 0},
    [BUG_MPICH_UNSIGNED_MINMAX] = {"MPICH 4.0 compares unsigned integers as signed in MPI_MIN and "
                                   "MPI_MAX (pmodels/mpich#6083): inputs keep the top bit clear",
                                   0, 0},
    [BUG_OMPI_ULONG_MINMAX] = {"Open MPI 4.0-4.1.4 compares MPI_UNSIGNED_LONG as signed in MPI_MIN "
                               "and MPI_MAX (open-mpi/ompi#10525): inputs keep the top bit clear",
                               0, 0},
    [BUG_OMPI_IA2AV_ZEROS] = {"Open MPI 4's in-place MPI_Ialltoallv with some zero counts hangs "
                              "the next MPI_Ialltoallv: in-place all-to-all-v counts are >= 1",
                              0, 0},
    [BUG_MPICH_A2A_HOLES] = {"MPICH 4.0's in-place MPI_Alltoall and MPI_Ialltoall truncate or "
                             "garble blocks above 8 KiB of a datatype with holes: skipped",
                             0, 0},
    [BUG_OMPI_FREE_IN_FLIGHT] = {"Open MPI 4 crashes in MPI_Wait when MPI_Comm_free came while "
                                 "its nonblocking collectives were in flight: waited for first",
                                 0, 0},
};

static void bug_hit(enum bug b)
{
    __atomic_fetch_add(&bugs[b].hits, 1, __ATOMIC_RELAXED);
}

/* ------------------------------------------------------------------ values */

/* What one basic element of a datatype holds. */
enum kind {
    K_BYTE,
    K_I8,
    K_U8,
    K_I16,
    K_U16,
    K_I32,
    K_U32,
    K_I64,
    K_U64,
    K_F32,
    K_F64,
    K_CD,   /* double complex */
    K_DI,   /* MPI_DOUBLE_INT: struct { double; int; }, 4 bytes of padding */
    K_2I,   /* MPI_2INT */
    K_BOOL, /* C _Bool */
    K_AFF,  /* a pair of uint32 (a, b): x -> a x + b, for the non-commutative user op */
};

static const struct kind_info {
    int data; /* bytes the MPI datatype carries */
    int bits; /* integer width; 0 if not an integer */
    int unsigned_;
} kinds[] = {
    [K_BYTE] = {1, 8, 1}, [K_I8] = {1, 8, 0},   [K_U8] = {1, 8, 1},   [K_I16] = {2, 16, 0},
    [K_U16] = {2, 16, 1}, [K_I32] = {4, 32, 0}, [K_U32] = {4, 32, 1}, [K_I64] = {8, 64, 0},
    [K_U64] = {8, 64, 1}, [K_F32] = {4, 0, 0},  [K_F64] = {8, 0, 0},  [K_CD] = {16, 0, 0},
    [K_DI] = {12, 0, 0},  [K_2I] = {8, 0, 0},   [K_BOOL] = {1, 0, 0}, [K_AFF] = {8, 0, 0},
};

/* One element's value, whatever its kind: integers (and the first int of a
 * pair) in i, the second int or a location in j, floating point in x and y. */
typedef struct {
    int64_t i, j;
    double x, y;
} val_t;

static int is_int(enum kind k)
{
    return kinds[k].bits > 0 && k != K_BYTE;
}

static val_t load(enum kind k, const unsigned char *p)
{
    val_t v = {0, 0, 0, 0};
    switch (k) {
    case K_BYTE:
    case K_U8:
    case K_BOOL: {
        uint8_t t;
        memcpy(&t, p, 1);
        v.i = t;
        break;
    }
    case K_I8: {
        int8_t t;
        memcpy(&t, p, 1);
        v.i = t;
        break;
    }
    case K_I16: {
        int16_t t;
        memcpy(&t, p, 2);
        v.i = t;
        break;
    }
    case K_U16: {
        uint16_t t;
        memcpy(&t, p, 2);
        v.i = t;
        break;
    }
    case K_I32: {
        int32_t t;
        memcpy(&t, p, 4);
        v.i = t;
        break;
    }
    case K_U32: {
        uint32_t t;
        memcpy(&t, p, 4);
        v.i = t;
        break;
    }
    case K_I64:
    case K_U64: memcpy(&v.i, p, 8); break;
    case K_F32: {
        float t;
        memcpy(&t, p, 4);
        v.x = t;
        break;
    }
    case K_F64: memcpy(&v.x, p, 8); break;
    case K_CD:
        memcpy(&v.x, p, 8);
        memcpy(&v.y, p + 8, 8);
        break;
    case K_DI: {
        int32_t loc;
        memcpy(&v.x, p, 8);
        memcpy(&loc, p + 8, 4);
        v.j = loc;
        break;
    }
    case K_2I: {
        int32_t t[2];
        memcpy(t, p, 8);
        v.i = t[0];
        v.j = t[1];
        break;
    }
    case K_AFF: {
        uint32_t t[2];
        memcpy(t, p, 8);
        v.i = t[0];
        v.j = t[1];
        break;
    }
    }
    return v;
}

/* Integers wrap to their width, as C conversions do. */
static void store(enum kind k, unsigned char *p, val_t v)
{
    switch (k) {
    case K_BYTE:
    case K_I8:
    case K_U8:
    case K_BOOL: {
        uint8_t t = (uint8_t)v.i;
        memcpy(p, &t, 1);
        break;
    }
    case K_I16:
    case K_U16: {
        uint16_t t = (uint16_t)v.i;
        memcpy(p, &t, 2);
        break;
    }
    case K_I32:
    case K_U32: {
        uint32_t t = (uint32_t)v.i;
        memcpy(p, &t, 4);
        break;
    }
    case K_I64:
    case K_U64: memcpy(p, &v.i, 8); break;
    case K_F32: {
        float t = (float)v.x;
        memcpy(p, &t, 4);
        break;
    }
    case K_F64: memcpy(p, &v.x, 8); break;
    case K_CD:
        memcpy(p, &v.x, 8);
        memcpy(p + 8, &v.y, 8);
        break;
    case K_DI: {
        int32_t loc = (int32_t)v.j;
        memcpy(p, &v.x, 8);
        memcpy(p + 8, &loc, 4);
        break;
    }
    case K_2I:
    case K_AFF: {
        uint32_t t[2] = {(uint32_t)v.i, (uint32_t)v.j};
        memcpy(p, t, 8);
        break;
    }
    }
}

/* The value as the datatype holds it (integers wrapped and sign-extended). */
static val_t norm(enum kind k, val_t v)
{
    unsigned char tmp[16];
    store(k, tmp, v);
    return load(k, tmp);
}

static int val_eq(enum kind k, val_t a, val_t b)
{
    switch (k) {
    case K_F32:
    case K_F64: return a.x == b.x;
    case K_CD: return a.x == b.x && a.y == b.y;
    case K_DI: return a.x == b.x && a.j == b.j;
    case K_2I:
    case K_AFF: return a.i == b.i && a.j == b.j;
    default: return a.i == b.i;
    }
}

static void val_str(enum kind k, val_t v, char *s, size_t len)
{
    switch (k) {
    case K_F32:
    case K_F64: snprintf(s, len, "%g", v.x); break;
    case K_CD: snprintf(s, len, "(%g, %g)", v.x, v.y); break;
    case K_DI: snprintf(s, len, "(%g, loc %lld)", v.x, (long long)v.j); break;
    case K_2I: snprintf(s, len, "(%lld, loc %lld)", (long long)v.i, (long long)v.j); break;
    case K_AFF: snprintf(s, len, "(a %lld, b %lld)", (long long)v.i, (long long)v.j); break;
    case K_U64: snprintf(s, len, "%llu", (unsigned long long)v.i); break;
    default: snprintf(s, len, "%lld", (long long)v.i); break;
    }
}

/* ------------------------------------------------------------------ ops */

enum opkind {
    O_SUM,
    O_PROD,
    O_MIN,
    O_MAX,
    O_LAND,
    O_LOR,
    O_LXOR,
    O_BAND,
    O_BOR,
    O_BXOR,
    O_MAXLOC,
    O_MINLOC,
    O_NPREDEF,
    O_USER_COMM = O_NPREDEF, /* MPI_Op_create(commutative): a + b + 1 on MPI_INT */
    O_USER_NONCOMM,          /* MPI_Op_create(non-commutative): composition of affine maps */
    O_NOPS
};

static struct {
    const char *name;
    MPI_Op op;
} ops[O_NOPS];

static int op_valid(enum kind k, enum opkind o)
{
    switch (o) {
    case O_SUM:
    case O_PROD: return is_int(k) || k == K_F32 || k == K_F64 || k == K_CD;
    case O_MIN:
    case O_MAX: return is_int(k) || k == K_F32 || k == K_F64;
    case O_LAND:
    case O_LOR:
    case O_LXOR: return is_int(k) || k == K_BOOL;
    case O_BAND:
    case O_BOR:
    case O_BXOR: return is_int(k) || k == K_BYTE;
    case O_MAXLOC:
    case O_MINLOC: return k == K_DI || k == K_2I;
    case O_USER_COMM: return k == K_I32;
    case O_USER_NONCOMM: return k == K_AFF;
    default: return 0;
    }
}

/* The layouts user_sum1 is called with: MPI hands a user op its buffers in
 * the datatype's own layout. Set once the datatypes exist. */
static struct {
    MPI_Datatype dt;
    int nbasic, off[3], extent;
} sum1_layouts[4];

static void user_sum1(void *in, void *inout, int *len, MPI_Datatype *dt)
{
    const unsigned char *a = in;
    unsigned char *b = inout;
    int nbasic = 1, off[3] = {0, 0, 0}, extent = 4;
    for (int i = 0; i < 4; i++) {
        if (sum1_layouts[i].dt == *dt) {
            nbasic = sum1_layouts[i].nbasic;
            memcpy(off, sum1_layouts[i].off, sizeof(off));
            extent = sum1_layouts[i].extent;
        }
    }
    for (int e = 0; e < *len; e++) {
        for (int k = 0; k < nbasic; k++) {
            int32_t x, y;
            memcpy(&x, a + e * extent + off[k], 4);
            memcpy(&y, b + e * extent + off[k], 4);
            y = (int32_t)((uint32_t)x + (uint32_t)y + 1u);
            memcpy(b + e * extent + off[k], &y, 4);
        }
    }
}

/* inout = in then inout: (x -> a2 (a1 x + b1) + b2). MPI combines in rank
 * order with the lower ranks in 'in', so any reordering shows. */
static void user_affine(void *in, void *inout, int *len, MPI_Datatype *dt)
{
    const uint32_t *a = in;
    uint32_t *b = inout;
    (void)dt;
    for (int i = 0; i < *len; i++) {
        uint32_t a1 = a[2 * i], b1 = a[2 * i + 1], a2 = b[2 * i], b2 = b[2 * i + 1];
        b[2 * i] = a2 * a1;
        b[2 * i + 1] = a2 * b1 + b2;
    }
}

static uint64_t mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static uint64_t hash3(int64_t a, int64_t b, int64_t c)
{
    return mix(mix(mix((uint64_t)a) ^ (uint64_t)b) ^ (uint64_t)c);
}

static int64_t int_max(enum kind k)
{
    int bits = kinds[k].bits;
    if (kinds[k].unsigned_)
        return bits == 64 ? -1 : (int64_t)((1ull << bits) - 1);
    return bits == 64 ? INT64_MAX : (int64_t)((1ull << (bits - 1)) - 1);
}

static int64_t int_min(enum kind k)
{
    int bits = kinds[k].bits;
    if (kinds[k].unsigned_)
        return 0;
    return bits == 64 ? INT64_MIN : -(int64_t)(1ull << (bits - 1));
}

/*
 * Rank r's input at basic element g of a case with this salt, on n ranks.
 * Sums stay within int8 (|value| <= 120 / n), products are of +-1 and a few
 * 2s, so nothing overflows and floating point stays exact.
 */
struct dtype;
static int top_bit_ok(const struct dtype *t);

static val_t gen(const struct dtype *t, enum kind k, enum opkind o, int n, int r, int64_t g,
                 int salt)
{
    val_t v = {0, 0, 0, 0};
    uint64_t h = hash3(r, g, salt);
    int sgn = !kinds[k].unsigned_;
    int m = 120 / n;
    m = m > 8 ? 8 : m < 1 ? 1 : m;
    switch (o) {
    case O_SUM:
        v.i = sgn ? (int64_t)(h % (uint64_t)(2 * (m / 2) + 1)) - m / 2
                  : (int64_t)(h % (uint64_t)(m + 1));
        v.x = k == K_CD ? (double)v.i : (double)v.i / 2;
        v.y = (double)((int64_t)((h >> 20) % 7) - 3);
        break;
    case O_PROD:
        v.i = (r + g + salt) % 4 == 0 ? 2 : 1;
        if (sgn && (r + 2 * g + salt) % 3 == 0)
            v.i = -v.i;
        v.x = (double)v.i;
        if (k == K_CD) {
            static const double re[] = {0, 1, -1, 1, 1}, im[] = {1, 1, 0, 0, 0};
            v.x = re[(r + g + salt) % 5];
            v.y = im[(r + g + salt) % 5];
        }
        break;
    case O_MIN:
    case O_MAX:
        v.i = sgn ? (int64_t)(h % 31) - 15 : (int64_t)(h % 31);
        v.x = (double)v.i / 2;
        if ((g + salt) % 7 == 3 && r == (int)(g % n)) {
            v.i = o == O_MAX ? int_max(k) : int_min(k);
            v.x = o == O_MAX ? INFINITY : -INFINITY;
            if (o == O_MAX && kinds[k].unsigned_ && !top_bit_ok(t)) {
                v.i = (int64_t)((uint64_t)int_max(k) >> 1);
                bug_hit(bugs[BUG_OMPI_ULONG_MINMAX].present ? BUG_OMPI_ULONG_MINMAX
                                                            : BUG_MPICH_UNSIGNED_MINMAX);
            }
        }
        break;
    case O_LAND:
    case O_LOR:
    case O_LXOR: {
        int zero = g % 5 == 1 || (g % 5 != 0 && (r * 3 + g + salt) % 4 == 0);
        v.i = zero ? 0 : k == K_BOOL ? 1 : 1 + (int64_t)(h % 3);
        /* true in a high bit only */
        if (!zero && kinds[k].bits >= 16 && h % 7 == 0)
            v.i = (int64_t)1 << (kinds[k].bits - 2);
        break;
    }
    case O_BAND: v.i = (int64_t)(h | mix(h)); break;
    case O_BOR: v.i = (int64_t)(h & mix(h)); break;
    case O_BXOR: v.i = (int64_t)h; break;
    case O_MAXLOC:
    case O_MINLOC:
        v.i = (int64_t)(h % 5) - 2;
        v.x = (double)v.i;
        v.j = (int64_t)(n - r) * 3; /* ties must go to the lowest location, not rank */
        break;
    case O_USER_COMM: v.i = (int64_t)(h % 9) - 4; break;
    case O_USER_NONCOMM:
        v.i = 1 + 2 * (int64_t)(h % 4);
        v.j = (int64_t)((h >> 8) % 100);
        break;
    default: break;
    }
    return norm(k, v);
}

static int lt(enum kind k, val_t a, val_t b)
{
    if (k == K_F32 || k == K_F64)
        return a.x < b.x;
    if (kinds[k].unsigned_)
        return (uint64_t)a.i < (uint64_t)b.i;
    return a.i < b.i;
}

/* a op b, with a from the lower ranks. */
static val_t combine(enum kind k, enum opkind o, val_t a, val_t b)
{
    val_t v = a;
    switch (o) {
    case O_SUM:
        v.i = (int64_t)((uint64_t)a.i + (uint64_t)b.i);
        v.x = a.x + b.x;
        v.y = a.y + b.y;
        break;
    case O_PROD:
        v.i = (int64_t)((uint64_t)a.i * (uint64_t)b.i);
        v.x = a.x * b.x;
        if (k == K_CD) {
            v.x = a.x * b.x - a.y * b.y;
            v.y = a.x * b.y + a.y * b.x;
        }
        break;
    case O_MIN: v = lt(k, b, a) ? b : a; break;
    case O_MAX: v = lt(k, a, b) ? b : a; break;
    case O_LAND: v.i = a.i && b.i; break;
    case O_LOR: v.i = a.i || b.i; break;
    case O_LXOR: v.i = !a.i != !b.i; break;
    case O_BAND: v.i = a.i & b.i; break;
    case O_BOR: v.i = a.i | b.i; break;
    case O_BXOR: v.i = a.i ^ b.i; break;
    case O_MAXLOC:
    case O_MINLOC: {
        double va = k == K_DI ? a.x : (double)a.i, vb = k == K_DI ? b.x : (double)b.i;
        if (va == vb)
            v.j = a.j < b.j ? a.j : b.j;
        else if ((o == O_MAXLOC) == (vb > va))
            v = b;
        break;
    }
    case O_USER_COMM: v.i = (int64_t)(int32_t)((uint32_t)a.i + (uint32_t)b.i + 1u); break;
    case O_USER_NONCOMM:
        v.i = (int64_t)(uint32_t)((uint32_t)b.i * (uint32_t)a.i);
        v.j = (int64_t)(uint32_t)((uint32_t)b.i * (uint32_t)a.j + (uint32_t)b.j);
        break;
    default: break;
    }
    return v;
}

/* ------------------------------------------------------------------ datatypes */

struct dtype {
    const char *name;
    MPI_Datatype dt;
    enum kind kind;
    int nbasic;     /* basic elements per datatype element */
    int off[3];     /* their byte offsets */
    int extent;     /* bytes from one element to the next */
    int derived;    /* built here (freed at the end) */
    int no_top_bit; /* this MPI compares it as signed: keep the top bit clear (see above) */
};

enum {
    T_INT8,
    T_SCHAR,
    T_UINT8,
    T_UCHAR,
    T_INT,
    T_INT32,
    T_UNSIGNED,
    T_UINT32,
    T_LONG,
    T_LLONG,
    T_INT64,
    T_ULONG,
    T_ULLONG,
    T_UINT64,
    T_FLOAT,
    T_DOUBLE,
    T_NSERVED, /* above: the types the backend serves reductions on; below: fallbacks */
    T_SHORT = T_NSERVED,
    T_USHORT,
    T_INT16,
    T_BYTE,
    T_BOOL,
    T_CDOUBLE,
    T_DOUBLE_INT,
    T_2INT,
    T_NREDUCE, /* above: predefined types reductions take; below: data movement, derived */
    T_CHAR = T_NREDUCE,
    T_CONTIG3, /* contiguous(3, MPI_INT): dense, derived */
    T_VECTOR,  /* vector(2, 1, 2, MPI_INT): a hole of 4 bytes */
    T_RESIZED, /* MPI_INT resized to an extent of 8: a hole at the end */
    T_AFFINE,  /* contiguous(2, MPI_UINT32_T): the non-commutative user op's pairs */
    T_NTYPES
};

static struct dtype types[T_NTYPES];

static void set_type(int id, const char *name, MPI_Datatype dt, enum kind k)
{
    types[id] = (struct dtype){name, dt, k, 1, {0, 0, 0}, kinds[k].data, 0, 0};
}

static void failf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void failf(const char *fmt, ...)
{
    va_list ap;
    char msg[1024];
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    failures++;
    if (keep_going && case_failed)
        return;
    fprintf(stderr, "check_mpi_colls: FAIL (world rank %d of %d): %s\n", wrank, wsize, msg);
    fflush(stderr);
    case_failed = 1;
    if (keep_going)
        return;
    MPI_Abort(MPI_COMM_WORLD, 1);
    exit(1);
}

static void init_types(void)
{
    set_type(T_INT8, "MPI_INT8_T", MPI_INT8_T, K_I8);
    set_type(T_SCHAR, "MPI_SIGNED_CHAR", MPI_SIGNED_CHAR, K_I8);
    set_type(T_UINT8, "MPI_UINT8_T", MPI_UINT8_T, K_U8);
    set_type(T_UCHAR, "MPI_UNSIGNED_CHAR", MPI_UNSIGNED_CHAR, K_U8);
    set_type(T_INT, "MPI_INT", MPI_INT, K_I32);
    set_type(T_INT32, "MPI_INT32_T", MPI_INT32_T, K_I32);
    set_type(T_UNSIGNED, "MPI_UNSIGNED", MPI_UNSIGNED, K_U32);
    set_type(T_UINT32, "MPI_UINT32_T", MPI_UINT32_T, K_U32);
    set_type(T_LONG, "MPI_LONG", MPI_LONG, K_I64);
    set_type(T_LLONG, "MPI_LONG_LONG", MPI_LONG_LONG, K_I64);
    set_type(T_INT64, "MPI_INT64_T", MPI_INT64_T, K_I64);
    set_type(T_ULONG, "MPI_UNSIGNED_LONG", MPI_UNSIGNED_LONG, K_U64);
    set_type(T_ULLONG, "MPI_UNSIGNED_LONG_LONG", MPI_UNSIGNED_LONG_LONG, K_U64);
    set_type(T_UINT64, "MPI_UINT64_T", MPI_UINT64_T, K_U64);
    set_type(T_FLOAT, "MPI_FLOAT", MPI_FLOAT, K_F32);
    set_type(T_DOUBLE, "MPI_DOUBLE", MPI_DOUBLE, K_F64);
    set_type(T_SHORT, "MPI_SHORT", MPI_SHORT, K_I16);
    set_type(T_USHORT, "MPI_UNSIGNED_SHORT", MPI_UNSIGNED_SHORT, K_U16);
    set_type(T_INT16, "MPI_INT16_T", MPI_INT16_T, K_I16);
    set_type(T_BYTE, "MPI_BYTE", MPI_BYTE, K_BYTE);
    set_type(T_BOOL, "MPI_C_BOOL", MPI_C_BOOL, K_BOOL);
    set_type(T_CDOUBLE, "MPI_C_DOUBLE_COMPLEX", MPI_C_DOUBLE_COMPLEX, K_CD);
    set_type(T_DOUBLE_INT, "MPI_DOUBLE_INT", MPI_DOUBLE_INT, K_DI);
    types[T_DOUBLE_INT].extent = 16;
    set_type(T_2INT, "MPI_2INT", MPI_2INT, K_2I);
    set_type(T_CHAR, "MPI_CHAR", MPI_CHAR, K_BYTE);

    MPI_Datatype dt, tmp;
    MPI_Type_contiguous(3, MPI_INT, &dt);
    MPI_Type_commit(&dt);
    types[T_CONTIG3] = (struct dtype){"contiguous(3, MPI_INT)", dt, K_I32, 3, {0, 4, 8}, 12, 1, 0};
    MPI_Type_vector(2, 1, 2, MPI_INT, &dt);
    MPI_Type_commit(&dt);
    types[T_VECTOR] = (struct dtype){"vector(2, 1, 2, MPI_INT)", dt, K_I32, 2, {0, 8, 0}, 12, 1, 0};
    MPI_Type_create_resized(MPI_INT, 0, 8, &dt);
    MPI_Type_commit(&dt);
    types[T_RESIZED] = (struct dtype){"resized(MPI_INT, 0, 8)", dt, K_I32, 1, {0, 0, 0}, 8, 1, 0};
    MPI_Type_contiguous(2, MPI_UINT32_T, &tmp);
    MPI_Type_commit(&tmp);
    types[T_AFFINE] =
        (struct dtype){"contiguous(2, MPI_UINT32_T)", tmp, K_AFF, 1, {0, 0, 0}, 8, 1, 0};

    static const int sum1_types[] = {T_INT, T_CONTIG3, T_VECTOR, T_RESIZED};
    for (int i = 0; i < 4; i++) {
        const struct dtype *t = &types[sum1_types[i]];
        sum1_layouts[i].dt = t->dt;
        sum1_layouts[i].nbasic = t->nbasic;
        memcpy(sum1_layouts[i].off, t->off, sizeof(t->off));
        sum1_layouts[i].extent = t->extent;
    }
    for (int id = 0; id < T_NTYPES; id++)
        types[id].no_top_bit = kinds[types[id].kind].unsigned_ &&
                               (bugs[BUG_MPICH_UNSIGNED_MINMAX].present ||
                                (bugs[BUG_OMPI_ULONG_MINMAX].present && id == T_ULONG));

    /* The layouts above are what this machine's MPI says, or the references are wrong. */
    for (int id = 0; id < T_NTYPES; id++) {
        const struct dtype *t = &types[id];
        int size;
        MPI_Aint lb, extent;
        MPI_Type_size(t->dt, &size);
        MPI_Type_get_extent(t->dt, &lb, &extent);
        if (size != t->nbasic * kinds[t->kind].data || lb != 0 || extent != t->extent)
            failf("%s: size %d, lb %ld, extent %ld; this test assumes size %d, lb 0, extent %d",
                  t->name, size, (long)lb, (long)extent, t->nbasic * kinds[t->kind].data,
                  t->extent);
    }
}

static int top_bit_ok(const struct dtype *t)
{
    return !t->no_top_bit;
}

/* Char-like types go one byte off alignment, others one element off 64 bytes. */
static int shift_for(const struct dtype *t)
{
    return kinds[t->kind].data == 1 ? 1 : t->extent;
}

/* ------------------------------------------------------------------ communicators */

struct comm {
    MPI_Comm comm; /* MPI_COMM_NULL on ranks outside it */
    char name[64];
};

static struct comm world, self;

static void comm_set(struct comm *c, MPI_Comm comm, const char *name)
{
    c->comm = comm;
    snprintf(c->name, sizeof(c->name), "%s", name);
    if (comm != MPI_COMM_NULL)
        MPI_Comm_set_errhandler(comm, MPI_ERRORS_RETURN);
}

static void comm_free(struct comm *c)
{
    if (c->comm != MPI_COMM_NULL)
        MPI_Comm_free(&c->comm);
    c->comm = MPI_COMM_NULL;
}

/* ------------------------------------------------------------------ buffers */

struct buf {
    unsigned char *base; /* allocation: guard, shift, len bytes, guard */
    unsigned char *p;    /* what MPI sees */
    size_t len, total;
};

static void buf_make(struct buf *b, size_t len, int shift)
{
    b->total = len + (size_t)shift + 2 * GUARD;
    b->base = malloc(b->total);
    if (!b->base)
        failf("out of memory (%zu bytes)", b->total);
    memset(b->base, SENTINEL, b->total);
    b->p = b->base + GUARD + shift;
    b->len = len;
}

static void buf_free(struct buf *b)
{
    free(b->base);
    memset(b, 0, sizeof(*b));
}

static unsigned char pattern(int src, int dst, int salt, long k)
{
    return (unsigned char)((src + 1) * 37 + (dst + 1) * 101 + salt * 11 + k * 13 + (k >> 8) * 7);
}

/* The data bytes of nelem elements of t at p, in type-signature order, get
 * the message from src to dst: byte k of the message is pattern(..., k). */
static void fill_pattern(unsigned char *p, const struct dtype *t, long nelem, int src, int dst,
                         int salt)
{
    long k = 0;
    int data = kinds[t->kind].data;
    for (long e = 0; e < nelem; e++)
        for (int b = 0; b < t->nbasic; b++)
            for (int i = 0; i < data; i++)
                p[e * t->extent + t->off[b] + i] = pattern(src, dst, salt, k++);
}

/* ------------------------------------------------------------------ cases */

enum coll {
    C_ALLREDUCE,
    C_REDUCE,
    C_RSB,
    C_RS,
    C_BCAST,
    C_ALLGATHER,
    C_ALLTOALL,
    C_ALLTOALLV,
    C_BARRIER,
    C_NCOLL
};

static const char *const coll_names[C_NCOLL][2] = {
    {"MPI_Allreduce", "MPI_Iallreduce"},
    {"MPI_Reduce", "MPI_Ireduce"},
    {"MPI_Reduce_scatter_block", "MPI_Ireduce_scatter_block"},
    {"MPI_Reduce_scatter", "MPI_Ireduce_scatter"},
    {"MPI_Bcast", "MPI_Ibcast"},
    {"MPI_Allgather", "MPI_Iallgather"},
    {"MPI_Alltoall", "MPI_Ialltoall"},
    {"MPI_Alltoallv", "MPI_Ialltoallv"},
    {"MPI_Barrier", "MPI_Ibarrier"},
};

static int is_reduction(enum coll c)
{
    return c <= C_RS;
}

/* How a nonblocking call is completed; M_BLOCKING calls the blocking form. */
enum mode { M_BLOCKING, M_WAIT, M_TEST, M_STATUS, M_BATCH };
static const char *const mode_names[] = {
    "blocking", "completed by MPI_Wait", "completed by an MPI_Test loop",
    "MPI_Request_get_status, then MPI_Wait", "several in flight"};

/* A datatype and count for one side of a data movement. */
struct side {
    const struct dtype *t;
    long count;
};

struct tcase {
    /* What to run: the same on every rank of the communicator. */
    enum coll coll;
    enum mode mode;
    const struct dtype *t; /* reductions */
    enum opkind op;
    /* Reductions: allreduce/reduce: elements; reduce_scatter_block: per rank;
     * reduce_scatter: the scale of the per-rank counts. Alltoallv: the most
     * elements one rank sends another. */
    long count;
    /* Data movement: send and receive sides, [0] on even ranks and [1] on
     * odd ones (the same unless a case mixes type maps). The broadcast root
     * uses send, the others receive. */
    struct side send[2], recv[2];
    int root;
    int inplace;
    int shift;    /* buffers this many bytes off 64-byte alignment */
    int nullrecv; /* MPI_Reduce: NULL receive buffer at the other ranks */
    int unequal;  /* MPI_Reduce_scatter: unequal counts (some 0) */
    const struct comm *cm;
    /* The run. */
    int salt, n, r, here; /* here: this rank passes MPI_IN_PLACE */
    struct buf sbuf, rbuf;
    unsigned char *scopy; /* the send buffer as filled */
    int *v;               /* reduce_scatter counts; alltoallv counts and displacements */
    MPI_Request req;
};

static struct tcase red(enum coll coll, int type, enum opkind op, long count, const struct comm *cm)
{
    struct tcase c;
    memset(&c, 0, sizeof(c));
    c.coll = coll;
    c.t = &types[type];
    c.op = op;
    c.count = count;
    c.cm = cm;
    c.req = MPI_REQUEST_NULL;
    return c;
}

static struct tcase mov(enum coll coll, int type, long count, const struct comm *cm)
{
    struct tcase c = red(coll, type, O_SUM, count, cm);
    c.t = NULL;
    for (int i = 0; i < 2; i++)
        c.send[i] = c.recv[i] = (struct side){&types[type], count};
    return c;
}

static const char *case_name(const struct tcase *c)
{
    return coll_names[c->coll][c->mode != M_BLOCKING];
}

static void describe(const struct tcase *c, char *s, size_t len)
{
    int o = 0;
#define ADD(...) o += snprintf(s + o, o < (int)len ? len - (size_t)o : 0, __VA_ARGS__)
    ADD("%s (%s)", case_name(c), mode_names[c->mode]);
    if (is_reduction(c->coll)) {
        ADD(" type %s op %s count %ld", c->t->name, ops[c->op].name, c->count);
        if (c->coll == C_RS)
            ADD(" (%s counts)", c->unequal ? "unequal" : "equal");
    } else if (c->coll != C_BARRIER) {
        for (int i = 0; i < 2; i++) {
            if (i && c->send[1].t == c->send[0].t && c->send[1].count == c->send[0].count &&
                c->recv[1].t == c->recv[0].t && c->recv[1].count == c->recv[0].count)
                break;
            ADD("%s send %ld x %s recv %ld x %s", i ? "; odd ranks" : "", c->send[i].count,
                c->send[i].t->name, c->recv[i].count, c->recv[i].t->name);
        }
    }
    if (c->coll == C_REDUCE || c->coll == C_BCAST)
        ADD(" root %d", c->root);
    if (c->inplace)
        ADD(" MPI_IN_PLACE");
    if (c->shift)
        ADD(" buffers +%d bytes", c->shift);
    if (c->nullrecv && c->coll == C_REDUCE)
        ADD(" NULL recvbuf off root");
    ADD(" comm %s rank %d of %d (world rank %d) salt %d", c->cm->name, c->r, c->n, wrank, c->salt);
#undef ADD
}

static void fail(const struct tcase *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void fail(const struct tcase *c, const char *fmt, ...)
{
    char what[512], msg[512];
    va_list ap;
    describe(c, what, sizeof(what));
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    failf("%s: %s", what, msg);
}

static const char *err_str(int rc)
{
    static char s[MPI_MAX_ERROR_STRING + 32];
    int len, cls = -1;
    MPI_Error_class(rc, &cls);
    snprintf(s, sizeof(s), "error %d (class %d): ", rc, cls);
    MPI_Error_string(rc, s + strlen(s), &len);
    return s;
}

/* -- reductions */

static long rs_count(const struct tcase *c, int i)
{
    return c->unequal ? (long)((i * 3 + c->salt) % 4) * c->count / 2 : c->count;
}

static long red_in(const struct tcase *c)
{
    long s = 0;
    switch (c->coll) {
    case C_RSB: return c->count * c->n;
    case C_RS:
        for (int i = 0; i < c->n; i++)
            s += rs_count(c, i);
        return s;
    default: return c->count;
    }
}

static long red_out_base(const struct tcase *c)
{
    long s = 0;
    switch (c->coll) {
    case C_RSB: return c->count * c->r;
    case C_RS:
        for (int i = 0; i < c->r; i++)
            s += rs_count(c, i);
        return s;
    default: return 0;
    }
}

static long red_out_n(const struct tcase *c)
{
    switch (c->coll) {
    case C_REDUCE: return c->r == c->root ? c->count : 0;
    case C_RS: return rs_count(c, c->r);
    default: return c->count;
    }
}

static void fill_values(const struct tcase *c, unsigned char *p, long nelem)
{
    const struct dtype *t = c->t;
    for (long e = 0; e < nelem; e++)
        for (int b = 0; b < t->nbasic; b++)
            store(t->kind, p + e * t->extent + t->off[b],
                  gen(t, t->kind, c->op, c->n, c->r, e * t->nbasic + b, c->salt));
}

static void prep_reduction(struct tcase *c)
{
    const struct dtype *t = c->t;
    long in = red_in(c);
    int root_here = c->coll != C_REDUCE || c->r == c->root;
    c->here = c->inplace && root_here;
    if (c->coll == C_RS) {
        c->v = malloc(sizeof(int) * (size_t)c->n);
        for (int i = 0; i < c->n; i++)
            c->v[i] = (int)rs_count(c, i);
    }
    if (c->here) {
        buf_make(&c->rbuf, (size_t)(in * t->extent), c->shift);
        fill_values(c, c->rbuf.p, in);
        return;
    }
    buf_make(&c->sbuf, (size_t)(in * t->extent), c->shift);
    fill_values(c, c->sbuf.p, in);
    c->scopy = malloc(c->sbuf.total);
    memcpy(c->scopy, c->sbuf.base, c->sbuf.total);
    if (root_here)
        buf_make(&c->rbuf, (size_t)(red_out_n(c) * t->extent), c->shift);
    else if (!c->nullrecv)
        buf_make(&c->rbuf, (size_t)(c->count * t->extent), c->shift);
}

static void check_send_unchanged(const struct tcase *c)
{
    if (!c->scopy)
        return;
    for (size_t i = 0; i < c->sbuf.total; i++)
        if (c->sbuf.base[i] != c->scopy[i])
            fail(c, "the send buffer changed at byte %ld: 0x%02x, was 0x%02x",
                 (long)(c->sbuf.base + i - c->sbuf.p), c->sbuf.base[i], c->scopy[i]);
}

/* Every byte with care[] set must still hold the sentinel. */
static void check_untouched(const struct tcase *c, const struct buf *b, const unsigned char *care,
                            const struct dtype *t)
{
    for (size_t i = 0; i < b->total; i++) {
        if (!care[i] || b->base[i] == SENTINEL)
            continue;
        long off = (long)(b->base + i - b->p);
        if (off < 0 || off >= (long)b->len)
            fail(c, "guard byte %ld %s the receive buffer overwritten: 0x%02x",
                 off < 0 ? -off : off - (long)b->len + 1, off < 0 ? "before" : "after", b->base[i]);
        fail(c, "byte %ld of element %ld (a hole in %s, or past the result) overwritten: 0x%02x",
             off % t->extent, off / t->extent, t->name, b->base[i]);
    }
}

static void check_reduction(struct tcase *c)
{
    const struct dtype *t = c->t;
    enum kind k = t->kind;
    int data = kinds[k].data;
    int root_here = c->coll != C_REDUCE || c->r == c->root;
    check_send_unchanged(c);
    if (!c->rbuf.base)
        return;
    unsigned char *care = malloc(c->rbuf.total);
    memset(care, 1, c->rbuf.total);
    long out = red_out_n(c), base = red_out_base(c), off0 = (long)(c->rbuf.p - c->rbuf.base);
    if (!root_here) /* significant only at the root: only the guards count */
        memset(care + off0, 0, c->rbuf.len);
    for (long e = 0; root_here && e < out; e++) {
        for (int b = 0; b < t->nbasic; b++) {
            int64_t g = (base + e) * t->nbasic + b;
            val_t want = gen(t, k, c->op, c->n, 0, g, c->salt);
            for (int rr = 1; rr < c->n; rr++)
                want = combine(k, c->op, want, gen(t, k, c->op, c->n, rr, g, c->salt));
            want = norm(k, want);
            long at = e * t->extent + t->off[b];
            val_t got = load(k, c->rbuf.p + at);
            if (!val_eq(k, got, want)) {
                char gs[64], ws[64];
                val_str(k, got, gs, sizeof(gs));
                val_str(k, want, ws, sizeof(ws));
                fail(c, "element %ld%s%.0d: got %s expected %s", e,
                     t->nbasic > 1 ? " basic element " : "", t->nbasic > 1 ? b : 0, gs, ws);
            }
            memset(care + off0 + at, 0, (size_t)data);
        }
    }
    /* In place, what follows the result is left undefined by MPI. */
    if (c->here)
        for (long e = out; e < (long)(c->rbuf.len / (size_t)t->extent); e++)
            for (int b = 0; b < t->nbasic; b++)
                memset(care + off0 + e * t->extent + t->off[b], 0, (size_t)data);
    check_untouched(c, &c->rbuf, care, t);
    free(care);
}

/* -- data movement */

static const struct side *my_send(const struct tcase *c)
{
    return &c->send[c->r % 2];
}

static const struct side *my_recv(const struct tcase *c)
{
    return &c->recv[c->r % 2];
}

/* Alltoallv: elements from rank i to rank j. In place, MPI sends each block
 * from where the block from that rank lands, so the counts are symmetric. */
static int a2av_count(const struct tcase *c, int i, int j)
{
    if (c->inplace && bugs[BUG_OMPI_IA2AV_ZEROS].present && c->count > 0) {
        bug_hit(BUG_OMPI_IA2AV_ZEROS);
        return 1 + (int)(hash3(i < j ? i : j, i < j ? j : i, c->salt) % (uint64_t)c->count);
    }
    if (c->inplace)
        return (int)(hash3(i < j ? i : j, i < j ? j : i, c->salt) % (uint64_t)(c->count + 1));
    if (c->n > 1 && i == c->n / 2) /* a rank that sends nothing */
        return 0;
    return (int)(hash3(i, j, c->salt) % (uint64_t)(c->count + 1));
}

static void prep_move(struct tcase *c)
{
    const struct side *s = my_send(c), *rv = my_recv(c);
    int n = c->n, r = c->r;
    c->here = c->inplace;
    switch (c->coll) {
    case C_BCAST:
        if (r == c->root) {
            buf_make(&c->rbuf, (size_t)(s->count * s->t->extent), c->shift);
            fill_pattern(c->rbuf.p, s->t, s->count, r, 0, c->salt);
            c->scopy = malloc(c->rbuf.total);
            memcpy(c->scopy, c->rbuf.base, c->rbuf.total);
        } else {
            buf_make(&c->rbuf, (size_t)(rv->count * rv->t->extent), c->shift);
        }
        break;
    case C_ALLGATHER: {
        size_t block = (size_t)(rv->count * rv->t->extent);
        buf_make(&c->rbuf, block * (size_t)n, c->shift);
        if (c->here) {
            fill_pattern(c->rbuf.p + block * (size_t)r, rv->t, rv->count, r, 0, c->salt);
        } else {
            buf_make(&c->sbuf, (size_t)(s->count * s->t->extent), c->shift);
            fill_pattern(c->sbuf.p, s->t, s->count, r, 0, c->salt);
        }
        break;
    }
    case C_ALLTOALL: {
        size_t rblock = (size_t)(rv->count * rv->t->extent);
        size_t sblock = (size_t)(s->count * s->t->extent);
        buf_make(&c->rbuf, rblock * (size_t)n, c->shift);
        for (int j = 0; j < n; j++) {
            if (c->here)
                fill_pattern(c->rbuf.p + rblock * (size_t)j, rv->t, rv->count, r, j, c->salt);
        }
        if (!c->here) {
            buf_make(&c->sbuf, sblock * (size_t)n, c->shift);
            for (int j = 0; j < n; j++)
                fill_pattern(c->sbuf.p + sblock * (size_t)j, s->t, s->count, r, j, c->salt);
        }
        break;
    }
    case C_ALLTOALLV: {
        /* sendcounts, sdispls, recvcounts, rdispls: send blocks in reverse
         * rank order with one element between them, receive blocks in rank
         * order with two. */
        int *sc = c->v = malloc(sizeof(int) * 4 * (size_t)n), *sd = sc + n, *rc = sd + n,
            *rd = rc + n;
        long pos = 1;
        for (int j = n - 1; j >= 0; j--) {
            sc[j] = a2av_count(c, r, j);
            sd[j] = (int)pos;
            pos += sc[j] + 1;
        }
        long stotal = pos;
        pos = 2;
        for (int i = 0; i < n; i++) {
            rc[i] = a2av_count(c, i, r);
            rd[i] = (int)pos;
            pos += rc[i] + 2;
        }
        buf_make(&c->rbuf, (size_t)(pos * rv->t->extent), c->shift);
        if (c->here) {
            for (int j = 0; j < n; j++)
                fill_pattern(c->rbuf.p + (long)rd[j] * rv->t->extent, rv->t, rc[j], r, j, c->salt);
        } else {
            buf_make(&c->sbuf, (size_t)(stotal * s->t->extent), c->shift);
            for (int j = 0; j < n; j++)
                fill_pattern(c->sbuf.p + (long)sd[j] * s->t->extent, s->t, sc[j], r, j, c->salt);
        }
        break;
    }
    default: break;
    }
    if (c->sbuf.base) {
        c->scopy = malloc(c->sbuf.total);
        memcpy(c->scopy, c->sbuf.base, c->sbuf.total);
    }
}

static void check_move(struct tcase *c)
{
    const struct side *rv = my_recv(c);
    const struct dtype *t = rv->t;
    int n = c->n, r = c->r;
    long nblocks = 0;
    if (c->coll == C_BARRIER)
        return;
    if (c->coll == C_BCAST && r == c->root) {
        /* the root's buffer is its send buffer */
        for (size_t i = 0; i < c->rbuf.total; i++)
            if (c->rbuf.base[i] != c->scopy[i])
                fail(c, "the root's buffer changed at byte %ld: 0x%02x, was 0x%02x",
                     (long)(c->rbuf.base + i - c->rbuf.p), c->rbuf.base[i], c->scopy[i]);
        return;
    }
    check_send_unchanged(c);
    struct buf want;
    buf_make(&want, c->rbuf.len, (int)(c->rbuf.p - c->rbuf.base) - GUARD);
    long *bstart = malloc(sizeof(long) * (size_t)(n + 1)),
         *bsrc = malloc(sizeof(long) * (size_t)(n + 1));
    switch (c->coll) {
    case C_BCAST:
        fill_pattern(want.p, t, rv->count, c->root, 0, c->salt);
        bstart[0] = 0;
        bsrc[0] = c->root;
        nblocks = 1;
        break;
    case C_ALLGATHER:
    case C_ALLTOALL:
        for (int i = 0; i < n; i++) {
            bstart[i] = i * rv->count;
            bsrc[i] = i;
            fill_pattern(want.p + bstart[i] * t->extent, t, rv->count, i,
                         c->coll == C_ALLTOALL ? r : 0, c->salt);
        }
        nblocks = n;
        break;
    case C_ALLTOALLV: {
        const int *rc = c->v + 2 * n, *rd = c->v + 3 * n;
        for (int i = 0; i < n; i++) {
            bstart[i] = rd[i];
            bsrc[i] = i;
            fill_pattern(want.p + (long)rd[i] * t->extent, t, rc[i], i, r, c->salt);
        }
        nblocks = n;
        break;
    }
    default: break;
    }
    for (size_t i = 0; i < c->rbuf.total; i++) {
        if (c->rbuf.base[i] == want.base[i])
            continue;
        long off = (long)(c->rbuf.base + i - c->rbuf.p);
        if (off < 0 || off >= (long)c->rbuf.len)
            fail(c, "guard byte %ld %s the receive buffer overwritten: 0x%02x",
                 off < 0 ? -off : off - (long)c->rbuf.len + 1, off < 0 ? "before" : "after",
                 c->rbuf.base[i]);
        long e = off / t->extent;
        int blk = -1;
        for (int b = 0; b < nblocks; b++)
            if (bstart[b] <= e)
                blk = blk < 0 || bstart[b] >= bstart[blk] ? b : blk;
        fail(c,
             "element %ld byte %ld (block from rank %ld, its element %ld): got 0x%02x expected "
             "0x%02x%s",
             e, off % t->extent, blk < 0 ? -1 : bsrc[blk], blk < 0 ? -1 : e - bstart[blk],
             c->rbuf.base[i], want.base[i], want.base[i] == SENTINEL ? " (untouched)" : "");
    }
    free(bstart);
    free(bsrc);
    buf_free(&want);
}

/* -- running */

static int skip_case(const struct tcase *c)
{
    int size;
    if (bugs[BUG_MPICH_REDUCE_INPLACE].present && c->coll == C_REDUCE && c->mode == M_BLOCKING &&
        c->inplace && c->root != 0) {
        MPI_Type_size(c->t->dt, &size);
        if (c->count * size > 2048) {
            bug_hit(BUG_MPICH_REDUCE_INPLACE);
            return 1;
        }
    }
    if (bugs[BUG_MPICH_A2A_HOLES].present && c->coll == C_ALLTOALL && c->inplace) {
        for (int i = 0; i < 2; i++) {
            const struct side *rv = &c->recv[i];
            int data = rv->t->nbasic * kinds[rv->t->kind].data;
            if (data != rv->t->extent && rv->count * data > 8192) {
                bug_hit(BUG_MPICH_A2A_HOLES);
                return 1;
            }
        }
    }
    return 0;
}

static void prepare(struct tcase *c)
{
    MPI_Comm_size(c->cm->comm, &c->n);
    MPI_Comm_rank(c->cm->comm, &c->r);
    c->req = MPI_REQUEST_NULL;
    if (verbose && wrank == 0) {
        char what[512];
        describe(c, what, sizeof(what));
        printf("case %d: %s\n", c->salt, what);
        fflush(stdout);
    }
    if (is_reduction(c->coll))
        prep_reduction(c);
    else
        prep_move(c);
}

static void start(struct tcase *c)
{
    int nb = c->mode != M_BLOCKING, rc = MPI_SUCCESS;
    MPI_Comm comm = c->cm->comm;
    MPI_Request *q = &c->req;
    const struct side *s = my_send(c), *rv = my_recv(c);
    const void *sb = c->here ? MPI_IN_PLACE : c->sbuf.p;
    void *rb = c->rbuf.p;
    MPI_Datatype dt = c->t ? c->t->dt : MPI_DATATYPE_NULL;
    MPI_Op op = ops[c->op].op;
    int cnt = (int)c->count;
    /* In place, MPI ignores the send arguments: pass what a program would. */
    int scnt = c->here || !s->t ? 0 : (int)s->count;
    MPI_Datatype sdt = c->here || !s->t ? MPI_DATATYPE_NULL : s->t->dt;

    switch (c->coll) {
    case C_ALLREDUCE:
        rc = nb ? MPI_Iallreduce(sb, rb, cnt, dt, op, comm, q)
                : MPI_Allreduce(sb, rb, cnt, dt, op, comm);
        break;
    case C_REDUCE:
        rc = nb ? MPI_Ireduce(sb, rb, cnt, dt, op, c->root, comm, q)
                : MPI_Reduce(sb, rb, cnt, dt, op, c->root, comm);
        break;
    case C_RSB:
        rc = nb ? MPI_Ireduce_scatter_block(sb, rb, cnt, dt, op, comm, q)
                : MPI_Reduce_scatter_block(sb, rb, cnt, dt, op, comm);
        break;
    case C_RS:
        rc = nb ? MPI_Ireduce_scatter(sb, rb, c->v, dt, op, comm, q)
                : MPI_Reduce_scatter(sb, rb, c->v, dt, op, comm);
        break;
    case C_BCAST: {
        const struct side *b = c->r == c->root ? s : rv;
        rc = nb ? MPI_Ibcast(rb, (int)b->count, b->t->dt, c->root, comm, q)
                : MPI_Bcast(rb, (int)b->count, b->t->dt, c->root, comm);
        break;
    }
    case C_ALLGATHER:
        rc = nb ? MPI_Iallgather(sb, scnt, sdt, rb, (int)rv->count, rv->t->dt, comm, q)
                : MPI_Allgather(sb, scnt, sdt, rb, (int)rv->count, rv->t->dt, comm);
        break;
    case C_ALLTOALL:
        rc = nb ? MPI_Ialltoall(sb, scnt, sdt, rb, (int)rv->count, rv->t->dt, comm, q)
                : MPI_Alltoall(sb, scnt, sdt, rb, (int)rv->count, rv->t->dt, comm);
        break;
    case C_ALLTOALLV: {
        int n = c->n, *v = c->v;
        const int *sc = c->here ? NULL : v, *sd = c->here ? NULL : v + n;
        rc = nb ? MPI_Ialltoallv(sb, sc, sd, sdt, rb, v + 2 * n, v + 3 * n, rv->t->dt, comm, q)
                : MPI_Alltoallv(sb, sc, sd, sdt, rb, v + 2 * n, v + 3 * n, rv->t->dt, comm);
        break;
    }
    case C_BARRIER: rc = nb ? MPI_Ibarrier(comm, q) : MPI_Barrier(comm); break;
    default: break;
    }
    if (rc != MPI_SUCCESS)
        fail(c, "returned %s", err_str(rc));
    if (nb && c->req == MPI_REQUEST_NULL)
        fail(c, "returned MPI_REQUEST_NULL");
}

static void complete(struct tcase *c)
{
    MPI_Status st;
    int flag = 0, rc;
    switch (c->mode) {
    case M_WAIT:
        rc = MPI_Wait(&c->req, &st);
        if (rc != MPI_SUCCESS)
            fail(c, "MPI_Wait returned %s", err_str(rc));
        break;
    case M_TEST:
        while (!flag) {
            rc = MPI_Test(&c->req, &flag, &st);
            if (rc != MPI_SUCCESS)
                fail(c, "MPI_Test returned %s", err_str(rc));
        }
        break;
    case M_STATUS:
        /* Once: MPI-3.1 does not say it makes progress (MPI-4.1 does; Open
         * MPI 4.1's does not move nonblocking collectives on). */
        rc = MPI_Request_get_status(c->req, &flag, &st);
        if (rc != MPI_SUCCESS)
            fail(c, "MPI_Request_get_status returned %s", err_str(rc));
        if (c->req == MPI_REQUEST_NULL)
            fail(c, "MPI_Request_get_status freed the request");
        rc = MPI_Wait(&c->req, &st);
        if (rc != MPI_SUCCESS)
            fail(c, "MPI_Wait after MPI_Request_get_status returned %s", err_str(rc));
        break;
    default: return;
    }
    if (c->req != MPI_REQUEST_NULL)
        fail(c, "the request is not MPI_REQUEST_NULL once complete");
}

static void check(struct tcase *c)
{
    if (is_reduction(c->coll))
        check_reduction(c);
    else
        check_move(c);
}

static void release(struct tcase *c)
{
    buf_free(&c->sbuf);
    buf_free(&c->rbuf);
    free(c->scopy);
    free(c->v);
    c->scopy = NULL;
    c->v = NULL;
}

/* Ranks outside the communicator still take the case's salt, so the salts
 * of later cases agree everywhere. */
static int take_salt(struct tcase *c)
{
    c->salt = ++salt_counter;
    case_failed = 0;
    if (c->cm->comm == MPI_COMM_NULL || (salt_lo && (c->salt < salt_lo || c->salt > salt_hi)))
        return 0;
    if (skip_case(c))
        return 0;
    return 1;
}

/* begin + finish = run_case; apart, other calls can run while it is in flight. */
static int begin(struct tcase *c)
{
    if (!take_salt(c))
        return 0;
    prepare(c);
    start(c);
    return 1;
}

static void finish(struct tcase *c)
{
    complete(c);
    check(c);
    release(c);
    __atomic_fetch_add(&cases_run, 1, __ATOMIC_RELAXED);
}

static void run_case(struct tcase *c)
{
    if (begin(c))
        finish(c);
}

/* How a batch of requests is completed. */
enum batch_how { B_WAITALL, B_TESTALL, B_WAITANY, B_WAITSOME, B_NHOW };
static const char *const batch_names[] = {"MPI_Waitall", "MPI_Testall loop", "MPI_Waitany loop",
                                          "MPI_Waitsome loop"};

static void complete_batch(MPI_Request *q, int k, enum batch_how how, const char *what)
{
    MPI_Status *st = malloc(sizeof(MPI_Status) * (size_t)(k ? k : 1));
    int *idx = malloc(sizeof(int) * (size_t)(k ? k : 1));
    int rc = MPI_SUCCESS, flag = 0, done = 0, out, i;
    switch (how) {
    case B_WAITALL: rc = MPI_Waitall(k, q, st); break;
    case B_TESTALL:
        while (!flag && rc == MPI_SUCCESS)
            rc = MPI_Testall(k, q, &flag, st);
        break;
    case B_WAITANY:
        for (;;) {
            rc = MPI_Waitany(k, q, &i, st);
            if (rc != MPI_SUCCESS || i == MPI_UNDEFINED)
                break;
            if (i < 0 || i >= k || q[i] != MPI_REQUEST_NULL)
                failf("%s: MPI_Waitany returned index %d, its request not freed", what, i);
            done++;
        }
        break;
    case B_WAITSOME:
        for (;;) {
            rc = MPI_Waitsome(k, q, &out, idx, st);
            if (rc != MPI_SUCCESS || out == MPI_UNDEFINED)
                break;
            done += out;
        }
        break;
    default: break;
    }
    if (rc != MPI_SUCCESS)
        failf("%s: %s returned %s", what, batch_names[how], err_str(rc));
    for (i = 0; i < k; i++)
        if (q[i] != MPI_REQUEST_NULL)
            failf("%s: request %d is not MPI_REQUEST_NULL after %s", what, i, batch_names[how]);
    free(st);
    free(idx);
}

/* Start every case in order, complete them together, then check each. A
 * ring of point-to-point messages rides along when p2p is set. */
static void run_batch(struct tcase *cs, int k, enum batch_how how, int p2p, const char *what)
{
    MPI_Request *q = malloc(sizeof(MPI_Request) * (size_t)(k + 2));
    int *on = calloc((size_t)k, sizeof(int));
    int nq = 0, sendv[4], recvv[4] = {-1, -1, -1, -1};
    for (int i = 0; i < k; i++) {
        cs[i].mode = M_BATCH;
        on[i] = take_salt(&cs[i]);
        if (on[i])
            prepare(&cs[i]);
    }
    if (p2p) {
        for (int i = 0; i < 4; i++)
            sendv[i] = wrank * 100 + i;
        MPI_Irecv(recvv, 4, MPI_INT, (wrank + wsize - 1) % wsize, 99, MPI_COMM_WORLD, &q[nq++]);
    }
    for (int i = 0; i < k; i++) {
        if (on[i]) {
            start(&cs[i]);
            q[nq++] = cs[i].req;
        }
    }
    if (p2p)
        MPI_Isend(sendv, 4, MPI_INT, (wrank + 1) % wsize, 99, MPI_COMM_WORLD, &q[nq++]);
    complete_batch(q, nq, how, what);
    if (p2p)
        for (int i = 0; i < 4; i++)
            if (recvv[i] != ((wrank + wsize - 1) % wsize) * 100 + i)
                failf("%s: point-to-point message in a batch of collectives: element %d got %d "
                      "expected %d",
                      what, i, recvv[i], ((wrank + wsize - 1) % wsize) * 100 + i);
    for (int i = 0; i < k; i++) {
        if (on[i]) {
            check(&cs[i]);
            release(&cs[i]);
            cases_run++;
        }
    }
    free(q);
    free(on);
}

/* ------------------------------------------------------------------ groups */

static int comm_size(const struct comm *cm)
{
    int n = 0;
    if (cm->comm != MPI_COMM_NULL)
        MPI_Comm_size(cm->comm, &n);
    return n;
}

static const enum coll red_colls[] = {C_ALLREDUCE, C_REDUCE, C_RSB, C_RS};

/* Every predefined datatype with every op valid for it, through every
 * reduction, blocking and not. */
static void group_types(void)
{
    static const long counts[] = {7, 5, 1, 13, 3};
    int n = wsize, roots[3] = {0, n / 2, n - 1};
    int idx = 0;
    for (int ti = 0; ti < T_NREDUCE; ti++) {
        for (int o = 0; o < O_NPREDEF; o++) {
            if (!op_valid(types[ti].kind, (enum opkind)o))
                continue;
            for (int ci = 0; ci < 4; ci++, idx++) {
                for (int nb = 0; nb < 2; nb++) {
                    if (quick && (ci != idx % 4 || nb != (idx / 4) % 2))
                        continue;
                    struct tcase c =
                        red(red_colls[ci], ti, (enum opkind)o, counts[idx % 5], &world);
                    c.inplace = (idx + nb) % 2;
                    c.root = roots[idx % 3];
                    c.shift = idx % 3 == 1 ? shift_for(c.t) : 0;
                    c.nullrecv = idx % 2;
                    c.mode = nb ? (enum mode)(M_WAIT + idx % 3) : M_BLOCKING;
                    run_case(&c);
                }
            }
        }
    }
}

/* Counts (0, odd, large), in place, roots and alignment, reductions and data
 * movement, on MPI_COMM_WORLD. */
static void group_shapes(void)
{
    static const struct {
        int t;
        enum opkind op;
    } rt[] = {{T_INT, O_SUM}, {T_FLOAT, O_SUM}, {T_UCHAR, O_MAX}, {T_DOUBLE, O_MIN}};
    static const long counts_full[] = {0, 1, 3, 17, 1023, 65539}, counts_quick[] = {0, 3, 1023};
    const long *counts = quick ? counts_quick : counts_full;
    int ncounts = quick ? 3 : 6;
    int n = wsize, roots[3] = {0, n / 2, n - 1};
    int idx = 0;

    for (unsigned ti = 0; ti < sizeof(rt) / sizeof(rt[0]); ti++)
        for (int ci = 0; ci < 4; ci++)
            for (int k = 0; k < ncounts; k++)
                for (int ip = 0; ip < 2; ip++)
                    for (int ri = 0; ri < (red_colls[ci] == C_REDUCE ? 3 : 1); ri++)
                        for (int nb = 0; nb < 2; nb++, idx++) {
                            if (quick && nb != idx % 2)
                                continue;
                            /* The large count on int and float only: time. */
                            if (counts[k] > 60000 && (rt[ti].t == T_UCHAR || rt[ti].t == T_DOUBLE))
                                continue;
                            struct tcase c =
                                red(red_colls[ci], rt[ti].t, rt[ti].op, counts[k], &world);
                            c.inplace = ip;
                            c.root = roots[ri];
                            c.shift = idx % 2 ? shift_for(c.t) : 0;
                            c.nullrecv = idx % 3 == 0;
                            c.mode = nb ? (enum mode)(M_WAIT + idx % 3) : M_BLOCKING;
                            if (c.coll == C_RS && counts[k] > 60000)
                                c.count /= n; /* the input is count x ranks */
                            run_case(&c);
                        }

    /* Large enough for pipelined paths. */
    if (!quick) {
        struct tcase c = red(C_ALLREDUCE, T_FLOAT, O_SUM, (1 << 20) + 3, &world);
        run_case(&c);
        c = red(C_ALLREDUCE, T_INT, O_MAX, (1 << 20) + 3, &world);
        c.mode = M_WAIT;
        c.inplace = 1;
        run_case(&c);
        c = mov(C_BCAST, T_FLOAT, (1 << 20) + 3, &world);
        c.root = n - 1;
        run_case(&c);
    }

    static const int mt_full[] = {T_CHAR,    T_INT,     T_DOUBLE_INT, T_VECTOR,
                                  T_CONTIG3, T_CDOUBLE, T_RESIZED},
                     mt_quick[] = {T_CHAR, T_INT, T_VECTOR};
    static const long mcounts_full[] = {0, 1, 7, 1000}, mcounts_quick[] = {0, 7};
    const int *mt = quick ? mt_quick : mt_full;
    int nmt = quick ? 3 : 7;
    const long *mcounts = quick ? mcounts_quick : mcounts_full;
    int nmcounts = quick ? 2 : 4;
    static const enum coll mcolls[] = {C_BCAST, C_ALLGATHER, C_ALLTOALL, C_ALLTOALLV};
    for (int ti = 0; ti < nmt; ti++)
        for (int ci = 0; ci < 4; ci++)
            for (int k = 0; k < nmcounts; k++)
                for (int v = 0; v < (mcolls[ci] == C_BCAST ? 3 : 2); v++)
                    for (int nb = 0; nb < 2; nb++, idx++) {
                        if (quick && nb != idx % 2)
                            continue;
                        long count = mcounts[k];
                        if (mcolls[ci] == C_ALLTOALLV && count > 7)
                            count = 64; /* the most per pair: random counts below it */
                        struct tcase c = mov(mcolls[ci], mt[ti], count, &world);
                        if (mcolls[ci] == C_BCAST)
                            c.root = roots[v];
                        else
                            c.inplace = v;
                        c.shift = idx % 2 ? shift_for(&types[mt[ti]]) : 0;
                        c.mode = nb ? (enum mode)(M_WAIT + idx % 3) : M_BLOCKING;
                        run_case(&c);
                    }

    /* Different datatypes with the same type signature, all dense. */
    for (int k = 0; k < 2; k++) {
        long e = k ? 5 : 0;
        struct tcase c = mov(C_BCAST, T_INT, 3 * e, &world);
        c.recv[0] = c.recv[1] = (struct side){&types[T_CONTIG3], e};
        c.root = n / 2;
        run_case(&c);
        c = mov(C_BCAST, T_CONTIG3, e, &world);
        c.recv[0] = c.recv[1] = (struct side){&types[T_INT], 3 * e};
        c.root = n - 1;
        c.mode = M_WAIT;
        run_case(&c);
        c = mov(C_ALLGATHER, T_INT, 3 * e, &world);
        c.recv[0] = c.recv[1] = (struct side){&types[T_CONTIG3], e};
        run_case(&c);
        c = mov(C_ALLTOALL, T_CONTIG3, e, &world);
        c.recv[0] = c.recv[1] = (struct side){&types[T_INT], 3 * e};
        c.mode = M_TEST;
        run_case(&c);
        c = mov(C_ALLTOALL, T_BYTE, 12 * e, &world);
        c.recv[0] = c.recv[1] = (struct side){&types[T_CHAR], 12 * e};
        run_case(&c);
    }
}

/* Every collective once or twice on a communicator, blocking first (that is
 * where the backend makes its own communicator), then nonblocking. */
static void mini_suite(const struct comm *cm)
{
    int n = comm_size(cm); /* 0 outside it: run_case then only takes the salts */
    struct tcase c;
#define RUN(mode_, ...)   \
    do {                  \
        c.mode = (mode_); \
        __VA_ARGS__;      \
        run_case(&c);     \
    } while (0)
    c = red(C_ALLREDUCE, T_INT, O_SUM, 5, cm);
    RUN(M_BLOCKING, );
    c = red(C_ALLREDUCE, T_FLOAT, O_MAX, 6, cm);
    RUN(M_WAIT, c.inplace = 1);
    c = red(C_REDUCE, T_DOUBLE, O_SUM, 9, cm);
    RUN(M_BLOCKING, c.root = n / 2; c.inplace = 1);
    c = red(C_REDUCE, T_INT, O_MIN, 4, cm);
    RUN(M_TEST, c.root = n - 1; c.nullrecv = 1);
    c = red(C_RSB, T_INT, O_SUM, 3, cm);
    RUN(M_BLOCKING, );
    c = red(C_RSB, T_FLOAT, O_SUM, 2, cm);
    RUN(M_WAIT, c.inplace = 1);
    c = red(C_RS, T_INT, O_SUM, 3, cm);
    RUN(M_BLOCKING, c.inplace = 1);
    c = red(C_RS, T_INT, O_SUM, 4, cm);
    RUN(M_WAIT, c.unequal = 1);
    c = red(C_RS, T_LONG, O_PROD, 2, cm);
    RUN(M_STATUS, );
    c = mov(C_BCAST, T_CHAR, 11, cm);
    RUN(M_BLOCKING, c.root = n - 1; c.shift = 1);
    c = mov(C_BCAST, T_DOUBLE, 3, cm);
    RUN(M_WAIT, c.root = 0);
    c = mov(C_ALLGATHER, T_INT, 3, cm);
    RUN(M_BLOCKING, c.inplace = 1);
    c = mov(C_ALLGATHER, T_VECTOR, 2, cm);
    RUN(M_TEST, );
    c = mov(C_ALLTOALL, T_INT, 2, cm);
    RUN(M_BLOCKING, );
    c = mov(C_ALLTOALL, T_CHAR, 3, cm);
    RUN(M_WAIT, c.inplace = 1);
    c = mov(C_ALLTOALLV, T_INT, 3, cm);
    RUN(M_BLOCKING, );
    c = mov(C_ALLTOALLV, T_INT, 2, cm);
    RUN(M_WAIT, c.inplace = 1);
    c = mov(C_BARRIER, T_INT, 0, cm);
    RUN(M_BLOCKING, );
    c = mov(C_BARRIER, T_INT, 0, cm);
    RUN(M_WAIT, );
    c = red(C_ALLREDUCE, T_SHORT, O_SUM, 5, cm);
    RUN(M_BLOCKING, );
    c = red(C_ALLREDUCE, T_INT, O_USER_COMM, 5, cm);
    RUN(M_WAIT, );
    c = red(C_ALLREDUCE, T_INT, O_BXOR, 5, cm);
    RUN(M_BLOCKING, );
    c = red(C_ALLREDUCE, T_DOUBLE, O_SUM, 4, cm);
    RUN(M_TEST, c.inplace = 1);
    c = mov(C_BCAST, T_INT, 4, cm);
    RUN(M_BLOCKING, c.root = n / 2);
#undef RUN
}

/* Communicators from split (reversed keys), dup and create; freed, then more. */
static void group_comms(void)
{
    struct comm dup1, split2, create, split3, dupsplit;
    MPI_Comm nc;
    MPI_Group wg, g;
    int n = wsize;

    mini_suite(&self);
    MPI_Comm_dup(MPI_COMM_WORLD, &nc);
    comm_set(&dup1, nc, "dup(world)");
    mini_suite(&dup1);
    MPI_Comm_split(MPI_COMM_WORLD, wrank % 2, -wrank, &nc);
    comm_set(&split2, nc,
             wrank % 2 ? "split(world, odd, key -rank)" : "split(world, even, key -rank)");
    mini_suite(&split2);

    /* The first half of the ranks, in reverse order; the others get MPI_COMM_NULL. */
    int half = (n + 1) / 2, *ranks = malloc(sizeof(int) * (size_t)half);
    for (int i = 0; i < half; i++)
        ranks[i] = half - 1 - i;
    MPI_Comm_group(MPI_COMM_WORLD, &wg);
    MPI_Group_incl(wg, half, ranks, &g);
    MPI_Comm_create(MPI_COMM_WORLD, g, &nc);
    comm_set(&create, nc, "create(world, first half reversed)");
    if ((wrank < half) != (nc != MPI_COMM_NULL))
        failf("MPI_Comm_create: rank %d %s MPI_COMM_NULL", wrank,
              nc == MPI_COMM_NULL ? "got" : "did not get");
    MPI_Group_free(&g);
    MPI_Group_free(&wg);
    free(ranks);
    mini_suite(&create);
    /* Back on the first ones after the others. */
    struct tcase c = red(C_ALLREDUCE, T_INT, O_SUM, 3, &dup1);
    run_case(&c);
    c = red(C_ALLREDUCE, T_DOUBLE, O_SUM, 3, &split2);
    c.mode = M_WAIT;
    run_case(&c);

    comm_free(&dup1);
    comm_free(&split2);
    comm_free(&create);

    /* New communicators after frees may reuse the freed handles. */
    MPI_Comm_split(MPI_COMM_WORLD, wrank % 3, wrank, &nc);
    comm_set(&split3, nc,
             wrank % 3 == 0   ? "split(world, rank%3 = 0)"
             : wrank % 3 == 1 ? "split(world, rank%3 = 1)"
                              : "split(world, rank%3 = 2)");
    mini_suite(&split3);
    MPI_Comm_dup(split3.comm, &nc);
    comm_set(&dupsplit, nc, "dup(split(world, rank%3))");
    mini_suite(&dupsplit);
    comm_free(&split3);
    MPI_Comm_dup(MPI_COMM_WORLD, &nc);
    comm_set(&dup1, nc, "dup(world) after frees");
    mini_suite(&dup1);
    comm_free(&dup1);
    comm_free(&dupsplit);

    /* The other ways to make one: idup, split_type, create_group (called by
     * its members only), and split with MPI_UNDEFINED. */
    MPI_Request q;
    struct comm idup, shared, group, undef;
    MPI_Comm_idup(MPI_COMM_WORLD, &nc, &q);
    MPI_Wait(&q, MPI_STATUS_IGNORE);
    comm_set(&idup, nc, "idup(world)");
    mini_suite(&idup);
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, -wrank, MPI_INFO_NULL, &nc);
    comm_set(&shared, nc, "split_type(world, shared, key -rank)");
    c = red(C_ALLREDUCE, T_INT, O_SUM, 5, &shared);
    run_case(&c);
    c = mov(C_ALLGATHER, T_INT, 2, &shared);
    c.mode = M_WAIT;
    run_case(&c);
    nc = MPI_COMM_NULL;
    if (wrank % 2) {
        MPI_Group odd;
        int range[1][3] = {{1, n - 1, 2}};
        MPI_Comm_group(MPI_COMM_WORLD, &wg);
        MPI_Group_range_incl(wg, 1, range, &odd);
        MPI_Comm_create_group(MPI_COMM_WORLD, odd, 5, &nc);
        MPI_Group_free(&odd);
        MPI_Group_free(&wg);
    }
    comm_set(&group, nc, "create_group(world, odd ranks)");
    mini_suite(&group);
    MPI_Comm_split(MPI_COMM_WORLD, wrank % 3 == 1 ? MPI_UNDEFINED : 0, wrank, &nc);
    if ((wrank % 3 == 1) != (nc == MPI_COMM_NULL))
        failf("MPI_Comm_split with MPI_UNDEFINED: rank %d %s MPI_COMM_NULL", wrank,
              nc == MPI_COMM_NULL ? "got" : "did not get");
    comm_set(&undef, nc, "split(world, MPI_UNDEFINED at rank%3 = 1)");
    mini_suite(&undef);
    comm_free(&undef);
    comm_free(&group);
    comm_free(&shared);
    comm_free(&idup);

    /* Many short-lived communicators, each used once. */
    for (int i = 0; i < (quick ? 4 : 16); i++) {
        MPI_Comm_dup(MPI_COMM_WORLD, &nc);
        comm_set(&dup1, nc, "dup(world), one of many");
        c = red(C_ALLREDUCE, T_INT, O_SUM, 1 + i, &dup1);
        c.mode = i % 2 ? M_BLOCKING : M_WAIT;
        run_case(&c);
        c = red(C_ALLREDUCE, T_DOUBLE, O_SUM, 2 + i, &dup1);
        run_case(&c);
        comm_free(&dup1);
    }
}

/* What the backend hands back to MPI: user ops, derived datatypes, unequal
 * reduce_scatter counts, pair types, complex. */
static void group_fallback(void)
{
    struct comm split;
    MPI_Comm nc;
    MPI_Comm_split(MPI_COMM_WORLD, wrank % 2, -wrank, &nc);
    comm_set(&split, nc,
             wrank % 2 ? "split(world, odd, key -rank)" : "split(world, even, key -rank)");
    const struct comm *cms[2] = {&world, &split};
    int idx = 0;

    for (int ci = 0; ci < 2; ci++) {
        const struct comm *cm = cms[ci];
        int n = comm_size(cm);
        for (int k = 0; k < 4; k++) {
            for (int nb = 0; nb < 2; nb++, idx++) {
                struct tcase c = red(red_colls[k], T_INT, O_USER_COMM, 5 + idx % 3, cm);
                c.mode = nb ? (enum mode)(M_WAIT + idx % 3) : M_BLOCKING;
                c.root = n - 1;
                c.inplace = idx % 2;
                c.unequal = nb;
                run_case(&c);
                c = red(red_colls[k], T_AFFINE, O_USER_NONCOMM, 4 + idx % 3, cm);
                c.mode = nb ? (enum mode)(M_WAIT + (idx + 1) % 3) : M_BLOCKING;
                c.root = n / 2;
                c.inplace = (idx + 1) % 2;
                c.unequal = !nb;
                run_case(&c);
                /* Derived datatypes (MPI takes user ops on them, not predefined ones). */
                static const int dts[] = {T_VECTOR, T_CONTIG3, T_RESIZED};
                c = red(red_colls[k], dts[idx % 3], O_USER_COMM, 3 + idx % 2, cm);
                c.mode = nb ? M_WAIT : M_BLOCKING;
                c.root = idx % n;
                c.inplace = (idx / 2) % 2;
                run_case(&c);
            }
        }
        /* Unequal reduce_scatter counts, on served types too. */
        static const struct {
            int t;
            enum opkind op;
        } rs[] = {{T_INT, O_SUM}, {T_DOUBLE, O_MAX}, {T_SHORT, O_SUM}, {T_UINT8, O_BOR}};
        for (int i = 0; i < 4; i++)
            for (int ip = 0; ip < 2; ip++)
                for (int nb = 0; nb < 2; nb++, idx++) {
                    if (quick && nb != idx % 2)
                        continue;
                    struct tcase c = red(C_RS, rs[i].t, rs[i].op, 1 + idx % 9, cm);
                    c.unequal = 1;
                    c.inplace = ip;
                    c.mode = nb ? (enum mode)(M_WAIT + idx % 3) : M_BLOCKING;
                    c.shift = idx % 2 ? shift_for(c.t) : 0;
                    run_case(&c);
                }
        /* Pair types and complex, beyond a handful of elements. */
        struct tcase c = red(C_ALLREDUCE, T_DOUBLE_INT, O_MAXLOC, 301, cm);
        run_case(&c);
        c = red(C_REDUCE, T_2INT, O_MINLOC, 301, cm);
        c.root = n - 1;
        c.mode = M_WAIT;
        run_case(&c);
        c = red(C_ALLREDUCE, T_CDOUBLE, O_PROD, 129, cm);
        c.inplace = 1;
        run_case(&c);
        c = red(C_RSB, T_BOOL, O_LXOR, 33, cm);
        c.mode = M_TEST;
        run_case(&c);
    }
    comm_free(&split);
}

/* Several nonblocking collectives in flight at once, completed every way
 * MPI has, with point-to-point messages among them. */
static void group_nonblocking(void)
{
    int n = wsize;
    struct comm dup;
    MPI_Comm nc;
    MPI_Comm_dup(MPI_COMM_WORLD, &nc);
    comm_set(&dup, nc, "dup(world)");
    /* served on dup only once the backend has seen a blocking call there */
    struct tcase warm = red(C_ALLREDUCE, T_INT, O_SUM, 1, &dup);
    run_case(&warm);

    for (int how = 0; how < B_NHOW; how++) {
        struct tcase cs[13];
        int k = 0;
        cs[k++] = red(C_ALLREDUCE, T_INT, O_SUM, 17, &world);
        cs[k] = mov(C_BCAST, T_DOUBLE, 9, &world);
        cs[k++].root = n - 1;
        cs[k] = mov(C_ALLGATHER, T_CHAR, 5, &world);
        cs[k++].shift = 1;
        cs[k++] = mov(C_ALLTOALL, T_INT, 3, &world);
        cs[k++] = mov(C_ALLTOALLV, T_INT, 4, &world);
        cs[k++] = red(C_RSB, T_FLOAT, O_SUM, 3, &world);
        cs[k++] = red(C_RS, T_INT64, O_MAX, 2, &world);
        cs[k] = red(C_REDUCE, T_DOUBLE, O_SUM, 6, &world);
        cs[k].root = n / 2;
        cs[k++].inplace = 1;
        cs[k++] = mov(C_BARRIER, T_INT, 0, &world);
        cs[k++] = red(C_ALLREDUCE, T_SHORT, O_SUM, 5, &world); /* falls back */
        cs[k] = red(C_RS, T_INT, O_SUM, 3, &world);            /* falls back */
        cs[k++].unequal = 1;
        cs[k] = red(C_ALLREDUCE, T_FLOAT, O_MIN, 7, &dup); /* another communicator */
        cs[k++].inplace = how % 2;
        cs[k++] = mov(C_ALLTOALL, T_VECTOR, 2, &dup);
        char what[64];
        snprintf(what, sizeof(what), "batch of %d collectives and a p2p ring", k);
        run_batch(cs, k, (enum batch_how)how, 1, what);
    }

    /* Many of one collective in flight. */
    struct tcase cs[16];
    for (int i = 0; i < 16; i++) {
        cs[i] = red(C_ALLREDUCE, i % 2 ? T_DOUBLE : T_INT, O_SUM, 1 + i * 7,
                    i % 4 == 3 ? &dup : &world);
        cs[i].inplace = i % 3 == 0;
    }
    run_batch(cs, 16, B_WAITALL, 0, "16 MPI_Iallreduce in flight");
    /* Broadcasts from every root at once. */
    for (int i = 0; i < 8; i++) {
        cs[i] = mov(C_BCAST, i % 2 ? T_CHAR : T_INT, 1 + i * 5, &world);
        cs[i].root = i % n;
    }
    run_batch(cs, 8, B_WAITSOME, 0, "8 MPI_Ibcast in flight");
    comm_free(&dup);

    /* MPI_Comm_free with collectives in flight: they complete normally. */
    for (int served = 0; served < 2; served++) {
        struct comm tmp;
        MPI_Comm_dup(MPI_COMM_WORLD, &nc);
        comm_set(&tmp, nc,
                 served ? "dup(world), freed in flight" : "fresh dup(world), freed in flight");
        if (served) {
            struct tcase w = red(C_ALLREDUCE, T_INT, O_SUM, 1, &tmp);
            run_case(&w);
        }
        struct tcase f[2];
        f[0] = red(C_ALLREDUCE, T_INT, O_SUM, 9, &tmp);
        f[0].mode = M_WAIT;
        f[1] = mov(C_BCAST, T_DOUBLE, 5, &tmp);
        f[1].root = n - 1;
        f[1].mode = M_TEST;
        int on0 = begin(&f[0]), on1 = begin(&f[1]);
        int wait_first = bugs[BUG_OMPI_FREE_IN_FLIGHT].present;
        if (wait_first)
            bug_hit(BUG_OMPI_FREE_IN_FLIGHT);
        else
            MPI_Comm_free(&tmp.comm);
        if (on0)
            finish(&f[0]);
        if (on1)
            finish(&f[1]);
        if (wait_first)
            MPI_Comm_free(&tmp.comm);
    }
}

/* A communicator's first collectives nonblocking (the backend has no
 * communicator of its own for it yet), and nonblocking collectives still in
 * flight across the first blocking one (where it makes one). */
static void group_lazy(void)
{
    struct comm a, b;
    MPI_Comm nc;
    int n = wsize;

    MPI_Comm_dup(MPI_COMM_WORLD, &nc);
    comm_set(&a, nc, "fresh dup(world)");
    struct tcase c = red(C_ALLREDUCE, T_INT, O_SUM, 9, &a);
    c.mode = M_WAIT;
    run_case(&c);
    c = mov(C_BCAST, T_INT, 5, &a);
    c.root = n - 1;
    c.mode = M_TEST;
    run_case(&c);
    c = red(C_RSB, T_FLOAT, O_SUM, 2, &a);
    c.mode = M_WAIT;
    run_case(&c);
    c = mov(C_BARRIER, T_INT, 0, &a);
    c.mode = M_WAIT;
    run_case(&c);
    c = red(C_ALLREDUCE, T_INT, O_SUM, 9, &a);
    run_case(&c);
    c = red(C_ALLREDUCE, T_INT, O_SUM, 9, &a);
    c.mode = M_WAIT;
    run_case(&c);
    comm_free(&a);

    MPI_Comm_split(MPI_COMM_WORLD, 0, n - wrank, &nc);
    comm_set(&b, nc, "fresh split(world, one color, key n - rank)");
    struct tcase f[3];
    f[0] = mov(C_BCAST, T_DOUBLE, 7, &b);
    f[0].mode = M_WAIT;
    f[1] = red(C_ALLREDUCE, T_INT, O_MAX, 11, &b);
    f[1].mode = M_WAIT;
    f[2] = mov(C_ALLGATHER, T_INT, 2, &b);
    f[2].mode = M_TEST;
    begin(&f[0]);
    begin(&f[1]);
    c = red(C_ALLREDUCE, T_INT, O_SUM, 4, &b); /* the first blocking call */
    run_case(&c);
    begin(&f[2]);
    c = mov(C_ALLTOALL, T_INT, 2, &b);
    run_case(&c);
    finish(&f[1]);
    finish(&f[0]);
    finish(&f[2]);
    comm_free(&b);
}

/* No rank leaves a barrier before every rank entered it: each rank bumps a
 * counter in shared memory, one (a different one each time) late, then
 * passes the barrier and must see every rank's bump. */
static void group_barrier(void)
{
    MPI_Comm shm, nc;
    int ns;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &shm);
    MPI_Comm_size(shm, &ns);
    if (ns != wsize) {
        if (wrank == 0)
            printf("check_mpi_colls: ranks on several hosts: barrier ordering not checked\n");
        MPI_Comm_free(&shm);
        return;
    }
    MPI_Win win;
    int64_t *base, *ctr;
    MPI_Aint sz;
    int du;
    MPI_Win_allocate_shared(wrank == 0 ? 4 * sizeof(int64_t) : 0, sizeof(int64_t), MPI_INFO_NULL,
                            shm, &base, &win);
    MPI_Win_shared_query(win, 0, &sz, &du, &ctr);
    if (wrank == 0)
        for (int i = 0; i < 4; i++)
            __atomic_store_n(&ctr[i], 0, __ATOMIC_SEQ_CST);

    struct comm dup, split;
    MPI_Comm_dup(MPI_COMM_WORLD, &nc);
    comm_set(&dup, nc, "dup(world)");
    MPI_Comm_split(MPI_COMM_WORLD, wrank % 2, -wrank, &nc);
    comm_set(&split, nc,
             wrank % 2 ? "split(world, odd, key -rank)" : "split(world, even, key -rank)");
    MPI_Barrier(shm); /* the counters are zero before anyone bumps them */

    const struct comm *cms[3] = {&world, &dup, &split};
    int iters = quick ? 6 : 12;
    for (int ci = 0; ci < 3; ci++) {
        const struct comm *cm = cms[ci];
        int n, r;
        MPI_Comm_size(cm->comm, &n);
        MPI_Comm_rank(cm->comm, &r);
        int64_t *slot = &ctr[ci == 2 ? 2 + wrank % 2 : ci];
        for (int it = 0; it < iters; it++) {
            enum mode mode = (enum mode)(it % 3);
            MPI_Request q;
            int rc, flag = 0;
            if (r == it % n)
                usleep(2000);
            __atomic_add_fetch(slot, 1, __ATOMIC_SEQ_CST);
            if (mode == M_BLOCKING) {
                rc = MPI_Barrier(cm->comm);
            } else {
                rc = MPI_Ibarrier(cm->comm, &q);
                while (rc == MPI_SUCCESS && !flag) {
                    if (mode == M_WAIT) {
                        rc = MPI_Wait(&q, MPI_STATUS_IGNORE);
                        flag = 1;
                    } else {
                        rc = MPI_Test(&q, &flag, MPI_STATUS_IGNORE);
                    }
                }
            }
            if (rc != MPI_SUCCESS)
                failf("%s (%s) on %s: returned %s", mode ? "MPI_Ibarrier" : "MPI_Barrier",
                      mode_names[mode], cm->name, err_str(rc));
            int64_t seen = __atomic_load_n(slot, __ATOMIC_SEQ_CST);
            if (seen < (int64_t)(it + 1) * n)
                failf("%s (%s) on %s, round %d (rank %d entered late): rank %d left it when "
                      "%lld of %lld arrivals had happened",
                      mode ? "MPI_Ibarrier" : "MPI_Barrier", mode_names[mode], cm->name, it, it % n,
                      r, (long long)seen, (long long)(it + 1) * n);
        }
        cases_run += iters;
    }
    comm_free(&dup);
    comm_free(&split);
    MPI_Win_free(&win);
    MPI_Comm_free(&shm);
}

static int handler_calls, handler_code;

static void count_errors(MPI_Comm *comm, int *code, ...)
{
    (void)comm;
    handler_calls++;
    handler_code = *code;
}

static void expect_error(const char *what, int rc, int want_class, const char *want_name)
{
    int cls;
    if (rc == MPI_SUCCESS)
        failf("%s: returned MPI_SUCCESS, expected an error of class %s", what, want_name);
    MPI_Error_class(rc, &cls);
    if (cls != want_class)
        failf("%s: returned %s, expected class %s", what, err_str(rc), want_name);
}

#define EXPECT_ERROR(call, cls) expect_error(#call, (call), cls, #cls)

/* Erroneous calls return MPI's error classes through the communicator's
 * error handler, and the communicator stays usable. */
static void group_errors(void)
{
    struct comm ret, counted;
    MPI_Comm nc, comm;
    MPI_Errhandler eh;
    MPI_Request q = MPI_REQUEST_NULL;
    int n = wsize, a[4] = {1, 2, 3, 4}, b[4];

    MPI_Comm_dup(MPI_COMM_WORLD, &nc);
    comm_set(&ret, nc, "dup(world) with MPI_ERRORS_RETURN");
    comm = ret.comm;
    struct tcase c = red(C_ALLREDUCE, T_INT, O_SUM, 3, &ret);
    run_case(&c); /* the backend has a communicator for it from here on */
    EXPECT_ERROR(MPI_Bcast(a, 1, MPI_INT, n, comm), MPI_ERR_ROOT);
    EXPECT_ERROR(MPI_Bcast(a, 1, MPI_INT, -5, comm), MPI_ERR_ROOT);
    EXPECT_ERROR(MPI_Reduce(a, b, 1, MPI_INT, MPI_SUM, n, comm), MPI_ERR_ROOT);
    EXPECT_ERROR(MPI_Ibcast(a, 1, MPI_INT, n, comm, &q), MPI_ERR_ROOT);
    EXPECT_ERROR(MPI_Allreduce(a, b, 1, MPI_INT, MPI_OP_NULL, comm), MPI_ERR_OP);
    EXPECT_ERROR(MPI_Allreduce(a, b, 1, MPI_INT, MPI_MAXLOC, comm), MPI_ERR_OP);
    EXPECT_ERROR(MPI_Allreduce(a, b, 1, MPI_2INT, MPI_SUM, comm), MPI_ERR_OP);
    EXPECT_ERROR(MPI_Iallreduce(a, b, 1, MPI_INT, MPI_OP_NULL, comm, &q), MPI_ERR_OP);
    EXPECT_ERROR(MPI_Allreduce(MPI_IN_PLACE, MPI_IN_PLACE, 1, MPI_INT, MPI_SUM, comm),
                 MPI_ERR_BUFFER);
    EXPECT_ERROR(MPI_Allreduce(a, b, 1, MPI_INT, MPI_SUM, MPI_COMM_NULL), MPI_ERR_COMM);
    EXPECT_ERROR(MPI_Barrier(MPI_COMM_NULL), MPI_ERR_COMM);
    EXPECT_ERROR(MPI_Alltoall(a, 1, MPI_DATATYPE_NULL, b, 1, MPI_INT, comm), MPI_ERR_TYPE);
    EXPECT_ERROR(MPI_Allgather(a, -1, MPI_INT, b, 1, MPI_INT, comm), MPI_ERR_COUNT);
    /* Still usable. */
    c = red(C_ALLREDUCE, T_INT, O_SUM, 4, &ret);
    run_case(&c);
    c = mov(C_BCAST, T_INT, 4, &ret);
    c.root = n - 1;
    c.mode = M_WAIT;
    run_case(&c);

    /* A handler of the program's own sees each error once. */
    MPI_Comm_dup(MPI_COMM_WORLD, &nc);
    comm_set(&counted, nc, "dup(world) with a counting error handler");
    MPI_Comm_create_errhandler(count_errors, &eh);
    MPI_Comm_set_errhandler(counted.comm, eh);
    c = red(C_ALLREDUCE, T_INT, O_SUM, 3, &counted);
    run_case(&c);
    int calls = handler_calls;
    EXPECT_ERROR(MPI_Bcast(a, 1, MPI_INT, n, counted.comm), MPI_ERR_ROOT);
    EXPECT_ERROR(MPI_Allreduce(a, b, 1, MPI_INT, MPI_OP_NULL, counted.comm), MPI_ERR_OP);
    EXPECT_ERROR(MPI_Ireduce(a, b, 1, MPI_INT, MPI_SUM, -1, counted.comm, &q), MPI_ERR_ROOT);
    int cls;
    MPI_Error_class(handler_code, &cls);
    if (handler_calls - calls != 3 || cls != MPI_ERR_ROOT)
        failf("error handler of dup(world): called %d times for 3 errors, last code %s (expected "
              "class MPI_ERR_ROOT)",
              handler_calls - calls, err_str(handler_code));
    c = red(C_ALLREDUCE, T_DOUBLE, O_MAX, 4, &counted);
    c.mode = M_TEST;
    run_case(&c);
    if (handler_calls - calls != 3)
        failf("error handler of dup(world) called by a correct MPI_Iallreduce");
    MPI_Errhandler_free(&eh);
    comm_free(&counted);
    comm_free(&ret);
    cases_run += 16;
}

/* Intercommunicators (MPI_Intercomm_create): the backend leaves them to MPI. */
static int ival(int group, int rank, int i)
{
    return 100000 * group + 100 * rank + i;
}

static void expect_ints(const char *what, const int *got, const int *want, int count)
{
    for (int i = 0; i < count; i++)
        if (got[i] != want[i])
            failf("%s on an intercommunicator: element %d got %d expected %d", what, i, got[i],
                  want[i]);
}

static void group_intercomm(void)
{
    if (wsize < 2)
        return;
    int color = wrank < wsize / 2 ? 0 : 1, other = 1 - color;
    MPI_Comm local, inter;
    MPI_Comm_split(MPI_COMM_WORLD, color, wrank, &local);
    MPI_Intercomm_create(local, 0, MPI_COMM_WORLD, color ? 0 : wsize / 2, 77, &inter);
    MPI_Comm_set_errhandler(inter, MPI_ERRORS_RETURN);
    int lr, rs, rc, i, q;
    MPI_Comm_rank(inter, &lr);
    MPI_Comm_remote_size(inter, &rs);
    int *s = calloc((size_t)(4 * rs + 8), sizeof(int)),
        *r = calloc((size_t)(4 * rs + 8), sizeof(int)),
        *w = calloc((size_t)(4 * rs + 8), sizeof(int));
    MPI_Request req;
#define OK(call)                                                                  \
    do {                                                                          \
        if ((rc = (call)) != MPI_SUCCESS)                                         \
            failf("%s on an intercommunicator: returned %s", #call, err_str(rc)); \
    } while (0)

    /* allreduce: each group gets the other's sum */
    for (i = 0; i < 3; i++) {
        s[i] = ival(color, lr, i);
        w[i] = 0;
        for (q = 0; q < rs; q++)
            w[i] += ival(other, q, i);
    }
    OK(MPI_Allreduce(s, r, 3, MPI_INT, MPI_SUM, inter));
    expect_ints("MPI_Allreduce", r, w, 3);
    memset(r, 0, sizeof(int) * 3);
    OK(MPI_Iallreduce(s, r, 3, MPI_INT, MPI_SUM, inter, &req));
    OK(MPI_Wait(&req, MPI_STATUS_IGNORE));
    expect_ints("MPI_Iallreduce", r, w, 3);

    /* bcast from group 0's rank 0, then from group 1's rank 0, nonblocking */
    for (int from = 0; from < 2; from++) {
        for (i = 0; i < 5; i++)
            w[i] = ival(from, 0, i) + 7;
        memset(r, 0, sizeof(int) * 5);
        int root = color != from ? 0 : lr == 0 ? MPI_ROOT : MPI_PROC_NULL;
        if (root == MPI_ROOT)
            memcpy(r, w, sizeof(int) * 5);
        if (from == 0)
            OK(MPI_Bcast(r, 5, MPI_INT, root, inter));
        else {
            OK(MPI_Ibcast(r, 5, MPI_INT, root, inter, &req));
            OK(MPI_Wait(&req, MPI_STATUS_IGNORE));
        }
        if (root != MPI_PROC_NULL)
            expect_ints(from ? "MPI_Ibcast" : "MPI_Bcast", r, w, 5);
    }

    /* reduce to group 1's rank 0 */
    {
        int root = color == 0 ? 0 : lr == 0 ? MPI_ROOT : MPI_PROC_NULL;
        for (i = 0; i < 2; i++) {
            s[i] = ival(color, lr, i);
            w[i] = 0;
            for (q = 0; q < rs; q++)
                w[i] += ival(other, q, i);
        }
        memset(r, 0, sizeof(int) * 2);
        OK(MPI_Reduce(s, r, 2, MPI_INT, MPI_SUM, root, inter));
        if (root == MPI_ROOT)
            expect_ints("MPI_Reduce", r, w, 2);
    }

    /* allgather: the other group's blocks */
    s[0] = ival(color, lr, 0);
    s[1] = ival(color, lr, 1);
    for (q = 0; q < rs; q++) {
        w[2 * q] = ival(other, q, 0);
        w[2 * q + 1] = ival(other, q, 1);
    }
    OK(MPI_Allgather(s, 2, MPI_INT, r, 2, MPI_INT, inter));
    expect_ints("MPI_Allgather", r, w, 2 * rs);

    /* alltoall: block q goes to remote rank q */
    for (q = 0; q < rs; q++) {
        s[q] = ival(color, lr, q);
        w[q] = ival(other, q, lr);
    }
    OK(MPI_Alltoall(s, 1, MPI_INT, r, 1, MPI_INT, inter));
    expect_ints("MPI_Alltoall", r, w, rs);

    OK(MPI_Barrier(inter));
    OK(MPI_Ibarrier(inter, &req));
    OK(MPI_Wait(&req, MPI_STATUS_IGNORE));
#undef OK
    free(s);
    free(r);
    free(w);
    MPI_Comm_free(&inter);
    MPI_Comm_free(&local);
    cases_run += 10;
}

/* Two threads, each with its own communicator, calling collectives at once. */
struct thread_arg {
    struct comm cm;
    int id;
};

static void *thread_main(void *p)
{
    struct thread_arg *a = p;
    int n = comm_size(&a->cm);
    for (int i = 0; i < (quick ? 4 : 12); i++) {
        struct tcase c;
        switch (i % 4) {
        case 0: c = red(C_ALLREDUCE, T_INT, O_SUM, 5 + i, &a->cm); break;
        case 1:
            c = red(C_ALLREDUCE, T_DOUBLE, O_MAX, 3 + i, &a->cm);
            c.mode = M_WAIT;
            break;
        case 2:
            c = mov(C_BCAST, T_INT, 4 + i, &a->cm);
            c.root = i % n;
            break;
        default:
            c = mov(C_ALLTOALL, T_INT, 2, &a->cm);
            c.mode = M_TEST;
            break;
        }
        c.salt = 1000000 + a->id * 1000 + i;
        prepare(&c);
        start(&c);
        finish(&c);
    }
    return NULL;
}

static int thread_level;

static void group_threads(void)
{
    if (thread_level != MPI_THREAD_MULTIPLE) {
        if (wrank == 0)
            printf("check_mpi_colls: threads: not run (needs -t and MPI_THREAD_MULTIPLE)\n");
        return;
    }
    struct thread_arg args[2];
    pthread_t th[2];
    for (int i = 0; i < 2; i++) {
        MPI_Comm nc;
        MPI_Comm_dup(MPI_COMM_WORLD, &nc);
        comm_set(&args[i].cm, nc, i ? "dup(world) in thread 1" : "dup(world) in thread 0");
        args[i].id = i;
    }
    for (int i = 0; i < 2; i++)
        if (pthread_create(&th[i], NULL, thread_main, &args[i]) != 0)
            failf("pthread_create failed");
    for (int i = 0; i < 2; i++) {
        pthread_join(th[i], NULL);
        comm_free(&args[i].cm);
    }
}

/* Ranks that describe the same type signature with different type maps, a
 * dense one and one with holes: legal for data movement, so a backend must
 * decide alike on every rank. Last, as a backend that decides per rank would
 * hang here. */
static void group_typemaps(void)
{
    int n = wsize;
    const long k = 5;
    struct tcase c = mov(C_BCAST, T_VECTOR, k, &world);
    c.recv[0] = c.recv[1] = (struct side){&types[T_INT], 2 * k};
    c.root = n - 1;
    run_case(&c);
    c = mov(C_BCAST, T_INT, 2 * k, &world);
    c.recv[0] = c.recv[1] = (struct side){&types[T_VECTOR], k};
    c.root = 0;
    run_case(&c);
    c = mov(C_ALLGATHER, T_INT, 2 * k, &world);
    c.send[1] = (struct side){&types[T_VECTOR], k};
    run_case(&c);
    c = mov(C_ALLGATHER, T_INT, 2 * k, &world);
    c.recv[1] = (struct side){&types[T_VECTOR], k};
    c.mode = M_WAIT;
    run_case(&c);
    c = mov(C_ALLTOALL, T_INT, k, &world);
    c.send[1] = (struct side){&types[T_RESIZED], k};
    run_case(&c);
    c = mov(C_ALLTOALLV, T_INT, 4, &world);
    c.recv[1] = (struct side){&types[T_RESIZED], 4};
    run_case(&c);
    c = mov(C_BCAST, T_VECTOR, k, &world);
    c.recv[0] = c.recv[1] = (struct side){&types[T_INT], 2 * k};
    c.root = n / 2;
    c.mode = M_WAIT;
    run_case(&c);
}

/* ------------------------------------------------------------------ main */

static const struct {
    const char *name;
    void (*run)(void);
} groups[] = {
    {"types", group_types},
    {"shapes", group_shapes},
    {"comms", group_comms},
    {"fallback", group_fallback},
    {"nonblocking", group_nonblocking},
    {"lazy", group_lazy},
    {"barrier", group_barrier},
    {"errors", group_errors},
    {"intercomm", group_intercomm},
    {"threads", group_threads},
    {"typemaps", group_typemaps},
};

static int selected(const char *list, const char *name)
{
    size_t len = strlen(name);
    if (!list)
        return 1;
    for (const char *p = list; *p;) {
        const char *e = strchr(p, ',');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if (l == len && strncmp(p, name, len) == 0)
            return 1;
        p += l + (e != NULL);
    }
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: check_mpi_colls [-q] [-t] [-v] [-k] [-g GROUP,...] [-s SALT[-SALT]]\ngroups:");
    for (size_t i = 0; i < sizeof(groups) / sizeof(groups[0]); i++)
        fprintf(f, " %s", groups[i].name);
    fprintf(f, "\n");
}

int main(int argc, char **argv)
{
    const char *only = NULL;
    int threads = 0, opt;
    while ((opt = getopt(argc, argv, "qtvkg:s:h")) != -1) {
        switch (opt) {
        case 'q': quick = 1; break;
        case 't': threads = 1; break;
        case 'v': verbose = 1; break;
        case 'k': keep_going = 1; break;
        case 'g': only = optarg; break;
        case 's':
            if (sscanf(optarg, "%d-%d", &salt_lo, &salt_hi) < 2)
                salt_hi = salt_lo;
            break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    for (const char *p = only; p && *p;) {
        const char *e = strchr(p, ',');
        size_t l = e ? (size_t)(e - p) : strlen(p), i;
        for (i = 0; i < sizeof(groups) / sizeof(groups[0]); i++)
            if (strlen(groups[i].name) == l && strncmp(p, groups[i].name, l) == 0)
                break;
        if (i == sizeof(groups) / sizeof(groups[0])) {
            fprintf(stderr, "check_mpi_colls: unknown group '%.*s'\n", (int)l, p);
            usage(stderr);
            return 2;
        }
        p += l + (e != NULL);
    }

    if (threads) {
        MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &thread_level);
    } else {
        MPI_Init(&argc, &argv);
        MPI_Query_thread(&thread_level);
    }
    MPI_Comm_rank(MPI_COMM_WORLD, &wrank);
    MPI_Comm_size(MPI_COMM_WORLD, &wsize);
    if (thread_level < MPI_THREAD_SINGLE || thread_level > MPI_THREAD_MULTIPLE)
        failf("MPI_Init_thread: provided %d is no thread level", thread_level);
    comm_set(&world, MPI_COMM_WORLD, "MPI_COMM_WORLD");
    comm_set(&self, MPI_COMM_SELF, "MPI_COMM_SELF");
    if (sizeof(long) != 8)
        failf("this test assumes a 64-bit long");
    char lib[MPI_MAX_LIBRARY_VERSION_STRING];
    int len, a = 0, b = 0, c = 0;
    MPI_Get_library_version(lib, &len);
    const char *v = strstr(lib, "MPICH Version:");
    if (v && sscanf(v + strlen("MPICH Version:"), " %d.%d.%d", &a, &b, &c) >= 2) {
        bugs[BUG_MPICH_REDUCE_INPLACE].present = a == 4 && (b == 0 || (b == 1 && c < 2));
        bugs[BUG_MPICH_UNSIGNED_MINMAX].present = a == 4 && b == 0;
        bugs[BUG_MPICH_A2A_HOLES].present = a == 4 && b == 0;
    }
    v = strstr(lib, "Open MPI v");
    if (v && sscanf(v + strlen("Open MPI v"), "%d.%d.%d", &a, &b, &c) >= 2) {
        bugs[BUG_OMPI_ULONG_MINMAX].present = a == 4 && (b == 0 || (b == 1 && c < 5));
        bugs[BUG_OMPI_IA2AV_ZEROS].present = a < 5;
        bugs[BUG_OMPI_FREE_IN_FLIGHT].present = a < 5;
    }
    init_types();
    static const char *const names[O_NPREDEF] = {
        "MPI_SUM",  "MPI_PROD", "MPI_MIN", "MPI_MAX",  "MPI_LAND",   "MPI_LOR",
        "MPI_LXOR", "MPI_BAND", "MPI_BOR", "MPI_BXOR", "MPI_MAXLOC", "MPI_MINLOC"};
    MPI_Op predef[O_NPREDEF] = {MPI_SUM,  MPI_PROD, MPI_MIN, MPI_MAX,  MPI_LAND,   MPI_LOR,
                                MPI_LXOR, MPI_BAND, MPI_BOR, MPI_BXOR, MPI_MAXLOC, MPI_MINLOC};
    for (int o = 0; o < O_NPREDEF; o++) {
        ops[o].name = names[o];
        ops[o].op = predef[o];
    }
    ops[O_USER_COMM].name = "user op a+b+1 (commutative)";
    MPI_Op_create(user_sum1, 1, &ops[O_USER_COMM].op);
    ops[O_USER_NONCOMM].name = "user op affine composition (non-commutative)";
    MPI_Op_create(user_affine, 0, &ops[O_USER_NONCOMM].op);

    double t0 = MPI_Wtime();
    for (size_t i = 0; i < sizeof(groups) / sizeof(groups[0]); i++) {
        if (!selected(only, groups[i].name))
            continue;
        double t = MPI_Wtime();
        groups[i].run();
        if (verbose && wrank == 0)
            printf("check_mpi_colls: group %s passed in %.2f s\n", groups[i].name, MPI_Wtime() - t);
    }

    for (int id = 0; id < T_NTYPES; id++)
        if (types[id].derived)
            MPI_Type_free(&types[id].dt);
    MPI_Op_free(&ops[O_USER_COMM].op);
    MPI_Op_free(&ops[O_USER_NONCOMM].op);
    if (wrank == 0) {
        if (failures)
            printf("check_mpi_colls: %d ranks: %ld cases, %ld failed checks on rank 0, in %.1f s\n",
                   wsize, cases_run, failures, MPI_Wtime() - t0);
        else
            printf("check_mpi_colls: %d ranks: all %ld cases passed in %.1f s\n", wsize, cases_run,
                   MPI_Wtime() - t0);
        for (int i = 0; i < NBUGS; i++)
            if (bugs[i].hits)
                printf("check_mpi_colls: note: %s (%ld times)\n", bugs[i].what, bugs[i].hits);
        fflush(stdout);
    }
    if (failures)
        fprintf(stderr, "check_mpi_colls: world rank %d: %ld failed checks\n", wrank, failures);
    MPI_Finalize();
    return failures != 0;
}
