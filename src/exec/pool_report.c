/*
 * pool_report.c - the report printed when a wait would deadlock a pool.
 *
 * Printed on stderr when WEFT_CHECK is set in the environment (or the check
 * layer is enabled) at pool creation, in the shape of every weft report
 * (docs/exec.md shows one): a title, the wait-for chain of every worker,
 * with the task it runs and the task it waits on, each with its function
 * and submit site, a two-column scenario that hangs, and the fix. The whole
 * report is formatted into one buffer and written with one write(2), so
 * reports from several threads do not interleave. When the check layer
 * arrives it takes this function over (its report sink and symboliser).
 */
#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

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

/* A code address as "name+0xoff" (exported symbols) or "0xaddr (module)". */
static void weft__outaddr(weft__out_t *o, uintptr_t addr)
{
    Dl_info info;
    if (addr != 0 && dladdr((void *)addr, &info) != 0) {
        if (info.dli_sname != NULL && info.dli_saddr != NULL) {
            weft__outf(o, "%s+0x%lx", info.dli_sname,
                       (unsigned long)(addr - (uintptr_t)info.dli_saddr));
            return;
        }
        if (info.dli_fname != NULL) {
            weft__outf(o, "%#lx (%s+0x%lx)", (unsigned long)addr, info.dli_fname,
                       (unsigned long)(addr - (uintptr_t)info.dli_fbase));
            return;
        }
    }
    weft__outf(o, "%#lx", (unsigned long)addr);
}

/* A task function: its symbol name when it has one, else its address. */
static void weft__outfn(weft__out_t *o, weft_task_fn fn)
{
    Dl_info info;
    uintptr_t a = (uintptr_t)fn;
    if (fn != NULL && dladdr((void *)a, &info) != 0 && info.dli_sname != NULL &&
        (uintptr_t)info.dli_saddr == a)
        weft__outf(o, "%s()", info.dli_sname);
    else
        weft__outf(o, "task %#lx", (unsigned long)a);
}

static void weft__outsite(weft__out_t *o, uintptr_t site)
{
    if (site & WEFT__SITE_TAG) {
        const weft_src_site_t *s = (const weft_src_site_t *)(site & ~WEFT__SITE_TAG);
        weft__outf(o, "%s:%d in %s()", s->file, s->line, s->func);
    } else if (site != 0) {
        weft__outf(o, "return address ");
        weft__outaddr(o, site);
    } else {
        weft__outf(o, "(unknown)");
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
    ssize_t w = write(STDERR_FILENO, o->buf, o->len);
    (void)w;
}
