/*
 * signal.c - weft_signal_t through one signalfd per loop.
 *
 * DESIGN
 *   The loop's signalfd is opened with an empty mask at create time and
 *   its mask is rewritten (signalfd on the same fd) to the union of the
 *   watched signals whenever a watcher starts or stops. Watchers form a
 *   list; a delivered signal calls every watcher of its number, in start
 *   order. Starting a watcher blocks the signal in the calling thread so
 *   the kernel queues it for the signalfd instead of running a handler;
 *   other threads must block it themselves (weft/loop.h says so).
 */
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "internal/loop.h"

static int weft__signals_mask(weft_loop_t *l)
{
    sigset_t set;
    sigemptyset(&set);
    for (weft_signal_t *s = l->signals; s != NULL; s = s->_next)
        sigaddset(&set, s->signum);
    if (signalfd(l->sigfd, &set, 0) < 0)
        return -errno;
    return 0;
}

/* Call every watcher of signum; a callback may stop any of them. */
static void weft__signals_deliver(weft_loop_t *l, int signum)
{
    weft_signal_t *s = l->signals;
    while (s != NULL) {
        if (s->signum != signum) {
            s = s->_next;
            continue;
        }
        weft_signal_t *next = s->_next;
        uint64_t gen = l->sig_gen;
        WEFT__LOOP_CALL(l, s->_cb, s, signum);
        if (gen != l->sig_gen)
            return; /* the list changed: the rest may be gone */
        s = next;
    }
}

static void weft__signals_on_read(weft_io_t *io, unsigned events)
{
    (void)events;
    weft_loop_t *l = io->data;
    struct signalfd_siginfo si[8];
    ssize_t n = read(l->sigfd, si, sizeof si);
    for (ssize_t i = 0; n > 0 && i < n / (ssize_t)sizeof si[0]; i++)
        weft__signals_deliver(l, (int)si[i].ssi_signo);
}

int weft__signals_open(weft_loop_t *l)
{
    sigset_t set;
    sigemptyset(&set);
    l->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (l->sigfd < 0)
        return -errno;
    weft_io_init(l, &l->sig_io, l->sigfd);
    l->sig_io.data = l;
    l->sig_io._internal = true;
    return weft_io_start(&l->sig_io, WEFT_IO_READ, weft__signals_on_read);
}

int weft_signal_init(weft_loop_t *loop, weft_signal_t *s)
{
    if (loop == NULL || s == NULL)
        return -EINVAL;
    s->loop = loop;
    s->signum = 0;
    s->_cb = NULL;
    s->_prev = s->_next = NULL;
    return 0;
}

static void weft__signal_unlink(weft_loop_t *l, weft_signal_t *s)
{
    if (s->_prev != NULL)
        s->_prev->_next = s->_next;
    else
        l->signals = s->_next;
    if (s->_next != NULL)
        s->_next->_prev = s->_prev;
    s->_prev = s->_next = NULL;
    s->signum = 0;
    l->sig_gen++;
}

/* Append s, so watchers of one signal are called in start order. */
static void weft__signal_link(weft_loop_t *l, weft_signal_t *s)
{
    weft_signal_t **p = &l->signals, *prev = NULL;
    while (*p != NULL) {
        prev = *p;
        p = &(*p)->_next;
    }
    *p = s;
    s->_prev = prev;
    s->_next = NULL;
}

int weft_signal_start(weft_signal_t *s, weft_signal_cb cb, int signum)
{
    if (s == NULL || s->loop == NULL || cb == NULL || signum <= 0 || signum >= NSIG ||
        signum == SIGKILL || signum == SIGSTOP)
        return -EINVAL;
    weft_loop_t *l = s->loop;
    bool was_active = s->signum != 0;
    if (was_active)
        weft__signal_unlink(l, s);
    sigset_t one;
    sigemptyset(&one);
    sigaddset(&one, signum);
    int err = -pthread_sigmask(SIG_BLOCK, &one, NULL);
    if (err == 0) {
        s->signum = signum;
        weft__signal_link(l, s);
        err = weft__signals_mask(l);
        if (err != 0)
            weft__signal_unlink(l, s);
    }
    if (err == 0 && !was_active)
        weft__loop_active(l, +1);
    if (err != 0 && was_active)
        weft__loop_active(l, -1);
    s->_cb = err == 0 ? cb : s->_cb;
    return err;
}

int weft_signal_stop(weft_signal_t *s)
{
    if (s == NULL || s->loop == NULL)
        return -EINVAL;
    if (s->signum == 0)
        return 0;
    weft__signal_unlink(s->loop, s);
    weft__loop_active(s->loop, -1);
    return weft__signals_mask(s->loop);
}

void weft__signals_detach(weft_loop_t *l)
{
    while (l->signals != NULL)
        weft__signal_unlink(l, l->signals);
}
