/*
 * bench_sync.c - weft's synchronisation primitives against glibc, side by
 * side in one run: weft_mutex_t vs pthread_mutex_t (default type),
 * weft_sem_t vs sem_t, weft_rwlock_t vs pthread_rwlock_t, weft_once vs
 * pthread_once, and weft_fairlock_t (whose anchor is the glibc mutex, as
 * glibc has no FIFO lock).
 *
 * Sections:
 *  1. Uncontended: ns per lock+unlock pair (acquire+release, once fast
 *     path) in a process that has a second, idle thread, because glibc
 *     takes single-threaded shortcuts otherwise. Lower is better.
 *  2. Contended counter: T threads increment one counter under the lock for
 *     a fixed time; total ops/s (higher is better), the longest single wait
 *     for the lock (from asking to getting, max over threads) and the spread
 *     of acquisitions per thread, as min..max of the fair share.
 *  3. The same counter with 4..32 threads: on a 2-CPU machine that shows
 *     behaviour under oversubscription, not scaling.
 *
 * Every figure is the median over several runs; weft and glibc runs
 * alternate, so drift in the machine's load hits both alike. Each contended
 * run checks the counter against the sum of the threads' operations, so a
 * broken lock cannot report a good number.
 *
 * Usage: bench_sync [--quick | --full] [--runs N] [--ms N] [--only WORD]
 */
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdalign.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "weft/sync.h"

#define BENCH_MAX_THREADS 32

/* ------------------------------------------------------------- settings */

typedef struct settings {
    const char *mode;  /* "quick", "default" or "full" */
    unsigned runs;     /* repetitions per figure (median reported) */
    uint64_t pairs;    /* iterations per uncontended run */
    unsigned ms;       /* duration of one contended run */
    const char *only;  /* run only rows whose label contains this, or NULL */
} settings_t;

static const settings_t bench_quick = {"quick", 3, 100000, 20, NULL};
static const settings_t bench_default = {"default", 5, 2000000, 200, NULL};
static const settings_t bench_full = {"full", 9, 10000000, 300, NULL};

static void usage(FILE *to)
{
    fprintf(to, "usage: bench_sync [--quick | --full] [--runs N] [--ms N] [--only WORD]\n"
                "  --quick   smoke test, a few seconds\n"
                "  --full    more and longer runs, for the record (about two minutes)\n"
                "  --runs N  repetitions per figure (the median is reported)\n"
                "  --ms N    duration of each contended run in milliseconds\n"
                "  --only W  only the rows whose label contains W (e.g. mutex, sem)\n");
}

/* A count in [1, max]. Runs are bounded because their results live in
 * arrays on the stack. */
static bool parse_count(const char *s, unsigned long max, unsigned *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s != NULL ? s : "", &end, 10);
    if (s == NULL || errno != 0 || *end != '\0' || v == 0 || v > max)
        return false;
    *out = (unsigned)v;
    return true;
}

/* 0 on success, 1 for --help, -1 on a bad command line. */
static int parse_args(int argc, char **argv, settings_t *s)
{
    *s = bench_default;
    unsigned runs = 0, ms = 0;
    const char *only = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--quick") == 0)
            *s = bench_quick;
        else if (strcmp(a, "--full") == 0)
            *s = bench_full;
        else if (strcmp(a, "--runs") == 0 && parse_count(argv[i + 1], 1000, &runs))
            i++;
        else if (strcmp(a, "--ms") == 0 && parse_count(argv[i + 1], 600000, &ms))
            i++;
        else if (strcmp(a, "--only") == 0 && argv[i + 1] != NULL)
            only = argv[++i];
        else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)
            return 1;
        else
            return -1;
    }
    if (runs != 0)
        s->runs = runs;
    if (ms != 0)
        s->ms = ms;
    s->only = only;
    return 0;
}

/* True if the row with this label is selected by --only. */
static bool selected(const settings_t *s, const char *label)
{
    return s->only == NULL || strstr(label, s->only) != NULL;
}

/* ---------------------------------------------------------- formatting */

/* A rate as "12.3M" or "812k", in buf. */
static const char *fmt_rate(char *buf, size_t len, double v)
{
    if (v >= 1e6)
        snprintf(buf, len, "%.2fM", v / 1e6);
    else
        snprintf(buf, len, "%.1fk", v / 1e3);
    return buf;
}

/* A duration as "850ns", "85us" or "12.3ms", in buf. */
static const char *fmt_ns(char *buf, size_t len, double ns)
{
    if (ns < 1e3)
        snprintf(buf, len, "%.0fns", ns);
    else if (ns < 1e6)
        snprintf(buf, len, "%.0fus", ns / 1e3);
    else
        snprintf(buf, len, "%.1fms", ns / 1e6);
    return buf;
}

/* ------------------------------------------------------------ uncontended */

/*
 * One uncontended benchmark: calls the primitive directly (no function
 * pointer in the loop) and returns the elapsed ns for n iterations. The
 * object is cache-line aligned: a lock word split across two lines would
 * make every atomic a bus lock and measure the layout, not the lock.
 */
#define PAIR_BENCH(fname, type, init, body, fini)                                                  \
    static uint64_t fname(uint64_t n)                                                              \
    {                                                                                              \
        alignas(64) type obj;                                                                      \
        init;                                                                                      \
        uint64_t t0 = bench_now_ns();                                                              \
        for (uint64_t i = 0; i < n; i++) {                                                         \
            body;                                                                                  \
        }                                                                                          \
        uint64_t dt = bench_now_ns() - t0;                                                         \
        fini;                                                                                      \
        return dt;                                                                                 \
    }

PAIR_BENCH(un_weft_mutex, weft_mutex_t, weft_mutex_init(&obj, "bench"),
           (weft_mutex_lock(&obj), weft_mutex_unlock(&obj)), weft_mutex_destroy(&obj))
PAIR_BENCH(un_glibc_mutex, pthread_mutex_t, pthread_mutex_init(&obj, NULL),
           (pthread_mutex_lock(&obj), pthread_mutex_unlock(&obj)), pthread_mutex_destroy(&obj))
PAIR_BENCH(un_glibc_sem, sem_t, sem_init(&obj, 0, 1), (sem_wait(&obj), sem_post(&obj)),
           sem_destroy(&obj))
PAIR_BENCH(un_weft_sem, weft_sem_t, weft_sem_init(&obj, 1, "bench"),
           (weft_sem_acquire(&obj), weft_sem_release(&obj)), weft_sem_destroy(&obj))
PAIR_BENCH(un_glibc_rd, pthread_rwlock_t, pthread_rwlock_init(&obj, NULL),
           (pthread_rwlock_rdlock(&obj), pthread_rwlock_unlock(&obj)), pthread_rwlock_destroy(&obj))
PAIR_BENCH(un_glibc_wr, pthread_rwlock_t, pthread_rwlock_init(&obj, NULL),
           (pthread_rwlock_wrlock(&obj), pthread_rwlock_unlock(&obj)), pthread_rwlock_destroy(&obj))
PAIR_BENCH(un_weft_rd, weft_rwlock_t, weft_rwlock_init(&obj, "bench"),
           (weft_rwlock_rdlock(&obj), weft_rwlock_unlock(&obj)), weft_rwlock_destroy(&obj))
PAIR_BENCH(un_weft_wr, weft_rwlock_t, weft_rwlock_init(&obj, "bench"),
           (weft_rwlock_wrlock(&obj), weft_rwlock_unlock(&obj)), weft_rwlock_destroy(&obj))
PAIR_BENCH(un_weft_fair, weft_fairlock_t, weft_fairlock_init(&obj, "bench"),
           (weft_fairlock_lock(&obj), weft_fairlock_unlock(&obj)), weft_fairlock_destroy(&obj))

static void once_noop(void)
{
}

PAIR_BENCH(un_glibc_once, pthread_once_t, (obj = (pthread_once_t)PTHREAD_ONCE_INIT),
           pthread_once(&obj, once_noop), (void)0)
static int weft_once_noop(void *arg)
{
    (void)arg;
    return 0;
}

PAIR_BENCH(un_weft_once, weft_once_t, (obj = (weft_once_t)WEFT_ONCE_INIT),
           weft_once(&obj, weft_once_noop, NULL), (void)0)

typedef struct uncontended {
    const char *label;
    uint64_t (*weft)(uint64_t n);
    uint64_t (*glibc)(uint64_t n);
    double ratio; /* filled in: weft / glibc, median ns per pair */
} uncontended_t;

static uncontended_t uncontended[] = {
    {"mutex lock+unlock", un_weft_mutex, un_glibc_mutex, 0},
    {"sem acquire+release", un_weft_sem, un_glibc_sem, 0},
    {"rwlock rdlock+unlock", un_weft_rd, un_glibc_rd, 0},
    {"rwlock wrlock+unlock", un_weft_wr, un_glibc_wr, 0},
    {"once (done, fast path)", un_weft_once, un_glibc_once, 0},
    {"fairlock vs glibc mutex", un_weft_fair, un_glibc_mutex, 0},
};
#define N_UNCONTENDED (sizeof uncontended / sizeof uncontended[0])

static void run_uncontended(const settings_t *s)
{
    printf("\n== uncontended, one thread working and one idle: ns per pair, median of %u "
           "runs of %llu (lower is better)\n",
           s->runs, (unsigned long long)s->pairs);
    printf("%-26s %9s %9s %11s\n", "operation", "weft", "glibc", "weft/glibc");
    double w[s->runs], g[s->runs];
    for (size_t k = 0; k < N_UNCONTENDED; k++) {
        uncontended_t *u = &uncontended[k];
        if (!selected(s, u->label))
            continue;
        (void)u->weft(s->pairs / 4); /* Warm up caches and the branch predictor. */
        (void)u->glibc(s->pairs / 4);
        for (unsigned r = 0; r < s->runs; r++) {
            w[r] = (double)u->weft(s->pairs) / (double)s->pairs;
            g[r] = (double)u->glibc(s->pairs) / (double)s->pairs;
        }
        double mw = bench_median(w, s->runs), mg = bench_median(g, s->runs);
        u->ratio = mw / mg;
        printf("%-26s %9.2f %9.2f %11.2f\n", u->label, mw, mg, u->ratio);
    }
}

/* -------------------------------------------------------------- lock ops */

/*
 * The contended benchmarks drive every primitive through this table. The
 * indirect calls cost a nanosecond or two, the same for weft and glibc, and
 * are small next to a contended hand-over.
 */
typedef struct lockops {
    const char *name;
    void (*init)(void *p);
    void (*destroy)(void *p);
    bool (*trylock)(void *p);
    void (*lock)(void *p);
    void (*unlock)(void *p);
} lockops_t;

/* The wrappers hand locks across functions, which clang's analysis cannot
 * follow; the benchmark's own pairing is checked by the counter instead. */
#define BENCH_NO_TSA WEFT_NO_THREAD_SAFETY_ANALYSIS

static void wm_init(void *p)
{
    (void)weft_mutex_init(p, "bench");
}
static void wm_destroy(void *p)
{
    (void)weft_mutex_destroy(p);
}
static BENCH_NO_TSA bool wm_trylock(void *p)
{
    return weft_mutex_trylock(p) == 0;
}
static BENCH_NO_TSA void wm_lock(void *p)
{
    weft_mutex_lock(p);
}
static BENCH_NO_TSA void wm_unlock(void *p)
{
    (void)weft_mutex_unlock(p);
}

static void pm_init(void *p)
{
    (void)pthread_mutex_init(p, NULL);
}
static void pm_destroy(void *p)
{
    (void)pthread_mutex_destroy(p);
}
static bool pm_trylock(void *p)
{
    return pthread_mutex_trylock(p) == 0;
}
static void pm_lock(void *p)
{
    (void)pthread_mutex_lock(p);
}
static void pm_unlock(void *p)
{
    (void)pthread_mutex_unlock(p);
}

static const lockops_t ops_weft_mutex = {"weft mutex", wm_init, wm_destroy,
                                         wm_trylock, wm_lock, wm_unlock};
static const lockops_t ops_glibc_mutex = {"glibc mutex", pm_init, pm_destroy,
                                          pm_trylock, pm_lock, pm_unlock};

static void ps_init(void *p)
{
    (void)sem_init(p, 0, 1);
}
static void ps_destroy(void *p)
{
    (void)sem_destroy(p);
}
static bool ps_trylock(void *p)
{
    return sem_trywait(p) == 0;
}
static void ps_lock(void *p)
{
    while (sem_wait(p) != 0) /* Only EINTR: retry. */
        ;
}
static void ps_unlock(void *p)
{
    (void)sem_post(p);
}

static const lockops_t ops_glibc_sem = {"glibc sem", ps_init, ps_destroy,
                                        ps_trylock, ps_lock, ps_unlock};

static void ws_init(void *p)
{
    (void)weft_sem_init(p, 1, "bench");
}
static void ws_destroy(void *p)
{
    (void)weft_sem_destroy(p);
}
static bool ws_trylock(void *p)
{
    return weft_sem_tryacquire(p) == 0;
}
static void ws_lock(void *p)
{
    weft_sem_acquire(p);
}
static void ws_unlock(void *p)
{
    (void)weft_sem_release(p);
}
static const lockops_t ops_weft_sem = {"weft sem", ws_init, ws_destroy,
                                       ws_trylock, ws_lock, ws_unlock};

static void prw_init(void *p)
{
    (void)pthread_rwlock_init(p, NULL);
}
static void prw_destroy(void *p)
{
    (void)pthread_rwlock_destroy(p);
}
static bool prw_trylock(void *p)
{
    return pthread_rwlock_trywrlock(p) == 0;
}
static void prw_lock(void *p)
{
    (void)pthread_rwlock_wrlock(p);
}
static void prw_unlock(void *p)
{
    (void)pthread_rwlock_unlock(p);
}

static const lockops_t ops_glibc_rwlock = {"glibc rwlock", prw_init, prw_destroy,
                                           prw_trylock, prw_lock, prw_unlock};

static void wrw_init(void *p)
{
    (void)weft_rwlock_init(p, "bench");
}
static void wrw_destroy(void *p)
{
    (void)weft_rwlock_destroy(p);
}
static BENCH_NO_TSA bool wrw_trylock(void *p)
{
    return weft_rwlock_trywrlock(p) == 0;
}
static BENCH_NO_TSA void wrw_lock(void *p)
{
    weft_rwlock_wrlock(p);
}
static BENCH_NO_TSA void wrw_unlock(void *p)
{
    (void)weft_rwlock_unlock(p);
}
static const lockops_t ops_weft_rwlock = {"weft rwlock", wrw_init, wrw_destroy,
                                          wrw_trylock, wrw_lock, wrw_unlock};

static void wf_init(void *p)
{
    (void)weft_fairlock_init(p, "bench");
}
static void wf_destroy(void *p)
{
    (void)weft_fairlock_destroy(p);
}
static BENCH_NO_TSA bool wf_trylock(void *p)
{
    return weft_fairlock_trylock(p) == 0;
}
static BENCH_NO_TSA void wf_lock(void *p)
{
    weft_fairlock_lock(p);
}
static BENCH_NO_TSA void wf_unlock(void *p)
{
    (void)weft_fairlock_unlock(p);
}
static const lockops_t ops_weft_fairlock = {"weft fairlock", wf_init, wf_destroy,
                                            wf_trylock, wf_lock, wf_unlock};

/* Storage big enough for any of the locks above. */
typedef union lockobj {
    weft_mutex_t wm;
    pthread_mutex_t pm;
    sem_t ps;
    pthread_rwlock_t prw;
    weft_sem_t ws;
    weft_rwlock_t wrw;
    weft_fairlock_t wf;
} lockobj_t;

/* ---------------------------------------------------------- contended run */

/*
 * The shared state of one run. The lock, the counter and the stop flag sit
 * on separate cache-line pairs (the adjacent-line prefetcher pulls lines in
 * twos), so a thread spinning on the lock word does not also steal the
 * counter's line from the owner, for weft and glibc alike.
 */
typedef struct contend {
    alignas(128) lockobj_t lock;
    alignas(128) uint64_t counter; /* protected by lock */
    alignas(128) int stop;         /* atomic, relaxed: set by the main thread */
    const lockops_t *ops;
    pthread_barrier_t start;
} contend_t;

typedef struct worker {
    alignas(128) contend_t *c;
    pthread_t thread;
    uint64_t ops;     /* written by the worker before it exits */
    uint64_t maxwait; /* longest ns between asking for the lock and getting it */
} worker_t;

/* What one run measured. */
typedef struct result {
    double ops_per_s;
    double maxwait_ns; /* max over threads of each thread's longest wait */
    double min_share;  /* fewest acquisitions of one thread, % of the mean */
    double max_share;  /* most acquisitions of one thread, % of the mean */
} result_t;

/*
 * An acquisition that succeeds at the first try waited for nothing; only a
 * failed trylock starts the clock, so the hot uncontended path of the run
 * carries no clock reads. The stop flag is read relaxed: it only ends the
 * loop, and pthread_join() orders the worker's results for the main thread.
 */
static void *contend_main(void *arg)
{
    worker_t *w = arg;
    contend_t *c = w->c;
    const lockops_t *ops = c->ops;
    uint64_t n = 0, maxwait = 0;
    pthread_barrier_wait(&c->start);
    while (!__atomic_load_n(&c->stop, __ATOMIC_RELAXED)) {
        if (!ops->trylock(&c->lock)) {
            uint64_t t0 = bench_now_ns();
            ops->lock(&c->lock);
            uint64_t waited = bench_now_ns() - t0;
            if (waited > maxwait)
                maxwait = waited;
        }
        c->counter++;
        ops->unlock(&c->lock);
        n++;
    }
    w->ops = n;
    w->maxwait = maxwait;
    return NULL;
}

static void summarise(const worker_t *w, unsigned n, uint64_t elapsed_ns, result_t *out)
{
    uint64_t total = 0, lo = UINT64_MAX, hi = 0, maxwait = 0;
    for (unsigned i = 0; i < n; i++) {
        total += w[i].ops;
        lo = w[i].ops < lo ? w[i].ops : lo;
        hi = w[i].ops > hi ? w[i].ops : hi;
        maxwait = w[i].maxwait > maxwait ? w[i].maxwait : maxwait;
    }
    double mean = (double)total / n;
    out->ops_per_s = (double)total * 1e9 / (double)elapsed_ns;
    out->maxwait_ns = (double)maxwait;
    out->min_share = mean > 0 ? 100.0 * (double)lo / mean : 0;
    out->max_share = mean > 0 ? 100.0 * (double)hi / mean : 0;
}

static void die(const char *what, int err)
{
    fprintf(stderr, "bench_sync: %s: %s\n", what, strerror(err));
    exit(2);
}

/* Run nthreads workers on ops for ms milliseconds. Exits on a lost update. */
static void contend_run(const lockops_t *ops, unsigned nthreads, unsigned ms, result_t *out)
{
    static contend_t c;
    static worker_t w[BENCH_MAX_THREADS];
    memset(&c, 0, sizeof c);
    c.ops = ops;
    ops->init(&c.lock);
    int r = pthread_barrier_init(&c.start, NULL, nthreads + 1);
    if (r != 0)
        die("pthread_barrier_init", r);
    for (unsigned i = 0; i < nthreads; i++) {
        w[i] = (worker_t){.c = &c};
        if ((r = pthread_create(&w[i].thread, NULL, contend_main, &w[i])) != 0)
            die("pthread_create", r);
    }
    pthread_barrier_wait(&c.start);
    uint64_t t0 = bench_now_ns();
    bench_sleep_ms(ms);
    __atomic_store_n(&c.stop, 1, __ATOMIC_RELAXED);
    uint64_t elapsed = bench_now_ns() - t0;
    uint64_t total = 0;
    for (unsigned i = 0; i < nthreads; i++) {
        pthread_join(w[i].thread, NULL);
        total += w[i].ops;
    }
    if (c.counter != total) {
        fprintf(stderr, "bench_sync: %s with %u threads lost updates: counter %llu, ops %llu\n",
                ops->name, nthreads, (unsigned long long)c.counter, (unsigned long long)total);
        exit(1);
    }
    pthread_barrier_destroy(&c.start);
    ops->destroy(&c.lock);
    summarise(w, nthreads, elapsed, out);
}

/* The median of each field over n results, in *out. */
static void median_result(const result_t *rs, unsigned n, result_t *out)
{
    double v[n];
    const size_t offs[] = {offsetof(result_t, ops_per_s), offsetof(result_t, maxwait_ns),
                           offsetof(result_t, min_share), offsetof(result_t, max_share)};
    for (size_t f = 0; f < sizeof offs / sizeof offs[0]; f++) {
        for (unsigned i = 0; i < n; i++)
            v[i] = *(const double *)((const char *)&rs[i] + offs[f]);
        *(double *)((char *)out + offs[f]) = bench_median(v, n);
    }
}

/* ----------------------------------------------------------- contended table */

typedef struct pairing {
    const char *label;
    const lockops_t *weft;
    const lockops_t *glibc;
    bool bar; /* the throughput bar applies */
} pairing_t;

static const pairing_t pairings[] = {
    {"mutex", &ops_weft_mutex, &ops_glibc_mutex, true},
    {"sem as lock", &ops_weft_sem, &ops_glibc_sem, true},
    {"rwlock wrlock", &ops_weft_rwlock, &ops_glibc_rwlock, false},
    {"fairlock vs glibc mutex", &ops_weft_fairlock, &ops_glibc_mutex, false},
};
#define N_PAIRINGS (sizeof pairings / sizeof pairings[0])

/* The ratio weft/glibc of ops/s, per pairing and thread count, for the bars. */
static const unsigned thread_counts[] = {2, 4, 8, 16, 32};
#define N_COUNTS (sizeof thread_counts / sizeof thread_counts[0])
static double contended_ratio[N_PAIRINGS][N_COUNTS];

static void print_contended_header(void)
{
    printf("%-24s %3s %9s %9s %6s | %8s %8s | %11s %11s\n", "primitive", "thr", "weft/s",
           "glibc/s", "ratio", "wait:weft", "glibc", "share:weft", "glibc");
}

static void print_contended_row(const char *label, unsigned nthreads, const result_t *w,
                                const result_t *g, double ratio)
{
    char a[32], b[32], c[32], d[32], e[32], f[32];
    snprintf(e, sizeof e, "%.0f-%.0f%%", w->min_share, w->max_share);
    snprintf(f, sizeof f, "%.0f-%.0f%%", g->min_share, g->max_share);
    printf("%-24s %3u %9s %9s %6.2f | %8s %8s | %11s %11s\n", label, nthreads,
           fmt_rate(a, sizeof a, w->ops_per_s), fmt_rate(b, sizeof b, g->ops_per_s), ratio,
           fmt_ns(c, sizeof c, w->maxwait_ns), fmt_ns(d, sizeof d, g->maxwait_ns), e, f);
}

/* Measure one pairing at one thread count, alternating weft and glibc runs. */
static void contend_pairing(const settings_t *s, size_t p, size_t k)
{
    const pairing_t *pr = &pairings[p];
    unsigned nthreads = thread_counts[k];
    result_t rw[s->runs], rg[s->runs], mw, mg;
    for (unsigned r = 0; r < s->runs; r++) {
        contend_run(pr->weft, nthreads, s->ms, &rw[r]);
        contend_run(pr->glibc, nthreads, s->ms, &rg[r]);
    }
    median_result(rw, s->runs, &mw);
    median_result(rg, s->runs, &mg);
    contended_ratio[p][k] = mw.ops_per_s / mg.ops_per_s;
    print_contended_row(pr->label, nthreads, &mw, &mg, contended_ratio[p][k]);
    fflush(stdout);
}

static void run_contended(const settings_t *s)
{
    printf("\n== contended counter: ops/s (higher is better), median of %u runs of %u ms\n",
           s->runs, s->ms);
    printf("   wait = longest single wait for the lock (max over threads);\n"
           "   share = fewest..most acquisitions of one thread, in %% of the mean\n");
    print_contended_header();
    for (size_t p = 0; p < N_PAIRINGS; p++)
        if (selected(s, pairings[p].label))
            contend_pairing(s, p, 0);
    printf("\n== oversubscribed: the same counter with more threads than the %ld CPUs.\n"
           "   On this machine these runs show behaviour under contention and\n"
           "   preemption, not scaling.\n",
           sysconf(_SC_NPROCESSORS_ONLN));
    print_contended_header();
    for (size_t p = 0; p < N_PAIRINGS; p++)
        for (size_t k = 1; k < N_COUNTS && selected(s, pairings[p].label); k++)
            contend_pairing(s, p, k);
}

/* ------------------------------------------------------------------ bars */

static void print_bar(const char *what, double ratio, bool met)
{
    printf("  %-58s %5.2f  %s\n", what, ratio, met ? "met" : "NOT met");
}

/* The worst (lowest) ops/s ratio of pairing p over every thread count. */
static double worst_ratio(size_t p)
{
    double worst = contended_ratio[p][0];
    for (size_t k = 1; k < N_COUNTS; k++)
        worst = contended_ratio[p][k] < worst ? contended_ratio[p][k] : worst;
    return worst;
}

/* The bars, for the rows that ran. */
static void run_bars(const settings_t *s)
{
    printf("\n== bars (ratio weft/glibc)\n");
    double un = uncontended[0].ratio;
    if (selected(s, uncontended[0].label))
        print_bar("uncontended mutex within 10% of glibc (ns ratio <= 1.10)", un, un <= 1.10);
    for (size_t p = 0; p < N_PAIRINGS; p++) {
        if (!pairings[p].bar || !selected(s, pairings[p].label))
            continue;
        char what[96];
        double r2 = contended_ratio[p][0], worst = worst_ratio(p);
        snprintf(what, sizeof what, "%s, 2 threads, at least glibc (ops ratio >= 1)",
                 pairings[p].label);
        print_bar(what, r2, r2 >= 1.0);
        snprintf(what, sizeof what, "%s, 2 threads, aim 1.5x glibc", pairings[p].label);
        print_bar(what, r2, r2 >= 1.5);
        snprintf(what, sizeof what, "%s, worst of 2..32 threads, at least glibc",
                 pairings[p].label);
        print_bar(what, worst, worst >= 1.0);
    }
}

int main(int argc, char **argv)
{
    settings_t s;
    int r = parse_args(argc, argv, &s);
    if (r != 0) {
        usage(r > 0 ? stdout : stderr);
        return r > 0 ? 0 : 2;
    }
    bench_cpu_t cpu;
    bench_cpu_sample(&cpu);
    printf("bench_sync: weft synchronisation primitives vs glibc (%s settings)\n", s.mode);
    bench_print_machine(argc, argv);
    bench_print_costs();
    bench_idle_t idle;
    if (bench_idle_start(&idle) != 0)
        return 2;
    run_uncontended(&s);
    run_contended(&s);
    run_bars(&s);
    bench_idle_stop(&idle);
    bench_print_interference(&cpu);
    return 0;
}
