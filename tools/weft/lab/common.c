/*
 * common.c - what every lab experiment shares: recording metrics, notes and
 * the table; time budgets; threads, a spin gate, CPU pinning, busy work.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal/base.h"
#include "lab/lab.h"

/* ---- recording ------------------------------------------------------------ */

static struct weft_lab_metric *find_metric(struct weft_lab_result *r, const char *key)
{
    for (unsigned i = 0; i < r->nmetrics; i++)
        if (strcmp(r->metric[i].key, key) == 0)
            return &r->metric[i];
    return NULL;
}

void weft_lab_metric(struct weft_lab_ctx *ctx, const char *key, double value)
{
    struct weft_lab_result *r = ctx->res;
    struct weft_lab_metric *m = find_metric(r, key);
    if (m == NULL) {
        if (r->nmetrics == WEFT_LAB_MAX_METRICS)
            return;
        m = &r->metric[r->nmetrics++];
        snprintf(m->key, sizeof m->key, "%s", key);
    }
    m->value = value;
}

double weft_lab_get(const struct weft_lab_ctx *ctx, const char *key, double otherwise)
{
    const struct weft_lab_metric *m = find_metric(ctx->res, key);
    return m != NULL ? m->value : otherwise;
}

static void vappend(char *buf, size_t size, const char *fmt, va_list ap)
{
    size_t len = strlen(buf);
    if (len > 0 && len + 1 < size)
        buf[len++] = ' ';
    if (len + 1 < size)
        vsnprintf(buf + len, size - len, fmt, ap);
}

void weft_lab_note(struct weft_lab_ctx *ctx, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vappend(ctx->res->notes, sizeof ctx->res->notes, fmt, ap);
    va_end(ap);
}

void weft_lab_table(struct weft_lab_ctx *ctx, const char *title, unsigned ncols,
                    const char *const cols[])
{
    struct weft_lab_table *t = &ctx->res->table;
    if (ncols > WEFT_LAB_MAX_COLS)
        ncols = WEFT_LAB_MAX_COLS;
    snprintf(t->title, sizeof t->title, "%s", title);
    t->ncols = ncols;
    t->nrows = 0;
    for (unsigned i = 0; i < ncols; i++)
        snprintf(t->col[i], sizeof t->col[i], "%s", cols[i]);
}

void weft_lab_row(struct weft_lab_ctx *ctx, const char *label, ...)
{
    struct weft_lab_table *t = &ctx->res->table;
    if (t->nrows == WEFT_LAB_MAX_ROWS)
        return;
    unsigned r = t->nrows++;
    snprintf(t->row[r], sizeof t->row[r], "%s", label);
    va_list ap;
    va_start(ap, label);
    for (unsigned i = 0; i < t->ncols; i++)
        t->cell[r][i] = va_arg(ap, double);
    va_end(ap);
}

void weft_lab_plot(struct weft_lab_ctx *ctx, enum weft_lab_plot_kind kind, unsigned columns,
                   bool logy, const char *xlabel, const char *ylabel)
{
    struct weft_lab_plot *p = &ctx->res->plot;
    p->kind = kind;
    p->columns = columns;
    p->logy = logy;
    snprintf(p->xlabel, sizeof p->xlabel, "%s", xlabel);
    snprintf(p->ylabel, sizeof p->ylabel, "%s", ylabel);
}

void weft_lab_verdict(struct weft_lab_ctx *ctx, bool reproduced)
{
    ctx->res->reproduced = reproduced;
}

int weft_lab_fail(struct weft_lab_ctx *ctx, int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx->res->error_msg, sizeof ctx->res->error_msg, fmt, ap);
    va_end(ap);
    ctx->res->error = err < 0 ? err : -EIO;
    ctx->res->reproduced = false;
    return ctx->res->error;
}

void weft_lab_note_load(struct weft_lab_ctx *ctx)
{
    double load[1];
    if (getloadavg(load, 1) != 1)
        return;
    weft_lab_metric(ctx, "load_average", load[0]);
    if (load[0] >= (double)ctx->cpus)
        weft_lab_note(ctx,
                      "The machine was busy (1-minute load average %.2f on %u CPU%s), so "
                      "threads meant to run at the same time often did not; timing-"
                      "dependent results are weaker than on an idle machine.",
                      load[0], ctx->cpus, ctx->cpus == 1 ? "" : "s");
}

bool weft_lab_broken(void)
{
    const char *v = getenv("WEFT_LAB_BROKEN");
    return v != NULL && v[0] != '\0' && strcmp(v, "0") != 0;
}

/* ---- budgets ---------------------------------------------------------------- */

uint64_t weft_lab_budget_ns(const struct weft_lab_ctx *ctx, uint64_t default_ms)
{
    uint64_t ns = default_ms * 1000000u;
    switch (ctx->mode) {
    case WEFT_LAB_QUICK:
        return ns / 25;
    case WEFT_LAB_FULL:
        return ns * 4;
    default:
        return ns;
    }
}

uint64_t weft_lab_scale(const struct weft_lab_ctx *ctx, uint64_t default_n)
{
    uint64_t n = default_n;
    if (ctx->mode == WEFT_LAB_QUICK)
        n = default_n / 25;
    else if (ctx->mode == WEFT_LAB_FULL)
        n = default_n * 4;
    return n > 0 ? n : 1;
}

/* ---- helpers ---------------------------------------------------------------- */

uint64_t weft_lab_rand(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545F4914F6CDD1DULL;
}

uint64_t weft_lab_mix(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ULL;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
    x ^= x >> 31;
    return x != 0 ? x : 0x9E3779B97F4A7C15ULL;
}

int weft_lab_run_threads(unsigned n, void *(*fn)(void *), void *args, size_t stride,
                         int64_t timeout_ns)
{
    pthread_t *tids = calloc(n, sizeof *tids);
    if (tids == NULL)
        return -ENOMEM;
    unsigned started = 0;
    int err = 0;
    for (; started < n; started++) {
        int e = pthread_create(&tids[started], NULL, fn, (char *)args + started * stride);
        if (e != 0) {
            err = -e;
            break;
        }
    }
    struct timespec at;
    clock_gettime(CLOCK_REALTIME, &at); /* pthread_timedjoin_np takes CLOCK_REALTIME */
    at.tv_sec += timeout_ns / 1000000000;
    at.tv_nsec += timeout_ns % 1000000000;
    if (at.tv_nsec >= 1000000000) {
        at.tv_sec++;
        at.tv_nsec -= 1000000000;
    }
    for (unsigned i = 0; i < started; i++) {
        if (pthread_timedjoin_np(tids[i], NULL, &at) != 0) {
            err = -ETIMEDOUT; /* Left running: see lab.h. */
            break;
        }
    }
    free(tids);
    return err;
}

void weft_lab_gate_init(struct weft_lab_gate *g, unsigned parties)
{
    g->parties = parties;
    g->arrived = 0;
    g->phase = 0;
}

/*
 * The last thread to arrive resets the count and bumps the phase; the others
 * spin until the phase moves. The acq_rel fetch_add and the release store of
 * the phase pair with the acquire loads of the waiters, so everything written
 * before the gate is visible after it.
 */
void weft_lab_gate_wait(struct weft_lab_gate *g)
{
    unsigned phase = __atomic_load_n(&g->phase, __ATOMIC_ACQUIRE);
    if (__atomic_add_fetch(&g->arrived, 1, __ATOMIC_ACQ_REL) == g->parties) {
        /* Relaxed: ordered before the release store of the phase below. */
        __atomic_store_n(&g->arrived, 0, __ATOMIC_RELAXED);
        __atomic_store_n(&g->phase, phase + 1, __ATOMIC_RELEASE);
        return;
    }
    for (unsigned spins = 0; __atomic_load_n(&g->phase, __ATOMIC_ACQUIRE) == phase; spins++) {
        if (spins > 2000)
            sched_yield();
        else
            weft__cpu_relax();
    }
}

int weft_lab_pin_self(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return -pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

int weft_lab_allowed_cpu(unsigned index)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) != 0)
        return -1;
    for (int c = 0; c < CPU_SETSIZE; c++)
        if (CPU_ISSET(c, &set) && index-- == 0)
            return c;
    return -1;
}

void weft_lab_sleep_ns(uint64_t ns)
{
    struct timespec ts = {(time_t)(ns / 1000000000u), (long)(ns % 1000000000u)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

uint64_t weft_lab_work(uint64_t units, uint64_t seed)
{
    uint64_t x = seed | 1;
    for (uint64_t i = 0; i < units; i++)
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    return x;
}
