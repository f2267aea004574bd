/*
 * loop.c - the event loop core: create, run, stop, destroy, the wake-up
 * eventfd, I/O watchers and the loop's metrics.
 *
 * DESIGN
 *   One iteration: update the time, run due timers, wait in the poller
 *   (no longer than the first timer, not at all in NOWAIT mode or when
 *   stopped), dispatch ready watchers in the order the poller gave them,
 *   run due timers again. Every user callback is bracketed by
 *   weft__loop_cb_begin/end, which feed the histograms and the watchdog.
 *
 *   Wake-ups from other threads (weft_async_send, weft_loop_stop, offload
 *   completions) share one eventfd. wake_pending coalesces them: only the
 *   sender that turns it from 0 to 1 writes to the eventfd, and the loop
 *   clears it before looking at what was sent.
 *
 *   A stopped watcher may be freed by its owner at once, so weft_io_stop
 *   clears the watcher from the rest of the current batch of events.
 */
#include <signal.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "internal/loop.h"

void weft__loop_stat_add(uint64_t *field, uint64_t n)
{
    /* Relaxed: a counter written by the loop thread alone; stats readers
     * take each field atomically and need no ordering between them. */
    __atomic_store_n(field, *field + n, __ATOMIC_RELAXED);
}

void weft__loop_hist_add(uint64_t *hist, uint64_t ns)
{
    uint64_t us = ns / 1000;
    int b = us < 2 ? 0 : 63 - __builtin_clzll(us);
    if (b >= WEFT_LOOP_HIST_BUCKETS)
        b = WEFT_LOOP_HIST_BUCKETS - 1;
    weft__loop_stat_add(&hist[b], 1);
}

void weft__loop_cb_end(weft_loop_t *l, uint64_t start)
{
    uint64_t d = weft__now_ns() - start;
    l->in_callback--;
    /* Relaxed: the watchdog re-reads cb_start after reading cb_fn and
     * cb_gen and ignores what changed under it (weft__wd_check()). */
    __atomic_store_n(&l->cb_start, 0, __ATOMIC_RELAXED);
    weft__loop_stat_add(&l->st.callbacks, 1);
    weft__loop_hist_add(l->st.cb_hist, d);
    if (d > l->st.cb_max_ns) /* Relaxed: see weft__loop_stat_add(). */
        __atomic_store_n(&l->st.cb_max_ns, d, __ATOMIC_RELAXED);
    /* Stalls are counted here, by the loop thread, so none is missed while
     * the watchdog is busy with the report of an earlier one. */
    if (l->stall_ns != 0 && d >= l->stall_ns)
        __atomic_fetch_add(&l->st.stalls, 1, __ATOMIC_RELAXED); /* a counter */
}

/* ---- wake-up -------------------------------------------------------------- */

int weft__loop_fault;

void weft__loop_wake(weft_loop_t *l)
{
    /* [W] what was sent (pending flag, stop, done list)   [W] wake_pending = 0
     *     seq_cst xchg below                                   seq_cst xchg
     * [R] wake_pending                                     [R] what was sent
     * Pairs with the exchange in weft__loop_on_wake(): either we see 0 and
     * write the eventfd, or the loop clears the flag after our exchange and
     * so reads what we sent after that. */
    if (__atomic_exchange_n(&l->wake_pending, 1, __ATOMIC_SEQ_CST) != 0)
        return;
    if (weft__unlikely(__atomic_load_n(&weft__loop_fault, __ATOMIC_RELAXED) != 0))
        return; /* broken on purpose: the flag is set, the eventfd never written */
    uint64_t one = 1;
    while (write(l->wakefd, &one, sizeof one) < 0 && errno == EINTR)
        ;
}

static void weft__loop_on_wake(weft_io_t *io, unsigned events)
{
    (void)events;
    weft_loop_t *l = io->data;
    uint64_t v;
    while (read(l->wakefd, &v, sizeof v) < 0 && errno == EINTR)
        ;
    /* Seq_cst: pairs with the exchange in weft__loop_wake(), see there. */
    __atomic_exchange_n(&l->wake_pending, 0, __ATOMIC_SEQ_CST);
    weft__offload_run(l);
    weft__asyncs_run(l);
}

/* ---- create / destroy ------------------------------------------------------ */

static int weft__loop_open_wake(weft_loop_t *l)
{
    l->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (l->wakefd < 0)
        return -errno;
    weft_io_init(l, &l->wake_io, l->wakefd);
    l->wake_io.data = l;
    l->wake_io._internal = true;
    return weft_io_start(&l->wake_io, WEFT_IO_READ, weft__loop_on_wake);
}

static void weft__loop_free(weft_loop_t *l)
{
    if (l->wakefd >= 0)
        close(l->wakefd);
    if (l->sigfd >= 0)
        close(l->sigfd);
    if (l->poll != NULL)
        weft__poll_close(l->poll);
    weft_mutex_destroy(&l->off_mu);
    free(l->heap);
    free(l->rbuf);
    free(l);
}

static int weft__loop_setup(weft_loop_t *l, const weft_loop_opts_t *o)
{
    l->name = o->name != NULL ? o->name : "loop";
    l->st.name = l->name;
    l->tcp_high_water = o->tcp_high_water != 0 ? o->tcp_high_water : (size_t)1 << 20;
    l->now = weft__now_ns();
    l->rbuf = malloc(WEFT__LOOP_RBUF);
    if (l->rbuf == NULL)
        return -ENOMEM;
    int err = weft_mutex_init(&l->off_mu, "weft.loop.offload");
    if (err == 0)
        err = weft__poll_open(&l->poll);
    if (err == 0)
        err = weft__loop_open_wake(l);
    if (err == 0)
        err = weft__signals_open(l);
    if (err == 0 && o->stall_threshold_ns != 0)
        err = weft__watchdog_start(l, o);
    return err;
}

int weft_loop_create(weft_loop_t **loop, const weft_loop_opts_t *opts)
{
    static const weft_loop_opts_t defaults;
    if (loop == NULL)
        return -EINVAL;
    if (opts == NULL)
        opts = &defaults;
    if (opts->stall_signal < 0 || opts->stall_signal >= NSIG || opts->stall_signal == SIGKILL ||
        opts->stall_signal == SIGSTOP)
        return -EINVAL;
    weft_loop_t *l = calloc(1, sizeof *l);
    if (l == NULL)
        return -ENOMEM;
    l->wakefd = l->sigfd = -1;
    int err = weft__loop_setup(l, opts);
    if (err != 0) {
        weft__watchdog_stop(l);
        weft__loop_free(l);
        return err;
    }
    *loop = l;
    return 0;
}

int weft_loop_destroy(weft_loop_t *l)
{
    if (l == NULL)
        return -EINVAL;
    /* Acquire: pairs with the release store at the end of weft_loop_run(),
     * so a run finished on another thread is complete before we free. */
    if (__atomic_load_n(&l->running, __ATOMIC_ACQUIRE) != 0)
        return -EBUSY;
    weft__offload_settle(l);
    weft__watchdog_stop(l);
    weft__tcps_close(l);
    weft__ios_detach(l);
    weft__timers_detach(l);
    weft__asyncs_detach(l);
    weft__signals_detach(l);
    weft__loop_free(l);
    return 0;
}

/* ---- run -------------------------------------------------------------------- */

static bool weft__loop_alive(const weft_loop_t *l)
{
    return l->active != 0 || l->off_pending != 0;
}

static void weft__loop_dispatch(weft_loop_t *l)
{
    for (l->ready_at = 0; l->ready_at < l->nready; l->ready_at++) {
        weft__ready_t *r = &l->ready[l->ready_at];
        weft_io_t *io = r->io;
        if (io == NULL || io->_events == 0)
            continue;
        if (io->_internal)
            io->_cb(io, r->events);
        else
            WEFT__LOOP_CALL(l, io->_cb, io, r->events);
    }
    l->nready = 0;
}

static int64_t weft__loop_timeout(weft_loop_t *l, weft_run_mode_t mode)
{
    /* Relaxed: a stop that comes later also wakes the poll (weft_loop_stop). */
    if (mode == WEFT_RUN_NOWAIT || __atomic_load_n(&l->stop, __ATOMIC_RELAXED) != 0)
        return 0;
    if (!weft__loop_alive(l))
        return 0;
    return weft__timers_next(l);
}

static int weft__loop_poll(weft_loop_t *l, int64_t timeout)
{
    uint64_t t0 = weft__now_ns();
    int n = weft__poll_wait(l->poll, l->ready, WEFT__LOOP_MAX_EVENTS, timeout);
    uint64_t t1 = weft__now_ns();
    weft__loop_stat_add(&l->st.idle_ns, t1 - t0);
    __atomic_store_n(&l->now, t1, __ATOMIC_RELAXED); /* a clock value; no order */
    if (n < 0)
        return n;
    l->nready = n;
    weft__loop_dispatch(l);
    return 0;
}

static int weft__loop_iterate(weft_loop_t *l, weft_run_mode_t mode)
{
    __atomic_store_n(&l->now, weft__now_ns(), __ATOMIC_RELAXED); /* a clock value */
    weft__timers_run(l);
    int err = weft__loop_poll(l, weft__loop_timeout(l, mode));
    if (err == 0)
        weft__timers_run(l);
    weft__loop_stat_add(&l->st.iterations, 1);
    return err;
}

int weft_loop_run(weft_loop_t *l, weft_run_mode_t mode)
{
    if (l == NULL || (unsigned)mode > WEFT_RUN_NOWAIT)
        return -EINVAL;
    /* Acq_rel: a run that ended on another thread happens before this one. */
    if (__atomic_exchange_n(&l->running, 1, __ATOMIC_ACQ_REL) != 0)
        return -EBUSY;
    /* Release: pairs with the acquire load in weft__wd_report(). */
    __atomic_store_n(&l->run_tid, weft__tid(), __ATOMIC_RELEASE);
    weft__watchdog_bind(l, true);
    int err = 0;
    /* The acquire load of stop below pairs with the release store in
     * weft_loop_stop(). */
    do {
        if (mode == WEFT_RUN_DEFAULT && !weft__loop_alive(l))
            break;
        err = weft__loop_iterate(l, mode);
    } while (err == 0 && mode == WEFT_RUN_DEFAULT &&
             __atomic_load_n(&l->stop, __ATOMIC_ACQUIRE) == 0);
    /* Relaxed: a stop racing with the end of the run is consumed by it. */
    __atomic_store_n(&l->stop, 0, __ATOMIC_RELAXED);
    weft__watchdog_bind(l, false);
    __atomic_store_n(&l->run_tid, 0, __ATOMIC_RELEASE);
    /* Release: pairs with the acquire in weft_loop_destroy() and the
     * exchange of the next run. */
    __atomic_store_n(&l->running, 0, __ATOMIC_RELEASE);
    return err != 0 ? err : weft__loop_alive(l) ? 1 : 0;
}

int weft_loop_stop(weft_loop_t *l)
{
    if (l == NULL)
        return -EINVAL;
    /* Release: pairs with the acquire load at the end of each iteration in
     * weft_loop_run(); the wake below makes a blocked poll return so the
     * loop gets there (its eventfd protocol is argued in weft__loop_wake). */
    __atomic_store_n(&l->stop, 1, __ATOMIC_RELEASE);
    weft__loop_wake(l);
    return 0;
}

uint64_t weft_loop_now(const weft_loop_t *l)
{
    return l == NULL ? 0 : __atomic_load_n(&l->now, __ATOMIC_RELAXED); /* a clock value */
}

int weft_loop_stats(weft_loop_t *l, weft_loop_stats_t *out)
{
    if (l == NULL || out == NULL)
        return -EINVAL;
    /* Every field after name is a uint64_t (weft/loop.h keeps it so). */
    uint64_t *src = (uint64_t *)&l->st.iterations;
    uint64_t *dst = (uint64_t *)&out->iterations;
    size_t n = (sizeof *out - offsetof(weft_loop_stats_t, iterations)) / sizeof(uint64_t);
    for (size_t i = 0; i < n; i++)
        dst[i] = __atomic_load_n(&src[i], __ATOMIC_RELAXED); /* counters, no order */
    out->name = l->name;
    out->active_handles = __atomic_load_n(&l->active, __ATOMIC_RELAXED);
    out->pending_offloads = __atomic_load_n(&l->off_pending, __ATOMIC_RELAXED);
    return 0;
}

/* ---- I/O watchers ------------------------------------------------------------ */

int weft_io_init(weft_loop_t *loop, weft_io_t *io, int fd)
{
    if (loop == NULL || io == NULL || fd < 0)
        return -EINVAL;
    io->loop = loop;
    io->fd = fd;
    io->_cb = NULL;
    io->_events = 0;
    io->_internal = false;
    io->_prev = io->_next = NULL;
    return 0;
}

static void weft__io_link(weft_loop_t *l, weft_io_t *io)
{
    io->_prev = NULL;
    io->_next = l->ios;
    if (l->ios != NULL)
        l->ios->_prev = io;
    l->ios = io;
}

static void weft__io_unlink(weft_loop_t *l, weft_io_t *io)
{
    if (io->_prev != NULL)
        io->_prev->_next = io->_next;
    else
        l->ios = io->_next;
    if (io->_next != NULL)
        io->_next->_prev = io->_prev;
    io->_prev = io->_next = NULL;
}

int weft_io_start(weft_io_t *io, unsigned events, weft_io_cb cb)
{
    if (io == NULL || io->loop == NULL || cb == NULL || events == 0 ||
        (events & ~(WEFT_IO_READ | WEFT_IO_WRITE)) != 0)
        return -EINVAL;
    if (events != io->_events) {
        int err = weft__poll_ctl(io->loop->poll, io, io->_events, events);
        if (err != 0)
            return err;
    }
    if (io->_events == 0) {
        weft__io_link(io->loop, io);
        if (!io->_internal)
            weft__loop_active(io->loop, +1);
    }
    io->_events = events;
    io->_cb = cb;
    return 0;
}

void weft__io_forget(weft_loop_t *l, weft_io_t *io)
{
    for (int i = l->ready_at + 1; i < l->nready; i++)
        if (l->ready[i].io == io)
            l->ready[i].io = NULL;
}

int weft_io_stop(weft_io_t *io)
{
    if (io == NULL || io->loop == NULL)
        return -EINVAL;
    if (io->_events == 0)
        return 0;
    /* The fd may be closed already; the kernel then dropped it itself. */
    int err = weft__poll_ctl(io->loop->poll, io, io->_events, 0);
    if (err != 0 && err != -EBADF && err != -ENOENT)
        return err;
    io->_events = 0;
    if (!io->_internal)
        weft__loop_active(io->loop, -1);
    weft__io_unlink(io->loop, io);
    weft__io_forget(io->loop, io);
    return 0;
}

void weft__ios_detach(weft_loop_t *l)
{
    while (l->ios != NULL) {
        l->ios->_events = 0;
        weft__io_unlink(l, l->ios);
    }
}
