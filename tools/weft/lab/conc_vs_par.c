/*
 * conc_vs_par.c - the `concurrency-vs-parallelism` experiment: N threads
 * sharing one CPU all make progress (concurrency) but finish no sooner than
 * one thread doing all the work; spread over all CPUs they finish up to
 * CPU-count times sooner (parallelism).
 *
 * The job is a fixed amount of CPU-bound work (a dependent multiply chain),
 * calibrated to take about a second on one thread, split evenly over N
 * threads. Each thread records when it started and when it finished.
 * "All progress" is measured as the time the first thread finished, as a
 * fraction of the wall time: near 1 when the threads interleave, near 1/N
 * when they run one after the other.
 *
 * Verdict: reproduced when confined to one CPU the speed-up is below 1.25
 * and the first thread finished after 50% of the wall time (interleaving),
 * and spread over the CPUs the speed-up reaches 75% of min(N, CPUs), on a
 * machine with at least 2 CPUs.
 */
#include <stdio.h>

#include "weft.h"
#include "lab/lab.h"

#define MAX_THREADS 64
#define CHUNK 20000u /* units between progress checks */

struct cvp_worker {
    uint64_t units;
    int cpu; /* -1: run anywhere */
    struct weft_lab_gate *gate;
    uint64_t start, end, sink;
} __attribute__((aligned(64)));

static void *cvp_thread(void *arg)
{
    struct cvp_worker *w = arg;
    if (w->cpu >= 0)
        (void)weft_lab_pin_self(w->cpu);
    weft_lab_gate_wait(w->gate);
    w->start = weft_now_ns();
    for (uint64_t done = 0; done < w->units; done += CHUNK)
        w->sink += weft_lab_work(CHUNK, done + w->sink);
    w->end = weft_now_ns();
    return NULL;
}

struct cvp_run {
    double wall_ns;
    double first_finish; /* first thread's finish time / wall time */
};

/* cpu_mode: -2 spread (thread i on the i-th allowed CPU), else that CPU for all. */
static int run_job(unsigned n, uint64_t units, int cpu_mode, struct cvp_run *out)
{
    static struct cvp_worker w[MAX_THREADS];
    struct weft_lab_gate gate;
    weft_lab_gate_init(&gate, n);
    unsigned cpus = weft_cpu_count();
    for (unsigned i = 0; i < n; i++)
        w[i] = (struct cvp_worker){units / n, cpu_mode, &gate, 0, 0, 0};
    for (unsigned i = 0; cpu_mode == -2 && i < n; i++)
        w[i].cpu = weft_lab_allowed_cpu(i % cpus);
    int rc = weft_lab_run_threads(n, cvp_thread, w, sizeof w[0], 60000000000LL);
    if (rc != 0)
        return rc;
    uint64_t start = UINT64_MAX, end = 0, first = UINT64_MAX;
    for (unsigned i = 0; i < n; i++) {
        start = w[i].start < start ? w[i].start : start;
        end = w[i].end > end ? w[i].end : end;
        first = w[i].end < first ? w[i].end : first;
    }
    out->wall_ns = (double)(end - start);
    out->first_finish = (double)(first - start) / out->wall_ns;
    return 0;
}

/* Work units that take about `ns` on one thread. */
static uint64_t calibrate(uint64_t ns)
{
    uint64_t units = 200000, t0 = weft_now_ns();
    volatile uint64_t sink = weft_lab_work(units, t0);
    (void)sink;
    uint64_t el = weft_now_ns() - t0;
    return (uint64_t)((double)units * (double)ns / (double)(el > 0 ? el : 1));
}

static void explain(struct weft_lab_ctx *ctx, unsigned n, double sc, double ss, double ff)
{
    weft_lab_note(ctx,
                  "%u threads on one CPU: speed-up %.2f (threshold below 1.25); the first "
                  "finished at %.0f%% of the wall time, so all of them ran interleaved "
                  "rather than one after another.",
                  n, sc, 100 * ff);
    weft_lab_note(ctx, "Spread over %u CPU%s: speed-up %.2f (threshold %.2f).", ctx->cpus,
                  ctx->cpus == 1 ? "" : "s", ss, 0.75 * (n < ctx->cpus ? n : ctx->cpus));
    if (ctx->cpus < 2)
        weft_lab_note(ctx, "With one CPU there is no parallelism to show.");
    weft_lab_note_load(ctx);
}

static int cvp_run(struct weft_lab_ctx *ctx)
{
    unsigned n = ctx->cpus < 4 ? 4 : ctx->cpus > MAX_THREADS ? MAX_THREADS : ctx->cpus;
    uint64_t units = calibrate(weft_lab_budget_ns(ctx, 1000));
    int cpu0 = weft_lab_allowed_cpu(0);
    struct cvp_run serial, confined, spread;
    int rc;
    if ((rc = run_job(1, units, cpu0, &serial)) != 0 ||
        (rc = run_job(n, units, cpu0, &confined)) != 0 ||
        (rc = run_job(n, units, -2, &spread)) != 0)
        return weft_lab_fail(ctx, rc, "worker threads");
    double sc = serial.wall_ns / confined.wall_ns, ss = serial.wall_ns / spread.wall_ns;
    static const char *const cols[] = {"wall ms", "speed-up", "first done at"};
    weft_lab_table(ctx, "the same CPU-bound job", 3, cols);
    weft_lab_row(ctx, "1 thread", serial.wall_ns / 1e6, 1.0, 1.0);
    weft_lab_row(ctx, "N on one CPU", confined.wall_ns / 1e6, sc, confined.first_finish);
    weft_lab_row(ctx, "N on all CPUs", spread.wall_ns / 1e6, ss, spread.first_finish);
    weft_lab_plot(ctx, WEFT_LAB_PLOT_BARS, 1u << 1, false, "placement", "speed-up");
    weft_lab_metric(ctx, "threads", n);
    weft_lab_metric(ctx, "cpus", ctx->cpus);
    weft_lab_metric(ctx, "serial_ms", serial.wall_ns / 1e6);
    weft_lab_metric(ctx, "confined_ms", confined.wall_ns / 1e6);
    weft_lab_metric(ctx, "spread_ms", spread.wall_ns / 1e6);
    weft_lab_metric(ctx, "speedup_confined", sc);
    weft_lab_metric(ctx, "speedup_spread", ss);
    weft_lab_metric(ctx, "confined_first_finish_fraction", confined.first_finish);
    unsigned par = n < ctx->cpus ? n : ctx->cpus;
    weft_lab_verdict(ctx, ctx->cpus >= 2 && sc < 1.25 && confined.first_finish > 0.5 &&
                              ss >= 0.75 * par);
    explain(ctx, n, sc, ss, confined.first_finish);
    return 0;
}

const struct weft_lab_experiment weft_lab_conc_vs_par = {
    "concurrency-vs-parallelism",
    "Threads confined to one CPU all make progress but give no speed-up (concurrency); spread "
    "over all CPUs they give a speed-up near the CPU count (parallelism).",
    cvp_run,
};
