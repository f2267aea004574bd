/*
 * loop_blocking.c - the `loop-blocking` experiment: one long CPU-bound
 * callback on an event loop delays every other callback (timer lag jumps to
 * about the callback's length); offloaded to a pool, the same work leaves
 * the lag low; the loop's stall watchdog names the blocking callback.
 *
 * A ticker timer is armed every TICK_MS; each time it fires, its lag is the
 * fire time minus the time it was due. Three phases run on fresh loops:
 * baseline (only the ticker), blocking (a one-shot timer burns BLOCK_MS of
 * CPU inside its callback) and offload (the same timer hands the burn to a
 * one-worker pool with weft_loop_offload). The loop's watchdog, with a
 * threshold of a quarter of the burn, reports the blocking callback; its
 * report is captured and shown as the experiment's report text.
 *
 * Verdict: reproduced when the blocking phase's worst lag is at least half
 * the burn, the offload phase's worst lag is below a quarter of it, and the
 * watchdog's report names the blocking callback.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "weft.h"
#include "lab/lab.h"

#define TICK_NS 2000000u /* the ticker's period */
#define MAX_TICKS 4096u

enum phase { P_BASELINE, P_BLOCKING, P_OFFLOAD, P_COUNT };
static const char *const phase_name[P_COUNT] = {"baseline", "blocking", "offload"};

struct lb_run {
    weft_loop_t *loop;
    weft_pool_t *pool;
    weft_timer_t ticker, burner, stopper;
    enum phase phase;
    uint64_t block_ns, due;
    unsigned span; /* the phase lasts about span + 0.5 burns */
    unsigned nlag;
    uint64_t lag[MAX_TICKS];
    bool offload_done;
};

/* The watchdog's report, captured on the watchdog thread. */
static pthread_mutex_t report_lock = PTHREAD_MUTEX_INITIALIZER;
static char report_text[WEFT_LAB_TEXT];

static void on_stall(const char *report, void *arg)
{
    (void)arg;
    pthread_mutex_lock(&report_lock);
    if (report_text[0] == '\0')
        snprintf(report_text, sizeof report_text, "%s", report);
    pthread_mutex_unlock(&report_lock);
}

/* Burn CPU for ns nanoseconds (no sleeping: the loop thread stays on CPU). */
static void *burn(void *arg)
{
    uint64_t ns = *(const uint64_t *)arg, t0 = weft_now_ns(), sink = 0;
    while (weft_now_ns() - t0 < ns)
        sink += weft_lab_work(2000, sink + t0);
    return (void *)(uintptr_t)(sink | 1);
}

static void on_tick(weft_timer_t *t)
{
    struct lb_run *r = t->data;
    uint64_t now = weft_now_ns();
    if (r->nlag < MAX_TICKS)
        r->lag[r->nlag++] = now > r->due ? now - r->due : 0;
    r->due = weft_now_ns() + TICK_NS;
    (void)weft_timer_start(t, on_tick, TICK_NS, 0);
}

/*
 * The blocking callback. Not static, with a distinctive name, so that the
 * watchdog's report (which symbolises the running callback) names it.
 */
void weft__lab_blocking_callback(weft_timer_t *t);
void weft__lab_blocking_callback(weft_timer_t *t)
{
    struct lb_run *r = t->data;
    (void)burn(&r->block_ns);
}

/* The offloaded work: the same burn, on a pool worker. */
static void *offload_work(void *arg)
{
    struct lb_run *r = arg;
    return burn(&r->block_ns);
}

static void on_offload_done(weft_loop_t *loop, void *arg, void *result, int status)
{
    (void)loop, (void)result;
    struct lb_run *r = arg;
    r->offload_done = status == 0;
}

static void offload_callback(weft_timer_t *t)
{
    struct lb_run *r = t->data;
    (void)weft_loop_offload(r->loop, r->pool, offload_work, r, on_offload_done);
}

static void on_stop(weft_timer_t *t)
{
    struct lb_run *r = t->data;
    (void)weft_timer_stop(&r->ticker);
}

static int start_timers(struct lb_run *r)
{
    weft_timer_t *ts[] = {&r->ticker, &r->burner, &r->stopper};
    for (unsigned i = 0; i < 3; i++) {
        int rc = weft_timer_init(r->loop, ts[i]);
        if (rc != 0)
            return rc;
        ts[i]->data = r;
    }
    r->due = weft_now_ns() + TICK_NS;
    int rc = weft_timer_start(&r->ticker, on_tick, TICK_NS, 0);
    uint64_t at = r->block_ns / 2;
    if (rc == 0 && r->phase == P_BLOCKING)
        rc = weft_timer_start(&r->burner, weft__lab_blocking_callback, at, 0);
    else if (rc == 0 && r->phase == P_OFFLOAD)
        rc = weft_timer_start(&r->burner, offload_callback, at, 0);
    if (rc == 0)
        rc = weft_timer_start(&r->stopper, on_stop, at + r->block_ns * r->span, 0);
    return rc;
}

static int run_phase(struct lb_run *r, weft_pool_t *pool)
{
    /* weft_lab_broken(): no watchdog, for the tests' self-check. */
    weft_loop_opts_t o = {.name = "lab.loop",
                          .stall_threshold_ns = weft_lab_broken() ? 0 : r->block_ns / 4,
                          .on_stall = on_stall};
    r->pool = pool;
    int rc = weft_loop_create(&r->loop, &o);
    if (rc != 0)
        return rc;
    rc = start_timers(r);
    if (rc == 0)
        rc = weft_loop_run(r->loop, WEFT_RUN_DEFAULT);
    (void)weft_loop_destroy(r->loop);
    return rc < 0 ? rc : 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* The q-quantile of the sorted lags, in milliseconds. */
static double pct_ms(const struct lb_run *r, double q)
{
    if (r->nlag == 0)
        return 0;
    unsigned i = (unsigned)(q * (double)(r->nlag - 1) + 0.5);
    return (double)r->lag[i] / 1e6;
}

static void record(struct weft_lab_ctx *ctx, struct lb_run *r)
{
    qsort(r->lag, r->nlag, sizeof r->lag[0], cmp_u64);
    const char *n = phase_name[r->phase];
    double p50 = pct_ms(r, 0.5), p99 = pct_ms(r, 0.99), max = pct_ms(r, 1.0);
    char key[64];
    snprintf(key, sizeof key, "ticks_%s", n);
    weft_lab_metric(ctx, key, r->nlag);
    snprintf(key, sizeof key, "lag_p50_ms_%s", n);
    weft_lab_metric(ctx, key, p50);
    snprintf(key, sizeof key, "lag_p99_ms_%s", n);
    weft_lab_metric(ctx, key, p99);
    snprintf(key, sizeof key, "lag_max_ms_%s", n);
    weft_lab_metric(ctx, key, max);
    weft_lab_row(ctx, n, (double)r->nlag, p50, p99, max);
}

static void explain(struct weft_lab_ctx *ctx, double block_ms, bool named)
{
    weft_lab_note(ctx,
                  "A %.0f ms CPU-bound callback on the loop: the worst timer lag was %.1f ms "
                  "(threshold: at least %.0f ms); offloaded to a pool, %.1f ms (threshold: "
                  "below %.0f ms); without it, %.1f ms.",
                  block_ms, weft_lab_get(ctx, "lag_max_ms_blocking", 0), block_ms / 2,
                  weft_lab_get(ctx, "lag_max_ms_offload", 0), block_ms / 4,
                  weft_lab_get(ctx, "lag_max_ms_baseline", 0));
    weft_lab_note(ctx, "The watchdog (threshold %.0f ms) %s the blocking callback.", block_ms / 4,
                  named ? "named" : "did not name");
    weft_lab_note_load(ctx);
}

static int lb_run(struct weft_lab_ctx *ctx)
{
    uint64_t block_ns = ctx->mode == WEFT_LAB_QUICK ? 100000000u : 200000000u;
    unsigned span = ctx->mode == WEFT_LAB_QUICK ? 2 : 4;
    weft_pool_t *pool;
    weft_pool_opts_t po = {.name = "lab.offload", .threads = 1};
    int rc = weft_pool_create(&pool, &po);
    if (rc != 0)
        return weft_lab_fail(ctx, rc, "offload pool");
    static const char *const cols[] = {"ticks", "lag p50 ms", "lag p99 ms", "lag max ms"};
    weft_lab_table(ctx, "timer lag while a long callback runs", 4, cols);
    static struct lb_run r[P_COUNT];
    for (int p = 0; p < P_COUNT && rc == 0; p++) {
        r[p] = (struct lb_run){.phase = (enum phase)p, .block_ns = block_ns, .span = span};
        rc = run_phase(&r[p], pool);
        if (rc == 0)
            record(ctx, &r[p]);
    }
    (void)weft_pool_destroy_timed(pool, 10000000000LL);
    if (rc != 0)
        return weft_lab_fail(ctx, rc, "event loop");
    pthread_mutex_lock(&report_lock);
    snprintf(ctx->res->check_report, sizeof ctx->res->check_report, "%s", report_text);
    pthread_mutex_unlock(&report_lock);
    bool named = strstr(ctx->res->check_report, "weft__lab_blocking_callback") != NULL;
    double block_ms = (double)block_ns / 1e6;
    weft_lab_metric(ctx, "block_ms", block_ms);
    weft_lab_metric(ctx, "offload_completed", r[P_OFFLOAD].offload_done);
    weft_lab_metric(ctx, "watchdog_reports", report_text[0] != '\0');
    weft_lab_metric(ctx, "watchdog_named_callback", named);
    weft_lab_plot(ctx, WEFT_LAB_PLOT_BARS, 1u << 3, false, "phase", "worst timer lag (ms)");
    weft_lab_verdict(ctx, weft_lab_get(ctx, "lag_max_ms_blocking", 0) >= block_ms / 2 &&
                              weft_lab_get(ctx, "lag_max_ms_offload", 1e9) < block_ms / 4 && named);
    explain(ctx, block_ms, named);
    return 0;
}

const struct weft_lab_experiment weft_lab_loop_blocking = {
    "loop-blocking",
    "A 200 ms CPU-bound callback on an event loop delays every other callback by about that "
    "long; offloaded to a pool the timer lag stays low, and the stall watchdog names the "
    "blocking callback.",
    lb_run,
};
