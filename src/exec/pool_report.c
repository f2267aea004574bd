/*
 * pool_report.c - the report printed when a wait would deadlock a pool.
 *
 * Printed on stderr when WEFT_CHECK is set in the environment (or the check
 * layer is enabled) at pool creation, in the shape of every weft report
 * (docs/exec.md shows one): a title, the wait-for chain of every worker,
 * with the task it runs and the task it waits on, each with its function
 * and submit site, a two-column scenario that hangs, and the fix. The whole
 * report is formatted into one buffer and written with one write(2), so
 * reports from several threads do not interleave. Function names and
 * source lines come from the base layer's symboliser (DWARF, then the
 * dynamic symbol table). The report goes out through the check layer's
 * sinks (reporter callback, WEFT_CHECK_OUTPUT, JSON lines, the report
 * count and `weft check`'s exit status), kind "pool-deadlock".
 */
#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

#include "internal/backtrace.h"
#include "internal/check.h"
#include "internal/exec.h"

#define WEFT__REPORT_MAX 8192

typedef struct weft__out {
    char buf[WEFT__REPORT_MAX];
    size_t len;
} weft__out_t;

__attribute__((format(printf, 2, 3))) static void weft__outf(weft__out_t *o, const char *fmt, ...)
{
    if (o->len >= sizeof o->buf)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(o->buf + o->len, sizeof o->buf - o->len, fmt, ap);
    va_end(ap);
    if (n > 0)
        o->len += (size_t)n < sizeof o->buf - o->len ? (size_t)n : sizeof o->buf - o->len - 1;
}

/* A task function: its name (from debug information or the dynamic
 * symbol table, via the base layer's symboliser), else its address. */
static void weft__outfn(weft__out_t *o, weft_task_fn fn)
{
    weft__frame_t f;
    if (fn != NULL)
        weft__symbolize((void *)(uintptr_t)fn, 0, &f);
    if (fn != NULL && f.function[0] != '\0')
        weft__outf(o, "%s()", f.function);
    else
        weft__outf(o, "task %#lx", (unsigned long)(uintptr_t)fn);
}

/* A submit site: "file:line in function()" from WEFT_POOL_SUBMIT, or the
 * symbolised return address of weft_pool_submit in the same shape when
 * debug information has the line, else "function (module+offset)". */
static void weft__outsite(weft__out_t *o, uintptr_t site)
{
    if (site & WEFT__SITE_TAG) {
        const weft_src_site_t *s = (const weft_src_site_t *)(site & ~WEFT__SITE_TAG);
        weft__outf(o, "%s:%d in %s()", s->file, s->line, s->func);
        return;
    }
    if (site == 0) {
        weft__outf(o, "(unknown)");
        return;
    }
    weft__frame_t f;
    weft__symbolize((void *)site, 1, &f);
    if (f.file[0] != '\0') {
        weft__outf(o, "%s:%d in %s()", f.file, f.line, f.function[0] ? f.function : "??");
    } else {
        char buf[256];
        weft__frame_format(&f, buf, sizeof buf);
        weft__outf(o, "%s", buf);
    }
}

static const char *weft__state_name(uint32_t s)
{
    static const char *const names[] = {"queued", "running", "done", "cancelled"};
    return s < 4 ? names[s] : "?";
}

/* One worker's line pair: what it runs, and what it waits on. */
static void weft__out_worker(weft__out_t *o, const weft__worker_t *w)
{
    weft_task_fn fn = __atomic_load_n(&w->cur_fn, __ATOMIC_RELAXED);
    weft__outf(o, "  worker %u (tid %u) ", w->index, __atomic_load_n(&w->tid, __ATOMIC_RELAXED));
    if (fn == NULL) {
        weft__outf(o, "is idle\n");
        return;
    }
    weft__outf(o, "runs ");
    weft__outfn(o, fn);
    weft__outf(o, ", submitted at ");
    weft__outsite(o, __atomic_load_n(&w->cur_site, __ATOMIC_RELAXED));
    const weft_future_t *f = w->waiting_on;
    if (f == NULL) {
        weft__outf(o, "\n");
        return;
    }
    uint32_t s = __atomic_load_n(&f->state, __ATOMIC_RELAXED);
    weft__outf(o, "\n      waits on ");
    weft__outfn(o, f->fn);
    weft__outf(o, " [%s", weft__state_name(s));
    unsigned r = __atomic_load_n(&f->runner, __ATOMIC_RELAXED);
    if (s == WEFT__F_RUNNING && r != 0)
        weft__outf(o, " on worker %u", r - 1);
    weft__outf(o, "], submitted at ");
    weft__outsite(o, f->site);
    weft__outf(o, "\n");
}

/* The scenario that hangs: two columns when the pool has two workers or
 * more (the waiter and one other), one column for a single worker. */
static void weft__out_scenario(weft__out_t *o, const weft__worker_t *a, const weft__worker_t *b)
{
    weft__outf(o, "\n Possible unsafe scenario:\n\n");
    if (a == b) {
        weft__outf(o,
                   "       worker %u\n       ----\n  run a task\n  submit a child task\n"
                   "  wait for the child (the only worker is busy waiting)\n",
                   a->index);
    } else {
        weft__outf(o, "       worker %-18u worker %u\n", b->index, a->index);
        weft__outf(o, "       ----                      ----\n");
        weft__outf(o, "  run a task                run a task\n");
        weft__outf(o, "  submit a child task       submit a child task\n");
        weft__outf(o, "  wait for its child        wait for its child\n");
        weft__outf(o, "     (no worker is left to run either child)\n");
    }
    weft__outf(o, "\n *** DEADLOCK ***\n\n");
}

/* The title and the paragraph that says what was found. */
static void weft__out_header(weft__out_t *o, weft_pool_t *pool, const weft__worker_t *waiter,
                             const weft_future_t *f, bool cycle)
{
    weft__outf(o, "\n=====================================================\n");
    weft__outf(o, "weft: potential deadlock: %s in pool '%s'\n",
               cycle ? "wait-for cycle" : "pool-induced deadlock", pool->name);
    weft__outf(o, "-----------------------------------------------------\n");
    weft__outf(o, "worker %u of pool '%s' is about to wait on ", waiter->index, pool->name);
    weft__outfn(o, f->fn);
    weft__outf(o, ", submitted at ");
    weft__outsite(o, f->site);
    if (cycle)
        weft__outf(o,
                   ",\nand that wait leads, through the workers below, back to a task "
                   "that worker %u\nis running itself:\n\n",
                   waiter->index);
    else
        weft__outf(o,
                   ",\nwhich is still queued in the same pool, and every one of the pool's %u "
                   "workers\nis itself waiting on a task queued in that pool:\n\n",
                   pool->nthreads);
}

void weft__pool_deadlock_report(weft_pool_t *pool, const weft__worker_t *waiter,
                                const weft_future_t *f, bool cycle)
{
    weft__out_t out; /* 8 KiB of stack: reports come from worker threads */
    weft__out_t *o = &out;
    o->len = 0;
    weft__symbolize_begin();
    weft__out_header(o, pool, waiter, f, cycle);
    for (unsigned i = 0; i < pool->nthreads; i++)
        weft__out_worker(o, &pool->workers[i]);
    const weft__worker_t *other = waiter;
    if (pool->nthreads > 1)
        other = &pool->workers[waiter->index == 0 ? 1 : 0];
    if (!cycle)
        weft__out_scenario(o, waiter, other);
    else
        weft__outf(o, "\n *** DEADLOCK ***\n\n");
    weft__outf(o, "weft_future_wait() in worker %u returns -EDEADLK instead of hanging.\n",
               waiter->index);
    if (cycle)
        weft__outf(o, "Fix: a task must not wait on its own future, nor on a task that "
                      "waits for it.\n");
    else
        weft__outf(o, "Fix: submit the awaited tasks to another pool (a bulkhead), or create "
                      "the pool\nwith wait_runs_inline so a waiting worker runs them "
                      "itself.\n");
    weft__symbolize_end();
    o->buf[o->len < sizeof o->buf ? o->len : sizeof o->buf - 1] = 0;
    char title[160];
    snprintf(title, sizeof title, "potential deadlock: %s in pool '%s'",
             cycle ? "wait-for cycle" : "pool-induced deadlock", pool->name);
    weft__check_report_text("pool-deadlock", title, o->buf);
}
