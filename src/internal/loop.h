/*
 * Internals of the event loop, shared by the files of src/loop/.
 *
 * The poller backend (poll_epoll.c) sits behind the weft__poll_* calls; an
 * io_uring backend would implement the same five functions.
 */
#ifndef WEFT_INTERNAL_LOOP_H
#define WEFT_INTERNAL_LOOP_H

#include <stdbool.h>
#include <stdint.h>

#include "internal/base.h"
#include "weft/loop.h"
#include "weft/sync.h"

/* ---- poller backend ------------------------------------------------------ */

typedef struct weft__poll weft__poll_t;

/* One ready watcher: its io (NULL once it was stopped) and events. */
typedef struct weft__ready {
    weft_io_t *io;
    unsigned events;
} weft__ready_t;

int weft__poll_open(weft__poll_t **p);
void weft__poll_close(weft__poll_t *p);
/* Register, change (old != 0) or remove (events == 0) fd's interest. */
int weft__poll_ctl(weft__poll_t *p, weft_io_t *io, unsigned old, unsigned events);
/* Wait at most timeout_ns (-1: forever) and fill out[0..max); returns the
 * count (>= 0) or a negative errno. EINTR counts as 0 events. */
int weft__poll_wait(weft__poll_t *p, weft__ready_t *out, int max, int64_t timeout_ns);

/* ---- the loop ------------------------------------------------------------- */

#define WEFT__LOOP_MAX_EVENTS 1024
#define WEFT__LOOP_RBUF (64 * 1024)

typedef struct weft__offload weft__offload_t;
typedef struct weft__watchdog weft__watchdog_t;

struct weft_loop {
    const char *name;
    weft__poll_t *poll;
    uint64_t now;         /* loop thread writes; atomic (weft_loop_now) */
    uint32_t running;     /* atomic; 1 between run's entry and exit */
    uint32_t stop;        /* atomic; set by weft_loop_stop */
    uint32_t in_callback; /* loop thread only */
    uint32_t run_tid;     /* atomic; the thread running the loop, or 0 */
    uint64_t active;      /* active user handles; atomic for stats */

    weft_io_t *ios;   /* started watchers; loop thread only */
    weft_tcp_t *tcps; /* open TCP handles; loop thread only */

    /* Events of the current poll; a stopped watcher's entries are cleared. */
    weft__ready_t ready[WEFT__LOOP_MAX_EVENTS];
    int nready, ready_at;

    /* Timers: a binary min-heap ordered by (_due, _seq). Loop thread only. */
    weft_timer_t **heap;
    size_t nheap, capheap;
    uint64_t timer_seq;

    /* Wake-up: one eventfd for async sends, stop and offload completions. */
    int wakefd;
    weft_io_t wake_io;
    uint32_t wake_pending; /* atomic; 1 while a write to wakefd is unconsumed */
    weft_async_t *asyncs;  /* started asyncs; loop thread only */
    uint64_t async_gen;    /* bumped when an async leaves the list */

    /* Signals: one signalfd whose mask covers every watched signal. */
    int sigfd;
    weft_io_t sig_io;
    weft_signal_t *signals; /* loop thread only */
    uint64_t sig_gen;       /* bumped when a watcher leaves the list */

    /* Offload: completions queued by workers, drained by the loop. */
    weft_mutex_t off_mu;
    weft__offload_t *off_done; /* protected by off_mu */
    weft__offload_t *off_all;  /* every pending offload; loop thread only */
    uint64_t off_pending;      /* atomic for stats */

    size_t tcp_high_water;
    char *rbuf; /* shared read buffer of TCP handles */

    /* What the watchdog watches: written by the loop thread, read by it. */
    void *cb_fn;       /* atomic; the running callback's function */
    uint64_t cb_start; /* atomic; its start time, 0 when none runs */
    uint64_t cb_gen;   /* atomic; bumped at every callback start */
    weft__watchdog_t *wd;
    uint64_t stall_ns; /* the watchdog's threshold; 0 without one */

    /* Statistics: written by the loop thread with relaxed atomics. */
    weft_loop_stats_t st;
};

/* Bracket every user callback (metrics and the watchdog). */
static inline uint64_t weft__loop_cb_begin(weft_loop_t *l, void *fn)
{
    uint64_t t = weft__now_ns();
    /* Release: orders the previous callback's end (cb_start = 0) before
     * the new fn and gen; pairs with the acquire loads in weft__wd_check(). */
    __atomic_store_n(&l->cb_fn, fn, __ATOMIC_RELEASE);
    __atomic_store_n(&l->cb_gen, l->cb_gen + 1, __ATOMIC_RELEASE);
    /* Release: pairs with the acquire load of cb_start in the watchdog, so
     * it reads the fn and gen of the callback whose start it sees. */
    __atomic_store_n(&l->cb_start, t, __ATOMIC_RELEASE);
    l->in_callback++;
    return t;
}

void weft__loop_cb_end(weft_loop_t *l, uint64_t start);
void weft__loop_hist_add(uint64_t *hist, uint64_t ns);
void weft__loop_stat_add(uint64_t *field, uint64_t n);

#define WEFT__LOOP_CALL(loop, fn, ...)                                                             \
    do {                                                                                           \
        uint64_t weft_t0_ = weft__loop_cb_begin((loop), (void *)(fn));                             \
        (fn)(__VA_ARGS__);                                                                         \
        weft__loop_cb_end((loop), weft_t0_);                                                       \
    } while (0)

/* Count a user handle becoming active (+1) or inactive (-1). */
static inline void weft__loop_active(weft_loop_t *l, int delta)
{
    /* Relaxed: written by the loop thread alone; a statistic for others. */
    __atomic_store_n(&l->active, l->active + (uint64_t)(int64_t)delta, __ATOMIC_RELAXED);
}

/* Test hook of the stress harness: when nonzero, weft__loop_wake drops
 * every wake-up's eventfd write (the "forgot to wake" bug). Never set
 * outside tests/loop/test_loop_stress.c --broken. */
extern int weft__loop_fault;

/* Wake the loop from any thread (coalesced through wake_pending). */
void weft__loop_wake(weft_loop_t *l);

/* Per-concept hooks of the loop core. */
void weft__timers_run(weft_loop_t *l);
int64_t weft__timers_next(weft_loop_t *l); /* ns until the first due, -1: none */
void weft__timers_detach(weft_loop_t *l);
void weft__asyncs_run(weft_loop_t *l);
void weft__asyncs_detach(weft_loop_t *l);
int weft__signals_open(weft_loop_t *l);
void weft__signals_detach(weft_loop_t *l);
void weft__offload_run(weft_loop_t *l);
void weft__offload_settle(weft_loop_t *l);
void weft__io_forget(weft_loop_t *l, weft_io_t *io);
void weft__ios_detach(weft_loop_t *l);
void weft__tcps_close(weft_loop_t *l);

int weft__watchdog_start(weft_loop_t *l, const weft_loop_opts_t *o);
void weft__watchdog_stop(weft_loop_t *l);
/* On the loop thread: on at the start of weft_loop_run, off at its end. */
void weft__watchdog_bind(weft_loop_t *l, bool on);

#endif /* WEFT_INTERNAL_LOOP_H */
