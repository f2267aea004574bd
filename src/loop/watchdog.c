/*
 * watchdog.c - the stall watchdog: names the callback that blocks a loop.
 *
 * DESIGN
 *   One thread per loop that asked for it (opts.stall_threshold_ns). The
 *   loop thread publishes the running callback in cb_fn / cb_gen /
 *   cb_start (weft__loop_cb_begin); the watchdog wakes every quarter of
 *   the threshold (at most every 10 ms) and, when one callback generation
 *   has run past the threshold, it
 *     1. reads /proc/self/task/TID/stat and .../syscall: state R means on
 *        a CPU, S or D blocked, and the syscall file names the call;
 *     2. samples the loop thread's stack: it sends the thread the stall
 *        signal (SIGURG by default); the handler, on the loop thread, runs
 *        weft__backtrace into the watchdog's buffer and sets bt_done;
 *     3. symbolises the callback's function pointer and the stack and
 *        hands one report to opts.on_stall (stderr by default).
 *   A generation is reported at most once, and reports are at most one per
 *   stall_interval_ns. The loop thread itself counts every callback that
 *   ran past the threshold (stats.stalls), reported or not.
 *
 *   The signal interrupts a blocking system call in the loop thread; calls
 *   that SA_RESTART does not restart (nanosleep, poll, ...) return EINTR,
 *   as with any signal.
 */
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal/backtrace.h"
#include "internal/loop.h"

struct weft__watchdog {
    weft_loop_t *loop;
    pthread_t thread;
    uint32_t quit; /* futex word; atomic; 1 asks the thread to exit */
    uint64_t threshold, interval, period;
    int sig;
    weft_stall_report_fn report;
    void *report_arg;
    uint32_t bt_want; /* atomic; the handler captures only while 1 */
    uint32_t bt_done; /* atomic; set by the handler when frames are in */
    int nframes;      /* written by the handler before bt_done */
    void *frames[WEFT__BT_MAX];
    uint64_t last_gen;    /* watchdog thread only */
    uint64_t last_report; /* watchdog thread only */
};

/* The watchdog of the loop the calling thread runs (set at weft_loop_run). */
static __thread weft__watchdog_t *weft__wd_self;

static void weft__wd_handler(int sig, siginfo_t *si, void *uc)
{
    (void)sig, (void)si, (void)uc;
    int saved = errno;
    weft__watchdog_t *wd = weft__wd_self;
    /* Acquire: pairs with the release store of bt_want in weft__wd_sample(). */
    if (wd != NULL && __atomic_load_n(&wd->bt_want, __ATOMIC_ACQUIRE) != 0) {
        wd->nframes = weft__backtrace(wd->frames, WEFT__BT_MAX, 1);
        /* Release: publishes nframes and frames to weft__wd_sample(). */
        __atomic_store_n(&wd->bt_done, 1, __ATOMIC_RELEASE);
    }
    errno = saved;
}

void weft__watchdog_bind(weft_loop_t *l, bool on)
{
    /* Set for the duration of weft_loop_run only, so a later signal never
     * finds a watchdog that was freed with its loop. */
    if (l->wd != NULL)
        weft__wd_self = on ? l->wd : NULL;
}

/* ---- what the loop thread is doing ----------------------------------------- */

static const char *weft__syscall_name(long nr)
{
    static const struct {
        long nr;
        const char *name;
    } names[] = {
        {SYS_read, "read"},
        {SYS_write, "write"},
        {SYS_nanosleep, "nanosleep"},
        {SYS_clock_nanosleep, "clock_nanosleep"},
        {SYS_futex, "futex"},
        {SYS_ppoll, "ppoll"},
        {SYS_pselect6, "pselect6"},
        {SYS_epoll_pwait, "epoll_pwait"},
        {SYS_recvfrom, "recvfrom"},
        {SYS_sendto, "sendto"},
        {SYS_connect, "connect"},
        {SYS_accept4, "accept4"},
        {SYS_openat, "openat"},
        {SYS_fsync, "fsync"},
        {SYS_fdatasync, "fdatasync"},
        {SYS_wait4, "wait4"},
#ifdef SYS_poll
        {SYS_poll, "poll"},
        {SYS_select, "select"},
        {SYS_epoll_wait, "epoll_wait"},
        {SYS_accept, "accept"},
#endif
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (names[i].nr == nr)
            return names[i].name;
    return "?";
}

static int weft__wd_read(const char *path, char *buf, size_t len)
{
    FILE *f = fopen(path, "re");
    if (f == NULL)
        return -errno;
    size_t n = fread(buf, 1, len - 1, f);
    fclose(f);
    buf[n] = '\0';
    return 0;
}

/* Describe the thread's state: "on CPU" or "blocked in syscall NAME (NR)". */
static void weft__wd_state(uint32_t tid, char *out, size_t len)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/self/task/%" PRIu32 "/stat", tid);
    char *p = weft__wd_read(path, buf, sizeof buf) == 0 ? strrchr(buf, ')') : NULL;
    char state = p != NULL && p[1] == ' ' ? p[2] : '?';
    if (state == 'R') {
        snprintf(out, len, "on CPU (state R)");
        return;
    }
    snprintf(path, sizeof path, "/proc/self/task/%" PRIu32 "/syscall", tid);
    long nr = -1;
    if (weft__wd_read(path, buf, sizeof buf) == 0)
        nr = strtol(buf, NULL, 10);
    if (nr >= 0 && buf[0] != 'r')
        snprintf(out, len, "blocked in a system call (state %c): %s (%ld)", state,
                 weft__syscall_name(nr), nr);
    else
        snprintf(out, len, "blocked (state %c)", state);
}

/* Take the loop thread's stack; returns the frame count, 0 if it failed. */
static int weft__wd_sample(weft__watchdog_t *wd, uint32_t tid)
{
    /* Relaxed: published by the release store of bt_want just below. */
    __atomic_store_n(&wd->bt_done, 0, __ATOMIC_RELAXED);
    /* Release: pairs with the acquire load in weft__wd_handler(). */
    __atomic_store_n(&wd->bt_want, 1, __ATOMIC_RELEASE);
    int n = 0;
    if (syscall(SYS_tgkill, getpid(), (pid_t)tid, wd->sig) == 0) {
        for (int i = 0; i < 200; i++) {
            /* Acquire: pairs with the release store in weft__wd_handler(). */
            if (__atomic_load_n(&wd->bt_done, __ATOMIC_ACQUIRE) != 0) {
                n = wd->nframes;
                break;
            }
            usleep(500);
        }
    }
    /* Release: a late handler that still sees 1 writes frames we no longer
     * read; one that sees 0 (acquire in weft__wd_handler) writes nothing. */
    __atomic_store_n(&wd->bt_want, 0, __ATOMIC_RELEASE);
    return n;
}

/* ---- the report -------------------------------------------------------------- */

static size_t weft__wd_stack(weft__watchdog_t *wd, int n, char *buf, size_t len)
{
    size_t at = 0;
    for (int i = 0; i < n && at + 1 < len; i++) {
        weft__frame_t f;
        char line[256];
        weft__symbolize(wd->frames[i], 1, &f);
        weft__frame_format(&f, line, sizeof line);
        int w = snprintf(buf + at, len - at, "    #%d %s\n", i, line);
        at += w > 0 ? (size_t)w : 0;
    }
    return at < len ? at : len - 1;
}

static void weft__wd_report(weft__watchdog_t *wd, void *fn, uint64_t gen, uint64_t start)
{
    weft_loop_t *l = wd->loop;
    /* Acquire: pairs with the release store in weft_loop_run(). */
    uint32_t tid = __atomic_load_n(&l->run_tid, __ATOMIC_ACQUIRE);
    char state[160], text[4096];
    weft__wd_state(tid, state, sizeof state);
    int n = weft__wd_sample(wd, tid);
    double ms = (double)(weft__now_ns() - start) / 1e6;
    /* Acquire: the generation is compared only; any order would do. */
    bool same = __atomic_load_n(&l->cb_gen, __ATOMIC_ACQUIRE) == gen;
    weft__frame_t f;
    char name[256];
    weft__symbolize_begin();
    weft__symbolize(fn, 0, &f);
    weft__frame_format(&f, name, sizeof name);
    int at = snprintf(text, sizeof text,
                      "weft: loop stall: loop \"%s\" callback %s has run for %.1f ms "
                      "(threshold %.1f ms)\n  thread %" PRIu32 ": %s\n  stack of the loop "
                      "thread%s:\n",
                      l->name, name, ms, (double)wd->threshold / 1e6, tid, state,
                      same ? "" : " (sampled after the callback returned)");
    if (at > 0 && (size_t)at < sizeof text)
        weft__wd_stack(wd, n, text + at, sizeof text - (size_t)at);
    weft__symbolize_end();
    if (wd->report != NULL)
        wd->report(text, wd->report_arg);
    else
        fputs(text, stderr);
}

/* One look at the loop: report a callback past the threshold. */
static void weft__wd_check(weft__watchdog_t *wd)
{
    weft_loop_t *l = wd->loop;
    /* Acquire: pairs with the release store in weft__loop_cb_begin(). */
    uint64_t start = __atomic_load_n(&l->cb_start, __ATOMIC_ACQUIRE);
    /* A seqlock read (the writer is weft__loop_cb_begin()): gen and fn
     * belong to the callback that started at `start` only if cb_start
     * still holds it afterwards. Acquire: keeps the re-read below after
     * these loads, and pairs with the release stores of the next
     * callback's fn and gen, which come after the previous end's store of
     * 0 to cb_start: a newer fn or gen is always followed by a changed
     * cb_start. */
    uint64_t gen = __atomic_load_n(&l->cb_gen, __ATOMIC_ACQUIRE);
    void *fn = __atomic_load_n(&l->cb_fn, __ATOMIC_ACQUIRE);
    if (__atomic_load_n(&l->cb_start, __ATOMIC_RELAXED) != start)
        return; /* A callback ended or began meanwhile: look again later. */
    uint64_t now = weft__now_ns();
    if (start == 0 || now < start + wd->threshold || gen == wd->last_gen)
        return;
    wd->last_gen = gen;
    if (wd->last_report != 0 && now - wd->last_report < wd->interval)
        return;
    wd->last_report = now;
    /* Relaxed: a statistics counter, read field by field by weft_loop_stats. */
    __atomic_fetch_add(&l->st.stall_reports, 1, __ATOMIC_RELAXED);
    weft__wd_report(wd, fn, gen, start);
}

static void *weft__wd_main(void *arg)
{
    weft__watchdog_t *wd = arg;
    /* Acquire: pairs with the release store in weft__watchdog_stop(). */
    while (__atomic_load_n(&wd->quit, __ATOMIC_ACQUIRE) == 0) {
        weft__deadline_t d;
        weft__deadline_init(&d, (int64_t)wd->period);
        /* Sleeps while quit == 0; weft__watchdog_stop sets it, then wakes. */
        weft__futex_wait(&wd->quit, 0, &d);
        weft__wd_check(wd);
    }
    return NULL;
}

/* ---- start / stop -------------------------------------------------------------- */

static int weft__wd_install(int sig)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = weft__wd_handler;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    return sigaction(sig, &sa, NULL) < 0 ? -errno : 0;
}

static int weft__wd_spawn(weft__watchdog_t *wd)
{
    sigset_t all, old;
    sigfillset(&all);
    /* The watchdog thread takes no signals: they belong to the program. */
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int err = -pthread_create(&wd->thread, NULL, weft__wd_main, wd);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return err;
}

int weft__watchdog_start(weft_loop_t *l, const weft_loop_opts_t *o)
{
    weft__watchdog_t *wd = calloc(1, sizeof *wd);
    if (wd == NULL)
        return -ENOMEM;
    wd->loop = l;
    wd->threshold = o->stall_threshold_ns;
    wd->interval = o->stall_interval_ns != 0 ? o->stall_interval_ns : 1000000000u;
    wd->period = wd->threshold / 4 < 10000000u ? wd->threshold / 4 : 10000000u;
    wd->period = wd->period < 100000u ? 100000u : wd->period;
    wd->sig = o->stall_signal != 0 ? o->stall_signal : SIGURG;
    wd->report = o->on_stall;
    wd->report_arg = o->on_stall_arg;
    void *warm[2];
    weft__backtrace(warm, 2, 0); /* loads the unwinder outside the handler */
    int err = weft__wd_install(wd->sig);
    if (err == 0)
        err = weft__wd_spawn(wd);
    if (err != 0) {
        free(wd);
        return err;
    }
    l->wd = wd;
    l->stall_ns = wd->threshold;
    return 0;
}

void weft__watchdog_stop(weft_loop_t *l)
{
    weft__watchdog_t *wd = l->wd;
    if (wd == NULL)
        return;
    /* Release: pairs with the acquire load in weft__wd_main(). The store
     * comes before the wake, and the thread sleeps only while quit == 0,
     * so the wake-up cannot be missed. */
    __atomic_store_n(&wd->quit, 1, __ATOMIC_RELEASE);
    weft__futex_wake(&wd->quit, 1);
    pthread_join(wd->thread, NULL);
    if (weft__wd_self == wd)
        weft__wd_self = NULL;
    l->wd = NULL;
    free(wd);
}
