/*
 * proc.c - weft_proc_pool_t: forked worker processes, one task at a time
 * each, run by a manager thread.
 *
 * DESIGN
 * Submitters append futures to the pending FIFO under `mu` and poke the
 * manager's eventfd. The manager thread owns the workers (nothing else
 * touches pool->workers while it runs): it hands a pending task to each idle
 * worker, and polls the eventfd, every worker's socket (results) and every
 * worker's pidfd (death), with the nearest task deadline as the timeout.
 *
 *   a result arrives       -> the future is done; the worker is idle again,
 *                             or retired and replaced after max_tasks
 *   the worker dies        -> reap it (waitpid), fail its task with -ECHILD
 *                             and the signal or exit status, fork a new one
 *   a deadline passes      -> SIGKILL, reap, fail the task with -ETIME,
 *                             fork a new one
 *   a send fails           -> the task never reached the worker: it goes
 *                             back to the head of the queue; reap, replace
 *
 * Every child is reaped by pid as soon as it is known dead, and again at
 * shutdown, so no zombie outlives destroy. Parent-side descriptors are
 * CLOEXEC; a new worker closes every descriptor but its socket.
 *
 * Future states (`state`, the futex word): QUEUED (in the FIFO), RUNNING (a
 * worker has it; set under mu), FINAL (err, fail and out are written before
 * the release of FINAL). QUEUED -> RUNNING and QUEUED -> FINAL (cancel)
 * happen under mu, so cancel never races a dispatch.
 */
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal/base.h"
#include "internal/exec_proc.h"
#include "weft/sync.h"

#define WEFT__PROC_SHM_DEFAULT ((size_t)64 * 1024)
#define WEFT__PROC_MAX_WORKERS 1024u
#define WEFT__REAP_GRACE_NS 200000000ull /* a closing worker gets this long to exit */

enum { WEFT__PF_QUEUED = 0, WEFT__PF_RUNNING = 1, WEFT__PF_FINAL = 2 };

struct weft_proc_future {
    uint32_t state;           /* atomic; futex word */
    uint32_t refs;            /* atomic: the caller's and the pool's */
    uint32_t waiters;         /* atomic */
    int err;                  /* written before FINAL */
    weft_proc_failure_t fail; /* written before FINAL */
    weft__payload_t out;      /* written before FINAL */
    weft_proc_fn fn;          /* read-only */
    void *in;                 /* owned by the pool until FINAL */
    size_t in_len;
    uint64_t id;              /* read-only */
    weft_proc_pool_t *pool;   /* read-only; valid until FINAL */
    weft_proc_future_t *next; /* protected by pool->mu */
};

typedef struct weft__pworker {
    pid_t pid;                /* 0: empty slot */
    int fd;                   /* socket to the worker */
    int pidfd;                /* readable when the worker dies; -1 if unsupported */
    weft_proc_future_t *task; /* the task it runs, or NULL */
    uint64_t deadline;        /* weft__now_ns() limit for the task; 0: none */
    unsigned done;            /* tasks this process has completed */
} weft__pworker_t;

struct weft_proc_pool {
    const char *name;
    unsigned nworkers;
    int64_t timeout_ns;
    unsigned max_tasks;
    size_t shm;
    sigset_t child_mask;
    weft__pworker_t *workers; /* the manager thread's (before it starts: create's) */
    int evfd;                 /* read-only: pokes the manager */
    uint32_t poked;           /* atomic: a poke is pending (see weft__poke) */
    pthread_t manager;

    weft_mutex_t mu;
    weft_proc_future_t *head; /* protected by mu: the pending FIFO */
    weft_proc_future_t *tail; /* protected by mu */
    uint64_t next_id;         /* protected by mu */
    bool shutdown;            /* protected by mu */
    uint64_t kill_at;         /* protected by mu: destroy's deadline; 0: none */

    /* Statistics: atomic, relaxed. */
    uint64_t submitted, completed, crashed, timed_out, spawned, recycled, queued, running;
};

static void weft__stat_add(uint64_t *c, int64_t d)
{
    __atomic_fetch_add(c, (uint64_t)d, __ATOMIC_RELAXED);
}

/* ---- futures -------------------------------------------------------------- */

static void weft__pf_unref(weft_proc_future_t *f)
{
    if (__atomic_fetch_sub(&f->refs, 1, __ATOMIC_ACQ_REL) != 1)
        return;
    weft__payload_free(&f->out);
    free(f->in);
    free(f);
}

/* Publish the outcome and drop the pool's reference.
 *  manager (here)                   waiter (weft__pf_sleep)
 *  [W] state = FINAL  seq_cst       [W] waiters += 1  seq_cst
 *  [R] waiters        seq_cst       [R] state         seq_cst
 * Either we see the waiter and wake it, or it sees FINAL and does not sleep. */
static void weft__pf_finish(weft_proc_future_t *f, int err)
{
    f->err = err;
    f->fail.err = err;
    free(f->in);
    f->in = NULL;
    __atomic_store_n(&f->state, WEFT__PF_FINAL, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&f->waiters, __ATOMIC_SEQ_CST) != 0)
        weft__futex_wake(&f->state, INT32_MAX);
    weft__pf_unref(f);
}

static void weft__pf_fail(weft_proc_future_t *f, weft_proc_fail_t kind, int err, pid_t pid,
                          int info)
{
    f->fail.kind = kind;
    f->fail.pid = pid;
    if (kind == WEFT_PROC_SIGNALED || kind == WEFT_PROC_TIMEDOUT)
        f->fail.signo = info;
    if (kind == WEFT_PROC_EXITED)
        f->fail.exit_code = info;
    char *w = f->fail.what;
    size_t n = sizeof f->fail.what;
    switch (kind) {
    case WEFT_PROC_SIGNALED:
        snprintf(w, n, "worker %d killed by signal %d (SIG%s)", (int)pid, info,
                 sigabbrev_np(info) ? sigabbrev_np(info) : "?");
        break;
    case WEFT_PROC_EXITED:
        snprintf(w, n, "worker %d exited with status %d", (int)pid, info);
        break;
    case WEFT_PROC_TIMEDOUT:
        snprintf(w, n, "task timed out; worker %d killed (SIGKILL)", (int)pid);
        break;
    case WEFT_PROC_TASK_ERROR:
        snprintf(w, n, "task returned %d (%s)", err, weft_strerror(err));
        break;
    default:
        snprintf(w, n, "%s", kind == WEFT_PROC_CANCELLED ? "cancelled" : weft_strerror(err));
    }
    weft__pf_finish(f, err);
}

/* ---- workers (manager thread only) ---------------------------------------- */

static void weft__child_start(weft_proc_pool_t *pool, int fd)
{
    if (fd != 3) {
        dup2(fd, 3);
        fd = 3;
    }
    close_range(4, ~0u, 0); /* the other workers' sockets, the eventfd, ... */
    weft__proc_worker_main(fd, &pool->child_mask, pool->shm);
}

static int weft__spawn(weft_proc_pool_t *pool, weft__pworker_t *w)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        return -errno;
    pid_t pid = fork();
    if (pid == 0)
        weft__child_start(pool, sv[1]);
    int e = errno;
    close(sv[1]);
    if (pid < 0) {
        close(sv[0]);
        return -e;
    }
    *w = (weft__pworker_t){.pid = pid, .fd = sv[0]};
    w->pidfd = (int)syscall(SYS_pidfd_open, pid, 0); /* always close-on-exec */
    weft__stat_add(&pool->spawned, 1);
    return 0;
}

/* Close the worker's socket (an idle worker exits on end of file) and wait
 * for it to end; after the grace period (or at once if `kill_now`), SIGKILL
 * it. Returns the wait status (0 if it could not be reaped). */
static int weft__reap(weft__pworker_t *w, bool kill_now)
{
    int st = 0;
    close(w->fd);
    if (kill_now)
        kill(w->pid, SIGKILL);
    uint64_t until = weft__now_ns() + WEFT__REAP_GRACE_NS;
    pid_t r;
    while ((r = waitpid(w->pid, &st, WNOHANG)) == 0 && weft__now_ns() < until)
        usleep(1000);
    if (r == 0) {
        kill(w->pid, SIGKILL);
        while ((r = waitpid(w->pid, &st, 0)) < 0 && errno == EINTR)
            ;
    }
    if (w->pidfd >= 0)
        close(w->pidfd);
    *w = (weft__pworker_t){.fd = -1, .pidfd = -1};
    return r > 0 ? st : 0;
}

static void weft__task_ended(weft_proc_pool_t *pool, weft__pworker_t *w)
{
    w->task = NULL;
    w->deadline = 0;
    weft__stat_add(&pool->running, -1);
}

/* The worker died (or broke the protocol): fail its task, replace it. */
static void weft__worker_lost(weft_proc_pool_t *pool, weft__pworker_t *w, bool kill_now)
{
    pid_t pid = w->pid;
    weft_proc_future_t *f = w->task;
    int st = weft__reap(w, kill_now);
    /* Replace it before reporting, so the pool is whole when a waiter wakes.
     * A failed fork leaves the slot empty; weft__dispatch() retries. */
    (void)weft__spawn(pool, w);
    if (f == NULL)
        return;
    weft__stat_add(&pool->running, -1);
    weft__stat_add(&pool->crashed, 1);
    if (WIFSIGNALED(st))
        weft__pf_fail(f, WEFT_PROC_SIGNALED, -ECHILD, pid, WTERMSIG(st));
    else
        weft__pf_fail(f, WEFT_PROC_EXITED, -ECHILD, pid, WEXITSTATUS(st));
}

static void weft__worker_timeout(weft_proc_pool_t *pool, weft__pworker_t *w)
{
    pid_t pid = w->pid;
    weft_proc_future_t *f = w->task;
    weft__task_ended(pool, w);
    (void)weft__reap(w, true);
    (void)weft__spawn(pool, w);
    weft__stat_add(&pool->timed_out, 1);
    weft__pf_fail(f, WEFT_PROC_TIMEDOUT, -ETIME, pid, SIGKILL);
}

/* A result arrived (or the socket closed). */
static void weft__worker_readable(weft_proc_pool_t *pool, weft__pworker_t *w)
{
    weft__pmsg_t h;
    weft__payload_t p;
    int r = weft__pmsg_recv(w->fd, &h, &p);
    weft_proc_future_t *f = w->task;
    if (r != 0 || h.kind != WEFT__PMSG_RESULT || f == NULL || h.id != f->id) {
        if (r == 0)
            weft__payload_free(&p);
        weft__worker_lost(pool, w, r != -EPIPE);
        return;
    }
    weft__task_ended(pool, w);
    w->done++;
    weft__stat_add(&pool->completed, 1);
    f->out = p;
    f->fail.pid = w->pid;
    if (h.status < 0)
        weft__pf_fail(f, WEFT_PROC_TASK_ERROR, h.status, w->pid, 0);
    else
        weft__pf_finish(f, 0);
    if (pool->max_tasks != 0 && w->done >= pool->max_tasks) {
        (void)weft__reap(w, false); /* closing the socket makes it exit */
        weft__stat_add(&pool->recycled, 1);
        (void)weft__spawn(pool, w);
    }
}

/* ---- the manager ---------------------------------------------------------- */

static weft_proc_future_t *weft__pop_pending(weft_proc_pool_t *pool)
{
    weft_mutex_lock(&pool->mu);
    weft_proc_future_t *f = pool->head;
    if (f != NULL) {
        pool->head = f->next;
        if (pool->head == NULL)
            pool->tail = NULL;
        __atomic_store_n(&f->state, WEFT__PF_RUNNING, __ATOMIC_RELAXED);
        weft__stat_add(&pool->queued, -1);
    }
    weft_mutex_unlock(&pool->mu);
    return f;
}

/* A task that never reached its worker goes back to the head of the queue. */
static void weft__push_front(weft_proc_pool_t *pool, weft_proc_future_t *f)
{
    weft_mutex_lock(&pool->mu);
    __atomic_store_n(&f->state, WEFT__PF_QUEUED, __ATOMIC_RELAXED);
    f->next = pool->head;
    pool->head = f;
    if (pool->tail == NULL)
        pool->tail = f;
    weft__stat_add(&pool->queued, 1);
    weft_mutex_unlock(&pool->mu);
}

static void weft__dispatch(weft_proc_pool_t *pool)
{
    for (unsigned i = 0; i < pool->nworkers; i++) {
        weft__pworker_t *w = &pool->workers[i];
        if (w->pid == 0 && weft__spawn(pool, w) != 0)
            continue;
        if (w->task != NULL)
            continue;
        weft_proc_future_t *f = weft__pop_pending(pool);
        if (f == NULL)
            return;
        weft__pmsg_t h = {.kind = WEFT__PMSG_TASK, .id = f->id, .fn = (uintptr_t)f->fn};
        if (weft__pmsg_send(w->fd, &h, f->in, f->in_len, pool->shm) != 0) {
            weft__push_front(pool, f);
            weft__worker_lost(pool, w, true);
            continue;
        }
        w->task = f;
        w->deadline = pool->timeout_ns > 0 ? weft__now_ns() + (uint64_t)pool->timeout_ns : 0;
        weft__stat_add(&pool->running, 1);
    }
}

/* Destroy's deadline passed: kill what runs, cancel what waits. */
static void weft__abandon_all(weft_proc_pool_t *pool)
{
    for (unsigned i = 0; i < pool->nworkers; i++) {
        weft__pworker_t *w = &pool->workers[i];
        weft_proc_future_t *f = w->task;
        if (f == NULL)
            continue;
        pid_t pid = w->pid;
        weft__task_ended(pool, w);
        (void)weft__reap(w, true);
        weft__pf_fail(f, WEFT_PROC_CANCELLED, -ECHILD, pid, 0);
    }
    weft_proc_future_t *f;
    while ((f = weft__pop_pending(pool)) != NULL)
        weft__pf_fail(f, WEFT_PROC_CANCELLED, -ECANCELED, 0, 0);
}

/* Milliseconds until the nearest deadline (-1: none); fires expired ones. */
static int weft__deadlines(weft_proc_pool_t *pool, uint64_t kill_at)
{
    uint64_t now = weft__now_ns(), next = kill_at;
    for (unsigned i = 0; i < pool->nworkers; i++) {
        weft__pworker_t *w = &pool->workers[i];
        if (w->task != NULL && w->deadline != 0 && w->deadline <= now)
            weft__worker_timeout(pool, w);
        if (w->task != NULL && w->deadline != 0 && (next == 0 || w->deadline < next))
            next = w->deadline;
        if (w->pid == 0 && (next == 0 || now + 10000000 < next))
            next = now + 10000000; /* retry a failed fork in 10 ms */
    }
    if (next == 0)
        return -1;
    return next <= now ? 0 : (int)((next - now + 999999) / 1000000);
}

/* Is the pool shut down with nothing queued or running? Also reads
 * destroy's deadline. */
static bool weft__manager_done(weft_proc_pool_t *pool, uint64_t *kill_at)
{
    weft_mutex_lock(&pool->mu);
    bool done = pool->shutdown && pool->head == NULL;
    *kill_at = pool->kill_at;
    weft_mutex_unlock(&pool->mu);
    for (unsigned i = 0; done && i < pool->nworkers; i++)
        done = pool->workers[i].task == NULL;
    return done;
}

static void weft__manager_poll(weft_proc_pool_t *pool, int timeout_ms)
{
    struct pollfd pfd[1 + 2 * WEFT__PROC_MAX_WORKERS];
    unsigned n = 0;
    pfd[n++] = (struct pollfd){.fd = pool->evfd, .events = POLLIN};
    for (unsigned i = 0; i < pool->nworkers; i++) {
        weft__pworker_t *w = &pool->workers[i];
        pfd[n++] = (struct pollfd){.fd = w->pid ? w->fd : -1, .events = POLLIN};
        pfd[n++] = (struct pollfd){.fd = w->pid ? w->pidfd : -1, .events = POLLIN};
    }
    if (poll(pfd, n, timeout_ms) <= 0)
        return;
    uint64_t v;
    if (pfd[0].revents & POLLIN) {
        /* Consume the pokes, then clear the flag, before the next dispatch
         * reads the queue: see weft__poke(). */
        if (read(pool->evfd, &v, sizeof v) < 0)
            (void)0; /* EAGAIN: nothing pending; a poke is only a wake-up */
        (void)__atomic_exchange_n(&pool->poked, 0, __ATOMIC_ACQ_REL);
    }
    for (unsigned i = 0; i < pool->nworkers; i++) {
        weft__pworker_t *w = &pool->workers[i];
        if (w->pid != 0 && pfd[1 + 2 * i].revents != 0)
            weft__worker_readable(pool, w); /* a result, or EOF */
        else if (w->pid != 0 && pfd[2 + 2 * i].revents != 0)
            weft__worker_lost(pool, w, false); /* died without closing first */
    }
}

static void *weft__manager_main(void *arg)
{
    weft_proc_pool_t *pool = arg;
    uint64_t kill_at;
    while (!weft__manager_done(pool, &kill_at) && (kill_at == 0 || weft__now_ns() < kill_at)) {
        weft__dispatch(pool);
        weft__manager_poll(pool, weft__deadlines(pool, kill_at));
    }
    weft__abandon_all(pool); /* nothing left, unless destroy's deadline passed */
    for (unsigned i = 0; i < pool->nworkers; i++)
        if (pool->workers[i].pid != 0)
            (void)weft__reap(&pool->workers[i], false);
    return NULL;
}

/* ---- the public interface ------------------------------------------------- */

/*
 * Wake the manager after queueing, with one write(2) per batch rather than
 * per task: only the submitter that turns `poked` from 0 to 1 writes.
 *  submitter                           manager (weft__manager_poll)
 *  enqueue under mu, unlock            poll sees evfd readable
 *  xchg poked <- 1 (acq_rel)           read evfd (consume the count)
 *  write evfd if it was 0              xchg poked <- 0 (acq_rel)
 *                                      lock mu, dispatch
 * If our exchange comes after the manager's, we see 0 and write, and its
 * next poll wakes. If it comes before, the manager's exchange reads our 1
 * and synchronizes with it, so its dispatch sees our task (our write may
 * then land after its read: one spurious wake-up). The read must come
 * first: clearing first would let the read swallow a write made for a
 * task that the dispatch does not see, leaving `poked` set for good.
 */
static void weft__poke(weft_proc_pool_t *pool)
{
    if (__atomic_exchange_n(&pool->poked, 1, __ATOMIC_ACQ_REL) != 0)
        return;
    uint64_t one = 1;
    ssize_t r = write(pool->evfd, &one, sizeof one);
    (void)r; /* EAGAIN: the counter is already non-zero, the manager will wake */
}

static int weft__proc_alloc(weft_proc_pool_t **out, const weft_proc_opts_t *o)
{
    unsigned n = o->workers ? o->workers : weft_cpu_count();
    if (n > WEFT__PROC_MAX_WORKERS || o->task_timeout_ns < 0)
        return -EINVAL;
    weft_proc_pool_t *pool = calloc(1, sizeof *pool);
    weft__pworker_t *ws = calloc(n, sizeof *ws);
    int evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (pool == NULL || ws == NULL || evfd < 0) {
        free(pool);
        free(ws);
        if (evfd >= 0)
            close(evfd);
        return evfd < 0 ? -EMFILE : -ENOMEM;
    }
    pool->name = o->name ? o->name : "proc";
    pool->nworkers = n;
    pool->timeout_ns = o->task_timeout_ns;
    pool->max_tasks = o->max_tasks_per_worker;
    pool->shm = o->shm_threshold ? o->shm_threshold : WEFT__PROC_SHM_DEFAULT;
    pool->workers = ws;
    pool->evfd = evfd;
    weft_mutex_init(&pool->mu, "weft.proc.queue");
    pthread_sigmask(SIG_SETMASK, NULL, &pool->child_mask);
    *out = pool;
    return 0;
}

static void weft__proc_free(weft_proc_pool_t *pool)
{
    for (unsigned i = 0; i < pool->nworkers; i++)
        if (pool->workers[i].pid != 0)
            (void)weft__reap(&pool->workers[i], true);
    close(pool->evfd);
    (void)weft_mutex_destroy(&pool->mu);
    free(pool->workers);
    free(pool);
}

int weft_proc_pool_create(weft_proc_pool_t **out, const weft_proc_opts_t *opts)
{
    static const weft_proc_opts_t defaults;
    if (out == NULL)
        return -EINVAL;
    *out = NULL;
    weft_proc_pool_t *pool;
    int r = weft__proc_alloc(&pool, opts ? opts : &defaults);
    if (r != 0)
        return r;
    for (unsigned i = 0; r == 0 && i < pool->nworkers; i++)
        r = weft__spawn(pool, &pool->workers[i]);
    if (r == 0) {
        /* The manager (and so every later worker) starts with all signals
         * blocked; workers restore the creator's mask. */
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        r = -pthread_create(&pool->manager, NULL, weft__manager_main, pool);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
    }
    if (r != 0) {
        weft__proc_free(pool);
        return r == -ENOMEM ? r : -EAGAIN;
    }
    *out = pool;
    return 0;
}

int weft_proc_submit(weft_proc_pool_t *pool, weft_proc_fn fn, const void *in, size_t in_len,
                     weft_proc_future_t **future)
{
    if (pool == NULL || fn == NULL || future == NULL || (in == NULL && in_len != 0))
        return -EINVAL;
    *future = NULL;
    weft_proc_future_t *f = calloc(1, sizeof *f);
    void *copy = in_len ? malloc(in_len) : NULL;
    if (f == NULL || (in_len != 0 && copy == NULL)) {
        free(f);
        free(copy);
        return -ENOMEM;
    }
    if (in_len != 0)
        memcpy(copy, in, in_len);
    *f = (weft_proc_future_t){.refs = 2, .fn = fn, .in = copy, .in_len = in_len, .pool = pool};
    weft_mutex_lock(&pool->mu);
    bool shut = pool->shutdown;
    if (!shut) {
        f->id = ++pool->next_id;
        if (pool->tail != NULL)
            pool->tail->next = f;
        else
            pool->head = f;
        pool->tail = f;
    }
    weft_mutex_unlock(&pool->mu);
    if (shut) {
        free(copy);
        free(f);
        return -ESHUTDOWN;
    }
    weft__stat_add(&pool->submitted, 1);
    weft__stat_add(&pool->queued, 1);
    weft__poke(pool);
    *future = f;
    return 0;
}

/* The other column of weft__pf_finish()'s diagram. */
static int weft__pf_sleep(weft_proc_future_t *f, const weft__deadline_t *d)
{
    for (;;) {
        __atomic_fetch_add(&f->waiters, 1, __ATOMIC_SEQ_CST);
        uint32_t s = __atomic_load_n(&f->state, __ATOMIC_SEQ_CST);
        int r = s == WEFT__PF_FINAL ? 0 : weft__futex_wait(&f->state, s, d);
        __atomic_fetch_sub(&f->waiters, 1, __ATOMIC_RELAXED);
        if (s == WEFT__PF_FINAL)
            return 0;
        if (r == -ETIMEDOUT)
            return -ETIMEDOUT;
    }
}

int weft_proc_wait(weft_proc_future_t *f, int64_t timeout_ns, const void **out, size_t *out_len)
{
    weft__deadline_t d;
    if (f == NULL || weft__deadline_init(&d, timeout_ns) != 0)
        return -EINVAL;
    /* Acquire: pairs with the release of FINAL in weft__pf_finish(). */
    if (__atomic_load_n(&f->state, __ATOMIC_ACQUIRE) != WEFT__PF_FINAL &&
        (timeout_ns == 0 || weft__pf_sleep(f, &d) != 0))
        return -ETIMEDOUT;
    if (f->err == 0 && out != NULL)
        *out = f->out.data;
    if (f->err == 0 && out_len != NULL)
        *out_len = f->out.len;
    return f->err;
}

int weft_proc_failure(const weft_proc_future_t *f, weft_proc_failure_t *out)
{
    if (f == NULL || out == NULL)
        return -EINVAL;
    if (__atomic_load_n(&f->state, __ATOMIC_ACQUIRE) != WEFT__PF_FINAL)
        memset(out, 0, sizeof *out);
    else
        *out = f->fail;
    return 0;
}

int weft_proc_cancel(weft_proc_future_t *f)
{
    if (f == NULL)
        return -EINVAL;
    uint32_t s = __atomic_load_n(&f->state, __ATOMIC_ACQUIRE);
    if (s == WEFT__PF_FINAL)
        return f->fail.kind == WEFT_PROC_CANCELLED ? 0 : -EBUSY;
    if (s == WEFT__PF_RUNNING)
        return -EBUSY;
    weft_proc_pool_t *pool = f->pool;
    weft_mutex_lock(&pool->mu);
    weft_proc_future_t **pp = &pool->head, *prev = NULL;
    while (*pp != NULL && *pp != f) {
        prev = *pp;
        pp = &(*pp)->next;
    }
    bool found = *pp == f;
    if (found) {
        *pp = f->next;
        if (pool->tail == f)
            pool->tail = prev;
        weft__stat_add(&pool->queued, -1);
        weft__pf_fail(f, WEFT_PROC_CANCELLED, -ECANCELED, 0, 0);
    }
    weft_mutex_unlock(&pool->mu);
    return found ? 0 : -EBUSY;
}

void weft_proc_release(weft_proc_future_t *f)
{
    if (f != NULL)
        weft__pf_unref(f);
}

int weft_proc_pool_stats(weft_proc_pool_t *pool, weft_proc_stats_t *out)
{
    if (pool == NULL || out == NULL)
        return -EINVAL;
    *out = (weft_proc_stats_t){.name = pool->name, .workers = pool->nworkers};
    out->submitted = __atomic_load_n(&pool->submitted, __ATOMIC_RELAXED);
    out->completed = __atomic_load_n(&pool->completed, __ATOMIC_RELAXED);
    out->crashed = __atomic_load_n(&pool->crashed, __ATOMIC_RELAXED);
    out->timed_out = __atomic_load_n(&pool->timed_out, __ATOMIC_RELAXED);
    out->spawned = __atomic_load_n(&pool->spawned, __ATOMIC_RELAXED);
    out->recycled = __atomic_load_n(&pool->recycled, __ATOMIC_RELAXED);
    out->queued = __atomic_load_n(&pool->queued, __ATOMIC_RELAXED);
    out->running = __atomic_load_n(&pool->running, __ATOMIC_RELAXED);
    return 0;
}

int weft_proc_pool_destroy_timed(weft_proc_pool_t *pool, int64_t timeout_ns)
{
    weft__deadline_t d;
    if (pool == NULL || weft__deadline_init(&d, timeout_ns) != 0)
        return -EINVAL;
    weft_mutex_lock(&pool->mu);
    pool->shutdown = true;
    if (timeout_ns != WEFT_FOREVER)
        pool->kill_at = weft__now_ns() + (uint64_t)timeout_ns + 1;
    weft_mutex_unlock(&pool->mu);
    weft__poke(pool);
    pthread_join(pool->manager, NULL);
    weft__proc_free(pool);
    return 0;
}

int weft_proc_pool_destroy(weft_proc_pool_t *pool)
{
    return weft_proc_pool_destroy_timed(pool, WEFT_FOREVER);
}
