/*
 * io_bound.c - the `io-bound` experiment: 10,000 concurrent waits cost one
 * event-loop thread a timer each (a few dozen bytes), while one thread per
 * wait costs a thread each (a stack, kernel state, creation time).
 *
 * Each variant runs in a forked child of its own, so its memory numbers
 * (VmHWM, the peak resident set, minus VmRSS at the start, from
 * /proc/self/status) are not mixed with the other's. The child writes its
 * results into a shared anonymous mapping and exits; the parent waits for
 * it with a timeout and kills it if it overstays.
 *
 * - loop: one thread starts WAITS timers on one event loop, each due after
 *   the wait time, and runs the loop until every timer has fired.
 * - threads: one thread per wait (64 KiB stacks), each sleeping the wait
 *   time. If a thread cannot be created (ulimit, memory), the variant goes
 *   on with the threads it has and reports how many that was.
 *
 * Verdict: reproduced when the loop completed every wait, the threads
 * variant completed every wait it started, and the loop's extra memory per
 * wait is under half the threads' (threads per wait: 1 vs 1/WAITS).
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "weft.h"
#include "lab/lab.h"

#define WAITS 10000u
#define STACK_BYTES (64u * 1024u)

enum variant { V_LOOP, V_THREADS, V_COUNT };
static const char *const variant_name[V_COUNT] = {"loop", "threads"};

/* What a variant's child reports (in shared memory). */
struct io_outcome {
    unsigned waits;     /* waits attempted */
    unsigned started;   /* waits actually started (threads created, timers started) */
    unsigned completed; /* atomic in the threads variant: waits that ended */
    unsigned threads;   /* threads created for the waits */
    double wall_ms;
    double rss_kib; /* VmHWM minus the starting VmRSS */
    int error;      /* 0, or the first negative errno met */
    bool done;      /* the child finished writing */
};

/* A field of /proc/self/status in KiB ("VmRSS:", "VmHWM:"), or 0. */
static double status_kib(const char *field)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    double kib = 0;
    size_t n = strlen(field);
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, field, n) == 0)
            kib = strtod(line + n, NULL);
    if (f)
        fclose(f);
    return kib;
}

static void on_timer(weft_timer_t *t)
{
    struct io_outcome *o = t->data;
    o->completed++;
}

static void run_loop(struct io_outcome *o, uint64_t wait_ns)
{
    weft_loop_t *loop;
    weft_timer_t *t = calloc(o->waits, sizeof *t);
    o->error = t ? weft_loop_create(&loop, NULL) : -ENOMEM;
    if (o->error != 0)
        return;
    /* weft_lab_broken(): one timer short, for the tests' self-check. */
    unsigned n = o->waits - weft_lab_broken();
    for (unsigned i = 0; i < n && o->error == 0; i++) {
        t[i].data = o;
        o->error = weft_timer_init(loop, &t[i]);
        if (o->error == 0)
            o->error = weft_timer_start(&t[i], on_timer, wait_ns, 0);
        o->started += o->error == 0;
    }
    int rc = weft_loop_run(loop, WEFT_RUN_DEFAULT);
    o->error = o->error != 0 ? o->error : rc;
    (void)weft_loop_destroy(loop);
    free(t);
}

struct io_sleeper {
    uint64_t wait_ns;
    struct io_outcome *o;
};

static void *sleeper(void *arg)
{
    struct io_sleeper *s = arg;
    weft_lab_sleep_ns(s->wait_ns);
    /* Relaxed: a count, read after every thread was joined. */
    __atomic_fetch_add(&s->o->completed, 1, __ATOMIC_RELAXED);
    return NULL;
}

static void run_threads(struct io_outcome *o, uint64_t wait_ns)
{
    pthread_t *th = calloc(o->waits, sizeof *th);
    struct io_sleeper s = {wait_ns, o};
    pthread_attr_t attr;
    if (!th || pthread_attr_init(&attr) != 0) {
        o->error = -ENOMEM;
        free(th);
        return;
    }
    (void)pthread_attr_setstacksize(&attr, STACK_BYTES);
    for (unsigned i = 0; i < o->waits; i++) {
        int rc = pthread_create(&th[i], &attr, sleeper, &s);
        if (rc != 0) {
            o->error = -rc;
            break;
        }
        o->started = o->threads = i + 1;
    }
    for (unsigned i = 0; i < o->started; i++)
        pthread_join(th[i], NULL);
    pthread_attr_destroy(&attr);
    free(th);
}

/* In the child: run one variant and report. */
__attribute__((noreturn)) static void child(enum variant v, struct io_outcome *o, uint64_t wait_ns)
{
    double rss0 = status_kib("VmRSS:");
    uint64_t t0 = weft_now_ns();
    if (v == V_LOOP)
        run_loop(o, wait_ns);
    else
        run_threads(o, wait_ns);
    o->wall_ms = (double)(weft_now_ns() - t0) / 1e6;
    o->rss_kib = status_kib("VmHWM:") - rss0;
    /* Release: the parent reads the outcome after waitpid, which orders it anyway. */
    __atomic_store_n(&o->done, true, __ATOMIC_RELEASE);
    _exit(0);
}

/* Fork a child for the variant and wait for it, killing it after timeout_ns. */
static int run_variant(enum variant v, struct io_outcome *o, uint64_t wait_ns, uint64_t timeout_ns)
{
    pid_t pid = fork();
    if (pid < 0)
        return -errno;
    if (pid == 0)
        child(v, o, wait_ns);
    uint64_t t0 = weft_now_ns();
    int status;
    while (waitpid(pid, &status, WNOHANG) == 0) {
        if (weft_now_ns() - t0 > timeout_ns) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            return -ETIMEDOUT;
        }
        weft_lab_sleep_ns(5000000);
    }
    /* Acquire: pairs with the child's release store of done. */
    return __atomic_load_n(&o->done, __ATOMIC_ACQUIRE) ? 0 : -ECHILD;
}

static void record(struct weft_lab_ctx *ctx, enum variant v, const struct io_outcome *o)
{
    const char *n = variant_name[v];
    char key[64];
    double per_wait = o->started ? o->rss_kib / o->started : 0;
    snprintf(key, sizeof key, "%s_waits_started", n);
    weft_lab_metric(ctx, key, o->started);
    snprintf(key, sizeof key, "%s_waits_completed", n);
    weft_lab_metric(ctx, key, o->completed);
    snprintf(key, sizeof key, "%s_threads_created", n);
    weft_lab_metric(ctx, key, o->threads);
    snprintf(key, sizeof key, "%s_wall_ms", n);
    weft_lab_metric(ctx, key, o->wall_ms);
    snprintf(key, sizeof key, "%s_rss_kib", n);
    weft_lab_metric(ctx, key, o->rss_kib);
    snprintf(key, sizeof key, "%s_rss_kib_per_wait", n);
    weft_lab_metric(ctx, key, per_wait);
    weft_lab_row(ctx, n, (double)o->completed, (double)o->threads, o->wall_ms, o->rss_kib,
                 per_wait);
}

static void explain(struct weft_lab_ctx *ctx, const struct io_outcome *o, double wait_ms)
{
    const struct io_outcome *l = &o[V_LOOP], *t = &o[V_THREADS];
    weft_lab_note(ctx,
                  "%u waits of %.0f ms on one event-loop thread: %u completed in %.0f ms, "
                  "%.0f KiB of extra memory (%.2f KiB per wait), no thread created.",
                  l->waits, wait_ms, l->completed, l->wall_ms, l->rss_kib,
                  l->started ? l->rss_kib / l->started : 0);
    weft_lab_note(ctx,
                  "One thread per wait (64 KiB stacks): %u of %u threads created, %u waits "
                  "completed in %.0f ms, %.0f KiB (%.2f KiB per wait; threshold: the loop's "
                  "per-wait memory under half of this).",
                  t->threads, t->waits, t->completed, t->wall_ms, t->rss_kib,
                  t->started ? t->rss_kib / t->started : 0);
    if (t->error != 0)
        weft_lab_note(ctx,
                      "Thread creation stopped at %u threads (%s): the process or user "
                      "limits (ulimit -u, memory) allow no more here.",
                      t->threads, strerror(-t->error));
    weft_lab_note_load(ctx);
}

static int io_run(struct weft_lab_ctx *ctx)
{
    uint64_t wait_ns = ctx->mode == WEFT_LAB_QUICK ? 100000000u : 1000000000u;
    unsigned thread_waits = ctx->mode == WEFT_LAB_QUICK ? WAITS / 10 : WAITS;
    struct io_outcome *o =
        mmap(NULL, V_COUNT * sizeof *o, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (o == MAP_FAILED)
        return weft_lab_fail(ctx, -errno, "shared memory");
    memset(o, 0, V_COUNT * sizeof *o);
    o[V_LOOP].waits = WAITS;
    o[V_THREADS].waits = thread_waits;
    static const char *const cols[] = {"waits done", "threads", "wall ms", "RSS KiB",
                                       "KiB per wait"};
    weft_lab_table(ctx, "concurrent waits: one loop thread vs a thread each", 5, cols);
    for (int v = 0; v < V_COUNT; v++) {
        int rc = run_variant((enum variant)v, &o[v], wait_ns, 30000000000u);
        if (rc == 0 && v == V_LOOP && o[v].error != 0)
            rc = o[v].error;
        if (rc != 0) {
            munmap(o, V_COUNT * sizeof *o);
            return weft_lab_fail(ctx, rc, "%s variant", variant_name[v]);
        }
        record(ctx, (enum variant)v, &o[v]);
    }
    weft_lab_metric(ctx, "waits", WAITS);
    weft_lab_metric(ctx, "wait_ms", (double)wait_ns / 1e6);
    weft_lab_plot(ctx, WEFT_LAB_PLOT_BARS, 1u << 4, true, "variant", "KiB per wait");
    const struct io_outcome *l = &o[V_LOOP], *t = &o[V_THREADS];
    double lpw = l->rss_kib / WAITS, tpw = t->started ? t->rss_kib / t->started : 0;
    weft_lab_verdict(ctx, l->completed == WAITS && t->started > 0 && t->completed == t->started &&
                              lpw < tpw / 2);
    explain(ctx, o, (double)wait_ns / 1e6);
    if (thread_waits < WAITS)
        weft_lab_note(ctx, "Quick mode: the threads variant makes %u waits, not %u.", thread_waits,
                      WAITS);
    munmap(o, V_COUNT * sizeof *o);
    return 0;
}

const struct weft_lab_experiment weft_lab_io_bound = {
    "io-bound",
    "10,000 concurrent waits cost one event-loop thread a few bytes each, while one thread "
    "per wait costs a thread, its stack and its creation time for each.",
    io_run,
};
