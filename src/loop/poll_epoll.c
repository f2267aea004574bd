/*
 * poll_epoll.c - the loop's poller backend on epoll.
 *
 * Owns one epoll instance. Watchers are level-triggered; the epoll data
 * carries the weft_io_t pointer, so a ready event leads straight to its
 * watcher. Waits use epoll_pwait2 (nanosecond timeouts) and fall back to
 * epoll_wait with the timeout rounded up to whole milliseconds on kernels
 * without it, so a timer is never woken early.
 */
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "internal/loop.h"

struct weft__poll {
    int epfd;
    bool no_pwait2; /* epoll_pwait2 returned ENOSYS once */
    struct epoll_event ev[WEFT__LOOP_MAX_EVENTS];
};

int weft__poll_open(weft__poll_t **out)
{
    weft__poll_t *p = calloc(1, sizeof *p);
    if (p == NULL)
        return -ENOMEM;
    p->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (p->epfd < 0) {
        int err = -errno;
        free(p);
        return err;
    }
    *out = p;
    return 0;
}

void weft__poll_close(weft__poll_t *p)
{
    close(p->epfd);
    free(p);
}

static uint32_t weft__poll_mask(unsigned events)
{
    return ((events & WEFT_IO_READ) ? EPOLLIN | EPOLLRDHUP : 0u) |
           ((events & WEFT_IO_WRITE) ? EPOLLOUT : 0u);
}

int weft__poll_ctl(weft__poll_t *p, weft_io_t *io, unsigned old, unsigned events)
{
    struct epoll_event ev = {.events = weft__poll_mask(events), .data.ptr = io};
    int op = events == 0 ? EPOLL_CTL_DEL : old == 0 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD;
    if (epoll_ctl(p->epfd, op, io->fd, &ev) < 0)
        return -errno;
    return 0;
}

static int weft__poll_raw(weft__poll_t *p, int max, int64_t timeout_ns)
{
    if (!p->no_pwait2) {
        struct timespec ts = {(time_t)(timeout_ns / 1000000000), (long)(timeout_ns % 1000000000)};
        int n = epoll_pwait2(p->epfd, p->ev, max, timeout_ns < 0 ? NULL : &ts, NULL);
        if (n >= 0 || errno != ENOSYS)
            return n;
        p->no_pwait2 = true;
    }
    int ms = timeout_ns < 0 ? -1 : (int)((timeout_ns + 999999) / 1000000);
    return epoll_wait(p->epfd, p->ev, max, ms);
}

int weft__poll_wait(weft__poll_t *p, weft__ready_t *out, int max, int64_t timeout_ns)
{
    if (max > WEFT__LOOP_MAX_EVENTS)
        max = WEFT__LOOP_MAX_EVENTS;
    int n = weft__poll_raw(p, max, timeout_ns);
    if (n < 0)
        return errno == EINTR ? 0 : -errno;
    for (int i = 0; i < n; i++) {
        uint32_t e = p->ev[i].events;
        out[i].io = p->ev[i].data.ptr;
        out[i].events = ((e & (EPOLLIN | EPOLLRDHUP)) ? WEFT_IO_READ : 0u) |
                        ((e & EPOLLOUT) ? WEFT_IO_WRITE : 0u) |
                        ((e & (EPOLLERR | EPOLLHUP)) ? WEFT_IO_ERROR : 0u);
    }
    return n;
}
