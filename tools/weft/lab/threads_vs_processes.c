/*
 * threads_vs_processes.c - the `threads-vs-processes` experiment: the same
 * CPU-bound job runs about CPU-count times faster on a thread pool or a
 * process pool than on one thread, but not at all faster on an event loop
 * (one thread); a process pool pays more per task (messages between
 * processes) than a thread pool; and in exchange it isolates crashes: a
 * crashing task in the process pool fails alone, while a crashing thread
 * takes its whole process down.
 *
 * The job is TASKS tasks of a dependent multiply chain, together about a
 * second of one CPU, each with its own seed, so every result is known in
 * advance (computed by the serial run) and checked for every variant.
 * Per-task overhead is measured with tasks that do nothing. Isolation: a
 * process pool runs ISO_TASKS tasks of which one calls abort(); and a
 * forked child runs ISO_TASKS threads of which one calls abort(), and the
 * parent shows how that child died and how many of its tasks finished.
 *
 * Verdict: reproduced on a machine with at least 2 CPUs when the thread and
 * process pools' speed-ups reach 65% of min(CPUs, workers), the event
 * loop's stays below 1.25, every variant computed every result correctly,
 * a process-pool task costs more than a thread-pool task, the process
 * pool's crash failed exactly one task (with -ECHILD) while the others
 * completed, and the child with the crashing thread died of a signal.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "weft.h"
#include "lab/lab.h"

#define TASKS 16u
#define ISO_TASKS 8u
#define CRASHER 3u /* the index of the task that crashes */

struct tvp_task {
    uint64_t units, seed, result;
};

static uint64_t expected[TASKS];

/* The job's task: deterministic CPU work. */
static uint64_t job(uint64_t units, uint64_t seed)
{
    return weft_lab_work(units, seed);
}

static void init_tasks(struct tvp_task *t, uint64_t units, uint64_t seed)
{
    for (unsigned i = 0; i < TASKS; i++)
        t[i] = (struct tvp_task){units / TASKS, weft_lab_mix(seed + i), 0};
}

static void clear_results(struct tvp_task *t)
{
    for (unsigned i = 0; i < TASKS; i++)
        t[i].result = 0;
}

static unsigned count_correct(const struct tvp_task *t)
{
    unsigned n = 0;
    for (unsigned i = 0; i < TASKS; i++)
        n += t[i].result == expected[i];
    return n;
}

/* ---- the variants ------------------------------------------------------------ */

/* The reference: the best of two runs on one thread (the first also warms up). */
static double run_serial(struct tvp_task *t)
{
    double best = 0;
    for (int k = 0; k < 2; k++) {
        uint64_t t0 = weft_now_ns();
        for (unsigned i = 0; i < TASKS; i++)
            expected[i] = t[i].result = job(t[i].units, t[i].seed);
        double ms = (double)(weft_now_ns() - t0) / 1e6;
        best = k == 0 || ms < best ? ms : best;
    }
    return best;
}

static void *thread_task(void *arg)
{
    struct tvp_task *t = arg;
    t->result = job(t->units, t->seed);
    return NULL;
}

/* An overhead probe: nothing to do. */
static void *noop_task(void *arg)
{
    return arg;
}

/* Run n tasks (job on t[i], or no-ops when t is NULL) on the pool; ms. */
static int run_threads(weft_pool_t *pool, struct tvp_task *t, unsigned n, double *ms)
{
    static weft_future_t *f[4096];
    uint64_t t0 = weft_now_ns();
    int rc = 0;
    unsigned k = 0;
    for (; k < n && rc == 0; k++)
        rc = t ? WEFT_POOL_SUBMIT(pool, thread_task, &t[k], &f[k])
               : WEFT_POOL_SUBMIT(pool, noop_task, NULL, &f[k]);
    k -= rc != 0;
    for (unsigned i = 0; i < k; i++) {
        int w = weft_future_wait(f[i], 30000000000LL, NULL);
        rc = rc != 0 ? rc : w;
        weft_future_release(f[i]);
    }
    *ms = (double)(weft_now_ns() - t0) / 1e6;
    return rc;
}

static int proc_task(const void *in, size_t in_len, void **out, size_t *out_len)
{
    struct tvp_task t;
    if (in_len != sizeof t)
        return -EINVAL;
    memcpy(&t, in, sizeof t);
    if (t.units == 0) /* an overhead probe: nothing to do */
        return 0;
    uint64_t *r = malloc(sizeof *r);
    if (!r)
        return -ENOMEM;
    /* weft_lab_broken(): a wrong seed, for the tests' self-check. */
    *r = job(t.units, t.seed + weft_lab_broken());
    *out = r;
    *out_len = sizeof *r;
    return 0;
}

/* Run n tasks on the process pool, storing results into t[i] (t[0] reused
 * when `same` is set, for the overhead probe); ms. */
static int run_procs(weft_proc_pool_t *pool, struct tvp_task *t, unsigned n, bool same, double *ms)
{
    static weft_proc_future_t *f[4096];
    uint64_t t0 = weft_now_ns();
    int rc = 0;
    unsigned k = 0;
    for (; k < n && rc == 0; k++)
        rc = weft_proc_submit(pool, proc_task, &t[same ? 0 : k], sizeof t[0], &f[k]);
    k -= rc != 0;
    for (unsigned i = 0; i < k; i++) {
        const void *out;
        size_t len = 0;
        int w = weft_proc_wait(f[i], 30000000000LL, &out, &len);
        if (w == 0 && len == sizeof t[0].result && !same)
            memcpy(&t[i].result, out, len);
        rc = rc != 0 ? rc : w;
        weft_proc_release(f[i]);
    }
    *ms = (double)(weft_now_ns() - t0) / 1e6;
    return rc;
}

static void loop_task(weft_timer_t *timer)
{
    struct tvp_task *t = timer->data;
    t->result = job(t->units, t->seed);
}

static int run_loop(struct tvp_task *t, double *ms)
{
    weft_loop_t *loop;
    static weft_timer_t timers[TASKS];
    uint64_t t0 = weft_now_ns();
    int rc = weft_loop_create(&loop, NULL);
    for (unsigned i = 0; i < TASKS && rc == 0; i++) {
        rc = weft_timer_init(loop, &timers[i]);
        timers[i].data = &t[i];
        if (rc == 0)
            rc = weft_timer_start(&timers[i], loop_task, 0, 0);
    }
    if (rc == 0)
        rc = weft_loop_run(loop, WEFT_RUN_DEFAULT);
    if (loop)
        (void)weft_loop_destroy(loop);
    *ms = (double)(weft_now_ns() - t0) / 1e6;
    return rc < 0 ? rc : 0;
}

/* ---- isolation ----------------------------------------------------------------- */

static void crash(void)
{
    struct rlimit no_core = {0, 0};
    (void)setrlimit(RLIMIT_CORE, &no_core); /* a demonstration, not a bug to keep */
    abort();
}

static int crashing_proc_task(const void *in, size_t in_len, void **out, size_t *out_len)
{
    (void)out, (void)out_len;
    if (in_len == 1 && *(const char *)in == 'x')
        crash();
    weft_lab_sleep_ns(20000000);
    return 0;
}

struct tvp_iso {
    unsigned proc_ok, proc_echild, proc_other;
    char proc_failure[96];
    int thread_child_signal; /* the signal that killed the child, or 0 */
    unsigned *thread_done;   /* shared with the child: its tasks that finished */
};

static int proc_isolation(struct tvp_iso *iso)
{
    weft_proc_pool_t *pool;
    weft_proc_opts_t o = {.name = "lab.crash", .workers = 2};
    int rc = weft_proc_pool_create(&pool, &o);
    if (rc != 0)
        return rc;
    weft_proc_future_t *f[ISO_TASKS];
    for (unsigned i = 0; i < ISO_TASKS; i++) {
        const char in = i == CRASHER ? 'x' : '.';
        if ((rc = weft_proc_submit(pool, crashing_proc_task, &in, 1, &f[i])) != 0)
            break;
    }
    for (unsigned i = 0; i < ISO_TASKS && rc == 0; i++) {
        int w = weft_proc_wait(f[i], 30000000000LL, NULL, NULL);
        iso->proc_ok += w == 0;
        iso->proc_echild += w == -ECHILD;
        iso->proc_other += w != 0 && w != -ECHILD;
        weft_proc_failure_t why;
        if (w == -ECHILD && weft_proc_failure(f[i], &why) == 0)
            snprintf(iso->proc_failure, sizeof iso->proc_failure, "%s", why.what);
        weft_proc_release(f[i]);
    }
    (void)weft_proc_pool_destroy_timed(pool, 10000000000LL);
    return rc;
}

struct tvp_thread_arg {
    unsigned index, *done;
};

static void *crashing_thread(void *arg)
{
    struct tvp_thread_arg *a = arg;
    if (a->index == CRASHER)
        crash();
    weft_lab_sleep_ns(200000000);
    /* Relaxed: a count the parent reads after the child is gone. */
    __atomic_fetch_add(a->done, 1, __ATOMIC_RELAXED);
    return NULL;
}

/* In a forked child: ISO_TASKS threads, one of which crashes the child. */
__attribute__((noreturn)) static void thread_crash_child(unsigned *done)
{
    struct tvp_thread_arg a[ISO_TASKS];
    for (unsigned i = 0; i < ISO_TASKS; i++)
        a[i] = (struct tvp_thread_arg){i, done};
    (void)weft_lab_run_threads(ISO_TASKS, crashing_thread, a, sizeof a[0], 10000000000LL);
    _exit(0);
}

static int thread_isolation(struct tvp_iso *iso)
{
    pid_t pid = fork();
    if (pid < 0)
        return -errno;
    if (pid == 0)
        thread_crash_child(iso->thread_done);
    uint64_t t0 = weft_now_ns();
    int status = 0;
    while (waitpid(pid, &status, WNOHANG) == 0) {
        if (weft_now_ns() - t0 > 20000000000u) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            return -ETIMEDOUT;
        }
        weft_lab_sleep_ns(5000000);
    }
    iso->thread_child_signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    return 0;
}

static int isolation(struct tvp_iso *iso)
{
    iso->thread_done = mmap(NULL, sizeof *iso->thread_done, PROT_READ | PROT_WRITE,
                            MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (iso->thread_done == MAP_FAILED)
        return -errno;
    *iso->thread_done = 0;
    int rc = thread_isolation(iso);
    if (rc == 0)
        rc = proc_isolation(iso);
    if (rc != 0)
        munmap(iso->thread_done, sizeof *iso->thread_done);
    return rc;
}

/* ---- the experiment ---------------------------------------------------------------- */

/* Work units that take about `ns` on one thread. */
static uint64_t calibrate(uint64_t ns)
{
    uint64_t units = 200000;
    volatile uint64_t sink = weft_lab_work(units, 1); /* warm up */
    uint64_t t0 = weft_now_ns();
    sink = weft_lab_work(units, t0);
    (void)sink;
    uint64_t el = weft_now_ns() - t0;
    return (uint64_t)((double)units * (double)ns / (double)(el > 0 ? el : 1));
}

struct tvp_speed {
    double ms[4];
    unsigned correct[4];
    double thread_overhead_us, proc_overhead_us;
};

enum { R_SERIAL, R_THREADS, R_PROCS, R_LOOP };
static const char *const row_name[4] = {"serial", "thread_pool", "process_pool", "event_loop"};

static int speed(struct weft_lab_ctx *ctx, unsigned workers, struct tvp_speed *s)
{
    static struct tvp_task t[TASKS];
    init_tasks(t, calibrate(weft_lab_budget_ns(ctx, 1000)), ctx->seed);
    s->ms[R_SERIAL] = run_serial(t);
    s->correct[R_SERIAL] = TASKS;
    weft_pool_t *tp;
    weft_proc_pool_t *pp;
    weft_pool_opts_t to = {.name = "lab.threads", .threads = workers};
    weft_proc_opts_t po = {.name = "lab.procs", .workers = workers};
    int rc = weft_pool_create(&tp, &to);
    if (rc != 0)
        return rc;
    if ((rc = weft_proc_pool_create(&pp, &po)) != 0) {
        weft_pool_destroy(tp);
        return rc;
    }
    unsigned probes = (unsigned)weft_lab_scale(ctx, 2000);
    probes = probes > 4096 ? 4096 : probes;
    struct tvp_task probe = {0, 0, 0};
    double tms = 0, pms = 0;
    clear_results(t);
    if ((rc = run_threads(tp, t, TASKS, &s->ms[R_THREADS])) == 0)
        s->correct[R_THREADS] = count_correct(t);
    clear_results(t);
    if (rc == 0 && (rc = run_procs(pp, t, TASKS, false, &s->ms[R_PROCS])) == 0)
        s->correct[R_PROCS] = count_correct(t);
    if (rc == 0)
        rc = run_threads(tp, NULL, probes, &tms);
    if (rc == 0)
        rc = run_procs(pp, &probe, probes, true, &pms);
    s->thread_overhead_us = tms * 1e3 / probes;
    s->proc_overhead_us = pms * 1e3 / probes;
    (void)weft_pool_destroy_timed(tp, 10000000000LL);
    (void)weft_proc_pool_destroy_timed(pp, 10000000000LL);
    clear_results(t);
    if (rc == 0 && (rc = run_loop(t, &s->ms[R_LOOP])) == 0)
        s->correct[R_LOOP] = count_correct(t);
    return rc;
}

static void record(struct weft_lab_ctx *ctx, const struct tvp_speed *s)
{
    char key[64];
    for (int r = 0; r < 4; r++) {
        double up = s->ms[R_SERIAL] / s->ms[r];
        snprintf(key, sizeof key, "%s_ms", row_name[r]);
        weft_lab_metric(ctx, key, s->ms[r]);
        snprintf(key, sizeof key, "speedup_%s", row_name[r]);
        weft_lab_metric(ctx, key, up);
        snprintf(key, sizeof key, "%s_correct", row_name[r]);
        weft_lab_metric(ctx, key, s->correct[r]);
        double us = r == R_THREADS ? s->thread_overhead_us : r == R_PROCS ? s->proc_overhead_us : 0;
        weft_lab_row(ctx, row_name[r], s->ms[r], up, (double)s->correct[r], us);
    }
    weft_lab_metric(ctx, "tasks", TASKS);
    weft_lab_metric(ctx, "overhead_us_per_task_thread_pool", s->thread_overhead_us);
    weft_lab_metric(ctx, "overhead_us_per_task_process_pool", s->proc_overhead_us);
}

static void record_isolation(struct weft_lab_ctx *ctx, const struct tvp_iso *iso)
{
    weft_lab_metric(ctx, "crash_tasks", ISO_TASKS);
    weft_lab_metric(ctx, "crash_process_pool_completed", iso->proc_ok);
    weft_lab_metric(ctx, "crash_process_pool_echild", iso->proc_echild);
    weft_lab_metric(ctx, "crash_process_pool_other_errors", iso->proc_other);
    weft_lab_metric(ctx, "crash_thread_child_signal", iso->thread_child_signal);
    /* Relaxed: the child that counted is gone (reaped). */
    weft_lab_metric(ctx, "crash_thread_child_completed",
                    __atomic_load_n(iso->thread_done, __ATOMIC_RELAXED));
}

static void explain(struct weft_lab_ctx *ctx, unsigned workers, const struct tvp_iso *iso)
{
    weft_lab_note(ctx,
                  "%u CPU-bound tasks, %u workers: speed-up %.2f on the thread pool, %.2f on "
                  "the process pool (threshold %.2f each), %.2f on the event loop's one thread "
                  "(threshold: below 1.25).",
                  TASKS, workers, weft_lab_get(ctx, "speedup_thread_pool", 0),
                  weft_lab_get(ctx, "speedup_process_pool", 0), 0.65 * workers,
                  weft_lab_get(ctx, "speedup_event_loop", 0));
    weft_lab_note(ctx,
                  "An empty task costs %.1f us on the thread pool, %.1f us on the process "
                  "pool (a message each way between processes).",
                  weft_lab_get(ctx, "overhead_us_per_task_thread_pool", 0),
                  weft_lab_get(ctx, "overhead_us_per_task_process_pool", 0));
    weft_lab_note(ctx,
                  "Crash isolation: in the process pool 1 of %u tasks called abort(); %u failed "
                  "with ECHILD (%s) and %u completed. In a child process with %u threads, one "
                  "thread called abort(): the child died of signal %d (%s) and %u of the other "
                  "%u tasks finished.",
                  ISO_TASKS, iso->proc_echild, iso->proc_failure, iso->proc_ok, ISO_TASKS,
                  iso->thread_child_signal, strsignal(iso->thread_child_signal),
                  (unsigned)weft_lab_get(ctx, "crash_thread_child_completed", 0), ISO_TASKS - 1);
    if (ctx->cpus < 2)
        weft_lab_note(ctx, "With one CPU there is no speed-up to show.");
    weft_lab_note_load(ctx);
}

static int tvp_run(struct weft_lab_ctx *ctx)
{
    unsigned workers = ctx->cpus < 2 ? 2 : ctx->cpus > 16 ? 16 : ctx->cpus;
    struct tvp_iso iso = {0};
    struct tvp_speed s = {{0}};
    int rc = isolation(&iso); /* first: fork while this process has one thread */
    if (rc != 0)
        return weft_lab_fail(ctx, rc, "crash isolation");
    if ((rc = speed(ctx, workers, &s)) != 0) {
        munmap(iso.thread_done, sizeof *iso.thread_done);
        return weft_lab_fail(ctx, rc, "the CPU-bound job");
    }
    static const char *const cols[] = {"wall ms", "speed-up", "correct", "us per empty task"};
    weft_lab_table(ctx, "the same CPU-bound job", 4, cols);
    record(ctx, &s);
    record_isolation(ctx, &iso);
    weft_lab_metric(ctx, "workers", workers);
    weft_lab_plot(ctx, WEFT_LAB_PLOT_BARS, 1u << 1, false, "executor", "speed-up");
    unsigned par = workers < ctx->cpus ? workers : ctx->cpus;
    bool correct = true;
    for (int r = 0; r < 4; r++)
        correct = correct && s.correct[r] == TASKS;
    bool fast = ctx->cpus >= 2 && weft_lab_get(ctx, "speedup_thread_pool", 0) >= 0.65 * par &&
                weft_lab_get(ctx, "speedup_process_pool", 0) >= 0.65 * par &&
                weft_lab_get(ctx, "speedup_event_loop", 9) < 1.25;
    bool isolated =
        iso.proc_echild == 1 && iso.proc_ok == ISO_TASKS - 1 && iso.thread_child_signal != 0;
    weft_lab_verdict(ctx, fast && correct && isolated && s.proc_overhead_us > s.thread_overhead_us);
    explain(ctx, workers, &iso);
    munmap(iso.thread_done, sizeof *iso.thread_done);
    return 0;
}

const struct weft_lab_experiment weft_lab_threads_vs_processes = {
    "threads-vs-processes",
    "A CPU-bound job speeds up on a thread pool or a process pool but not on an event loop; a "
    "process costs more per task, and in exchange a crashing task fails alone, while a "
    "crashing thread takes its whole process down.",
    tvp_run,
};
