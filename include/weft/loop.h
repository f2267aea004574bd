/*
 * weft/loop.h - an epoll event loop: I/O watchers, timers, signals,
 * cross-thread wake-ups, TCP streams, offload of CPU work to a weft pool,
 * and a stall watchdog that names the callback blocking the loop.
 *
 * Lifetimes. The loop is a service: weft_loop_create / weft_loop_destroy.
 * Handles (weft_timer_t, weft_io_t, weft_async_t, weft_signal_t, weft_tcp_t)
 * are caller-allocated structs with public layout, in the libuv style:
 * _init binds a handle to a loop (it owes no _destroy), _start makes it
 * active, _stop makes it inactive. A stopped handle may be freed at once,
 * even from inside its own callback: the loop never touches a handle after
 * it was stopped. weft_tcp_close is the stop of a TCP handle.
 *
 * Threads. A loop and its handles belong to the thread that runs the loop;
 * every function here must be called from that thread (or, before the loop
 * first runs, from the thread that created it), except weft_async_send and
 * weft_loop_stop, which any thread may call at any time while the loop
 * exists, and weft_loop_stats, which any thread may call.
 *
 * Errors: 0 or a negative errno; -EINVAL for every invalid argument. A
 * function that takes a callback and fails never calls it.
 */
#ifndef WEFT_LOOP_H
#define WEFT_LOOP_H

#include <sys/types.h>

#include "base.h"
#include "pool.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct weft_loop weft_loop_t;

/* How weft_loop_run runs. */
typedef enum weft_run_mode {
    WEFT_RUN_DEFAULT = 0, /* until no active handle or offload is left, or stopped */
    WEFT_RUN_ONCE,        /* one iteration, waiting for events if there is work */
    WEFT_RUN_NOWAIT,      /* one iteration, never waiting */
} weft_run_mode_t;

/* Receives the text of one watchdog report (a complete, multi-line string). */
typedef void (*weft_stall_report_fn)(const char *report, void *arg);

/* Options for weft_loop_create. All-zero options (or NULL) give defaults. */
typedef struct weft_loop_opts {
    const char *name;              /* shown in reports; default "loop"; must outlive the loop */
    uint64_t stall_threshold_ns;   /* 0: no watchdog; else report callbacks that run longer */
    uint64_t stall_interval_ns;    /* at most one report per interval; 0: 1 s */
    int stall_signal;              /* signal used to sample the loop thread's stack; 0: SIGURG */
    weft_stall_report_fn on_stall; /* NULL: print to stderr */
    void *on_stall_arg;
    size_t tcp_high_water; /* bytes queued per TCP handle before write says -EAGAIN;
                              0: 1 MiB */
} weft_loop_opts_t;

/* Histograms: bucket i counts durations in [2^i, 2^(i+1)) microseconds;
 * bucket 0 also counts everything under 2 us, the last one everything longer. */
#define WEFT_LOOP_HIST_BUCKETS 24

/* A snapshot of a loop's counters (each read atomically, not all at once). */
typedef struct weft_loop_stats {
    const char *name;
    uint64_t iterations;                       /* passes through the loop */
    uint64_t callbacks;                        /* user callbacks run */
    uint64_t idle_ns;                          /* time spent waiting for events */
    uint64_t active_handles;                   /* handles started and not stopped, now */
    uint64_t pending_offloads;                 /* offloads submitted and not yet called back, now */
    uint64_t lag_last_ns;                      /* how late the last timer fired */
    uint64_t lag_max_ns;                       /* the most any timer was late */
    uint64_t cb_max_ns;                        /* longest callback */
    uint64_t stalls;                           /* callbacks that ran past the watchdog threshold */
    uint64_t stall_reports;                    /* reports made (stalls minus those rate-limited) */
    uint64_t cb_hist[WEFT_LOOP_HIST_BUCKETS];  /* callback durations */
    uint64_t lag_hist[WEFT_LOOP_HIST_BUCKETS]; /* timer lateness */
} weft_loop_stats_t;

/* Create a loop (not yet running). Returns -ENOMEM, -EMFILE, ... */
WEFT_API int weft_loop_create(weft_loop_t **loop, const weft_loop_opts_t *opts);

/*
 * Run the loop in the calling thread. Returns 1 when active handles or
 * offloads remain (after stop, ONCE or NOWAIT), 0 when none is left,
 * -EBUSY when the loop is already running (also re-entrantly from a
 * callback), -EINVAL for a bad argument.
 */
WEFT_API int weft_loop_run(weft_loop_t *loop, weft_run_mode_t mode);

/* Ask a running loop to return after its current iteration; a stop made
 * while the loop is not running makes the next run return after one
 * iteration. Any thread, any time. */
WEFT_API int weft_loop_stop(weft_loop_t *loop);

/*
 * Release the loop. -EBUSY while it runs (from a callback or another
 * thread). Active handles are detached (their memory is the caller's;
 * stopping one afterwards is a harmless no-op), and open TCP handles are
 * closed (weft_tcp_close), so no socket or queue is left behind.
 * Offloads still pending are settled first: tasks not started are
 * cancelled, running ones are waited for, and each done callback is
 * called (status -ECANCELED or 0) so its argument can be released.
 */
WEFT_API int weft_loop_destroy(weft_loop_t *loop);

/* The loop's time in nanoseconds (CLOCK_MONOTONIC), updated every iteration. */
WEFT_API uint64_t weft_loop_now(const weft_loop_t *loop);

/* Fill *out with the loop's counters. Any thread. */
WEFT_API int weft_loop_stats(weft_loop_t *loop, weft_loop_stats_t *out);

/* ---- timers --------------------------------------------------------------- */

typedef struct weft_timer weft_timer_t;
typedef void (*weft_timer_cb)(weft_timer_t *timer);

struct weft_timer {
    void *data;        /* public: for the caller */
    weft_loop_t *loop; /* read-only */
    weft_timer_cb _cb; /* private fields follow */
    uint64_t _due;
    uint64_t _repeat;
    uint64_t _seq;
    size_t _slot; /* index in the loop's heap; SIZE_MAX when inactive */
};

WEFT_API int weft_timer_init(weft_loop_t *loop, weft_timer_t *timer);
/*
 * Call cb once timeout_ns from now, then every repeat_ns if repeat_ns > 0.
 * Restarts an active timer. A timer never fires early; timers due at the
 * same time fire in the order they were started.
 */
WEFT_API int weft_timer_start(weft_timer_t *timer, weft_timer_cb cb, uint64_t timeout_ns,
                              uint64_t repeat_ns);
/* Cancel; 0 also when the timer was not active. */
WEFT_API int weft_timer_stop(weft_timer_t *timer);
WEFT_API bool weft_timer_active(const weft_timer_t *timer);

/* ---- I/O watchers --------------------------------------------------------- */

#define WEFT_IO_READ 1u  /* readable (or a peer hang-up pending to read) */
#define WEFT_IO_WRITE 2u /* writable */
#define WEFT_IO_ERROR 4u /* error or hang-up; delivered whatever was asked */

typedef struct weft_io weft_io_t;
typedef void (*weft_io_cb)(weft_io_t *io, unsigned events);

struct weft_io {
    void *data;               /* public */
    weft_loop_t *loop;        /* read-only */
    int fd;                   /* read-only */
    weft_io_cb _cb;           /* private fields follow */
    unsigned _events;         /* what the poller watches; 0 when stopped */
    bool _internal;           /* the loop's own watcher: does not keep the loop alive */
    weft_io_t *_prev, *_next; /* the loop's started watchers */
};

/* Bind io to fd (the caller keeps owning fd; it must stay open while active). */
WEFT_API int weft_io_init(weft_loop_t *loop, weft_io_t *io, int fd);
/* Watch for events (WEFT_IO_READ | WEFT_IO_WRITE), level-triggered; call
 * again to change the events or the callback. */
WEFT_API int weft_io_start(weft_io_t *io, unsigned events, weft_io_cb cb);
WEFT_API int weft_io_stop(weft_io_t *io);

/* ---- cross-thread wake-up -------------------------------------------------- */

typedef struct weft_async weft_async_t;
typedef void (*weft_async_cb)(weft_async_t *async);

struct weft_async {
    void *data;        /* public */
    weft_loop_t *loop; /* read-only */
    weft_async_cb _cb; /* private fields follow */
    uint32_t _pending; /* atomic; set by send, cleared by the loop */
    bool _active;
    weft_async_t *_prev, *_next; /* the loop's list; loop thread only */
};

WEFT_API int weft_async_init(weft_loop_t *loop, weft_async_t *async);
WEFT_API int weft_async_start(weft_async_t *async, weft_async_cb cb);
WEFT_API int weft_async_stop(weft_async_t *async);
/*
 * Wake the loop and have it call the callback on the loop thread. Sends
 * that come before the callback runs coalesce into one call; a send is
 * never lost: a callback always runs after the last send. Any thread,
 * async-signal-safe.
 */
WEFT_API int weft_async_send(weft_async_t *async);

/* ---- signals ---------------------------------------------------------------- */

typedef struct weft_signal weft_signal_t;
typedef void (*weft_signal_cb)(weft_signal_t *sig, int signum);

struct weft_signal {
    void *data;         /* public */
    weft_loop_t *loop;  /* read-only */
    int signum;         /* read-only; 0 when stopped */
    weft_signal_cb _cb; /* private fields follow */
    weft_signal_t *_prev, *_next;
};

WEFT_API int weft_signal_init(weft_loop_t *loop, weft_signal_t *sig);
/*
 * Deliver signum through the loop's signalfd. The signal is blocked in the
 * calling thread; block it in every other thread too (before creating them,
 * with pthread_sigmask) or the kernel may run its default action there.
 * Several watchers may watch one signal; each is called.
 */
WEFT_API int weft_signal_start(weft_signal_t *sig, weft_signal_cb cb, int signum);
/* Stop watching; the signal stays blocked. */
WEFT_API int weft_signal_stop(weft_signal_t *sig);

/* ---- offload ------------------------------------------------------------------ */

/* Called on the loop thread with work_fn's result; status is 0, or
 * -ECANCELED when the work never ran (the loop was destroyed first). */
typedef void (*weft_offload_done_cb)(weft_loop_t *loop, void *arg, void *result, int status);

/*
 * Run work_fn(arg) on a worker of pool and then done_cb(loop, arg, result,
 * 0) on the loop thread. A pending offload keeps the loop running.
 * Returns what weft_pool_submit returns (-EAGAIN when the pool's queue is
 * full, ...); done_cb is then never called.
 */
WEFT_API int weft_loop_offload(weft_loop_t *loop, weft_pool_t *pool, weft_task_fn work_fn,
                               void *arg, weft_offload_done_cb done_cb);

/* ---- TCP streams ----------------------------------------------------------------- */

typedef struct weft_tcp weft_tcp_t;
/* n > 0: bytes read into buf (valid during the call only); 0: end of stream;
 * n < 0: a negative errno. Reading continues until weft_tcp_read_stop. */
typedef void (*weft_tcp_read_cb)(weft_tcp_t *tcp, const char *buf, ssize_t n);
/* status 0 when connected, else a negative errno. */
typedef void (*weft_tcp_status_cb)(weft_tcp_t *tcp, int status);
/* The write queue became empty. */
typedef void (*weft_tcp_drain_cb)(weft_tcp_t *tcp);

struct weft_tcp {
    void *data;        /* public */
    weft_loop_t *loop; /* read-only */
    int fd;            /* read-only; -1 when closed */
    weft_io_t _io;     /* private fields follow */
    weft_tcp_read_cb _read_cb;
    weft_tcp_status_cb _status_cb; /* connect or accept */
    weft_tcp_drain_cb _drain_cb;
    char *_wbuf;
    size_t _woff, _wlen, _wcap;
    unsigned _flags;
    weft_tcp_t *_prev, *_next; /* the loop's open TCP handles */
};

WEFT_API int weft_tcp_init(weft_loop_t *loop, weft_tcp_t *tcp);
/* Listen on a numeric IPv4 address and port (0: any free port); cb(server, 0)
 * when a connection waits for weft_tcp_accept. */
WEFT_API int weft_tcp_listen(weft_tcp_t *server, const char *ip, uint16_t port, int backlog,
                             weft_tcp_status_cb cb);
/* The local port of a bound handle. */
WEFT_API int weft_tcp_port(const weft_tcp_t *tcp, uint16_t *port);
/* Accept one waiting connection into client (initialised, not open);
 * -EAGAIN when none waits. */
WEFT_API int weft_tcp_accept(weft_tcp_t *server, weft_tcp_t *client);
/* Connect without blocking; cb(tcp, status) when done. */
WEFT_API int weft_tcp_connect(weft_tcp_t *tcp, const char *ip, uint16_t port,
                              weft_tcp_status_cb cb);
WEFT_API int weft_tcp_read_start(weft_tcp_t *tcp, weft_tcp_read_cb cb);
WEFT_API int weft_tcp_read_stop(weft_tcp_t *tcp);
/*
 * Write len bytes: as much as the socket takes now, the rest copied into
 * the handle's queue and sent as the socket drains. Back-pressure: when
 * the queue already holds the loop's tcp_high_water bytes or more, nothing
 * is queued and -EAGAIN is returned; wait for the drain callback.
 */
WEFT_API int weft_tcp_write(weft_tcp_t *tcp, const void *buf, size_t len);
/* Bytes queued and not yet handed to the kernel. */
WEFT_API size_t weft_tcp_queued(const weft_tcp_t *tcp);
/* cb runs each time the write queue becomes empty (NULL: never). */
WEFT_API int weft_tcp_on_drain(weft_tcp_t *tcp, weft_tcp_drain_cb cb);
/* Stop everything, close the socket and free the queue; the handle may be
 * freed on return (also from its own callback). */
WEFT_API int weft_tcp_close(weft_tcp_t *tcp);

#ifdef __cplusplus
}
#endif

#endif /* WEFT_LOOP_H */
