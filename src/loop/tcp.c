/*
 * tcp.c - weft_tcp_t: non-blocking TCP streams on the loop (IPv4).
 *
 * DESIGN
 *   _flags    LISTENING | CONNECTING | READING; what the handle is doing
 *   _wbuf     bytes written by the caller and not yet taken by the kernel,
 *             in [_woff, _wlen); the handle watches WRITE only while it is
 *             not empty (or while a connect is in progress)
 *
 * One watcher per handle, level-triggered; its events are recomputed from
 * the flags and the queue after every change (weft__tcp_update). Each
 * readiness event leads to at most one user callback, called last, so a
 * callback may close the handle and free it: nothing touches it after.
 * Level triggering brings back whatever was left for the next iteration.
 *
 * Back-pressure: weft_tcp_write refuses (-EAGAIN, nothing queued) once the
 * queue holds the loop's tcp_high_water bytes; the drain callback says when
 * the queue is empty again.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "internal/loop.h"

#define WEFT__TCP_LISTENING 1u
#define WEFT__TCP_CONNECTING 2u
#define WEFT__TCP_READING 4u

static void weft__tcp_on_io(weft_io_t *io, unsigned events);

int weft_tcp_init(weft_loop_t *loop, weft_tcp_t *t)
{
    if (loop == NULL || t == NULL)
        return -EINVAL;
    memset(t, 0, sizeof *t);
    t->loop = loop;
    t->fd = -1;
    return 0;
}

/* Watch what the flags and the queue ask for; keep the active count. */
static int weft__tcp_update(weft_tcp_t *t)
{
    unsigned want = 0;
    if (t->_flags & (WEFT__TCP_LISTENING | WEFT__TCP_READING))
        want |= WEFT_IO_READ;
    if ((t->_flags & WEFT__TCP_CONNECTING) || t->_wlen > t->_woff)
        want |= WEFT_IO_WRITE;
    bool was = t->_io._events != 0;
    int err = want == 0 ? weft_io_stop(&t->_io) : weft_io_start(&t->_io, want, weft__tcp_on_io);
    if (err == 0 && was != (want != 0))
        weft__loop_active(t->loop, want != 0 ? +1 : -1);
    return err;
}

/* Take ownership of fd: bind the watcher, join the loop's open handles. */
static void weft__tcp_adopt(weft_tcp_t *t, int fd)
{
    weft_loop_t *l = t->loop;
    t->fd = fd;
    weft_io_init(l, &t->_io, fd);
    t->_io.data = t;
    t->_io._internal = true; /* the handle counts itself as active */
    t->_prev = NULL;
    t->_next = l->tcps;
    if (l->tcps != NULL)
        l->tcps->_prev = t;
    l->tcps = t;
}

static void weft__tcp_release(weft_tcp_t *t)
{
    weft_loop_t *l = t->loop;
    if (t->_prev != NULL)
        t->_prev->_next = t->_next;
    else
        l->tcps = t->_next;
    if (t->_next != NULL)
        t->_next->_prev = t->_prev;
    t->_prev = t->_next = NULL;
    close(t->fd);
    t->fd = -1;
    t->_flags = 0;
}

static int weft__tcp_socket(weft_tcp_t *t)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    weft__tcp_adopt(t, fd);
    return 0;
}

static int weft__tcp_addr(const char *ip, uint16_t port, struct sockaddr_in *sa)
{
    memset(sa, 0, sizeof *sa);
    sa->sin_family = AF_INET;
    sa->sin_port = htons(port);
    return inet_pton(AF_INET, ip, &sa->sin_addr) == 1 ? 0 : -EINVAL;
}

static void weft__tcp_nodelay(int fd)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static int weft__tcp_fail(weft_tcp_t *t, int err)
{
    weft__tcp_release(t);
    return err;
}

int weft_tcp_listen(weft_tcp_t *t, const char *ip, uint16_t port, int backlog,
                    weft_tcp_status_cb cb)
{
    struct sockaddr_in sa;
    if (t == NULL || t->loop == NULL || t->fd >= 0 || ip == NULL || cb == NULL || backlog < 0 ||
        weft__tcp_addr(ip, port, &sa) != 0)
        return -EINVAL;
    int err = weft__tcp_socket(t);
    if (err != 0)
        return err;
    int one = 1;
    setsockopt(t->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(t->fd, (struct sockaddr *)&sa, sizeof sa) < 0 ||
        listen(t->fd, backlog != 0 ? backlog : SOMAXCONN) < 0)
        return weft__tcp_fail(t, -errno);
    t->_status_cb = cb;
    t->_flags = WEFT__TCP_LISTENING;
    err = weft__tcp_update(t);
    return err != 0 ? weft__tcp_fail(t, err) : 0;
}

int weft_tcp_port(const weft_tcp_t *t, uint16_t *port)
{
    struct sockaddr_in sa;
    socklen_t len = sizeof sa;
    if (t == NULL || port == NULL || t->fd < 0)
        return -EINVAL;
    if (getsockname(t->fd, (struct sockaddr *)&sa, &len) < 0)
        return -errno;
    *port = ntohs(sa.sin_port);
    return 0;
}

int weft_tcp_accept(weft_tcp_t *server, weft_tcp_t *client)
{
    if (server == NULL || client == NULL || !(server->_flags & WEFT__TCP_LISTENING) ||
        client->loop == NULL || client->fd >= 0)
        return -EINVAL;
    int fd = accept4(server->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0)
        return errno == EWOULDBLOCK ? -EAGAIN : -errno;
    weft__tcp_nodelay(fd);
    weft__tcp_adopt(client, fd);
    return 0;
}

int weft_tcp_connect(weft_tcp_t *t, const char *ip, uint16_t port, weft_tcp_status_cb cb)
{
    struct sockaddr_in sa;
    if (t == NULL || t->loop == NULL || t->fd >= 0 || ip == NULL || cb == NULL || port == 0 ||
        weft__tcp_addr(ip, port, &sa) != 0)
        return -EINVAL;
    int err = weft__tcp_socket(t);
    if (err != 0)
        return err;
    weft__tcp_nodelay(t->fd);
    if (connect(t->fd, (struct sockaddr *)&sa, sizeof sa) < 0 && errno != EINPROGRESS)
        return weft__tcp_fail(t, -errno);
    /* Connected or in progress: either way the socket turns writable, and
     * the callback runs from the loop, never from inside this call. */
    t->_status_cb = cb;
    t->_flags = WEFT__TCP_CONNECTING;
    err = weft__tcp_update(t);
    return err != 0 ? weft__tcp_fail(t, err) : 0;
}

int weft_tcp_read_start(weft_tcp_t *t, weft_tcp_read_cb cb)
{
    if (t == NULL || t->fd < 0 || cb == NULL || (t->_flags & WEFT__TCP_LISTENING))
        return -EINVAL;
    t->_read_cb = cb;
    t->_flags |= WEFT__TCP_READING;
    return weft__tcp_update(t);
}

int weft_tcp_read_stop(weft_tcp_t *t)
{
    if (t == NULL || t->fd < 0)
        return -EINVAL;
    t->_flags &= ~WEFT__TCP_READING;
    return weft__tcp_update(t);
}

int weft_tcp_on_drain(weft_tcp_t *t, weft_tcp_drain_cb cb)
{
    if (t == NULL || t->loop == NULL)
        return -EINVAL;
    t->_drain_cb = cb;
    return 0;
}

size_t weft_tcp_queued(const weft_tcp_t *t)
{
    return t == NULL ? 0 : t->_wlen - t->_woff;
}

/* Hand queued bytes to the kernel; 0, or a negative errno (queue dropped). */
static int weft__tcp_flush(weft_tcp_t *t)
{
    while (t->_woff < t->_wlen) {
        ssize_t n = send(t->fd, t->_wbuf + t->_woff, t->_wlen - t->_woff, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return 0;
            t->_woff = t->_wlen = 0;
            return -errno;
        }
        t->_woff += (size_t)n;
    }
    t->_woff = t->_wlen = 0;
    return 0;
}

static int weft__tcp_queue(weft_tcp_t *t, const char *p, size_t len)
{
    if (t->_woff > 0 && t->_wlen + len > t->_wcap) {
        memmove(t->_wbuf, t->_wbuf + t->_woff, t->_wlen - t->_woff);
        t->_wlen -= t->_woff;
        t->_woff = 0;
    }
    if (t->_wlen + len > t->_wcap) {
        size_t cap = t->_wcap != 0 ? t->_wcap : 4096;
        while (cap < t->_wlen + len)
            cap *= 2;
        char *b = realloc(t->_wbuf, cap);
        if (b == NULL)
            return -ENOMEM;
        t->_wbuf = b;
        t->_wcap = cap;
    }
    memcpy(t->_wbuf + t->_wlen, p, len);
    t->_wlen += len;
    return 0;
}

int weft_tcp_write(weft_tcp_t *t, const void *buf, size_t len)
{
    if (t == NULL || t->fd < 0 || (buf == NULL && len != 0) || (t->_flags & WEFT__TCP_LISTENING))
        return -EINVAL;
    if (t->_wlen - t->_woff >= t->loop->tcp_high_water)
        return -EAGAIN;
    const char *p = buf;
    if (t->_wlen == t->_woff && !(t->_flags & WEFT__TCP_CONNECTING)) {
        ssize_t n;
        while ((n = send(t->fd, p, len, MSG_NOSIGNAL)) < 0 && errno == EINTR)
            ;
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
            return -errno;
        n = n < 0 ? 0 : n;
        p += n;
        len -= (size_t)n;
    }
    if (len == 0)
        return 0;
    int err = weft__tcp_queue(t, p, len);
    return err != 0 ? err : weft__tcp_update(t);
}

int weft_tcp_close(weft_tcp_t *t)
{
    if (t == NULL || t->loop == NULL)
        return -EINVAL;
    if (t->fd < 0)
        return 0;
    t->_flags = 0;
    t->_woff = t->_wlen = 0;
    weft__tcp_update(t);
    weft__tcp_release(t);
    free(t->_wbuf);
    t->_wbuf = NULL;
    t->_wcap = 0;
    return 0;
}

void weft__tcps_close(weft_loop_t *l)
{
    while (l->tcps != NULL)
        weft_tcp_close(l->tcps);
}

/* ---- readiness ------------------------------------------------------------------ */

static void weft__tcp_connected(weft_tcp_t *t)
{
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(t->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        err = errno;
    t->_flags &= ~WEFT__TCP_CONNECTING;
    weft__tcp_update(t);
    WEFT__LOOP_CALL(t->loop, t->_status_cb, t, -err);
}

/* Returns true when it called a user callback (the handle may be gone). */
static bool weft__tcp_writable(weft_tcp_t *t)
{
    int err = weft__tcp_flush(t);
    weft__tcp_update(t);
    if (err == 0 && t->_wlen == 0 && t->_drain_cb != NULL) {
        WEFT__LOOP_CALL(t->loop, t->_drain_cb, t);
        return true;
    }
    return false;
}

static void weft__tcp_readable(weft_tcp_t *t)
{
    weft_loop_t *l = t->loop;
    ssize_t n;
    while ((n = recv(t->fd, l->rbuf, WEFT__LOOP_RBUF, 0)) < 0 && errno == EINTR)
        ;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return;
    if (n <= 0) { /* End of stream or error: reading stops by itself. */
        n = n < 0 ? -errno : 0;
        t->_flags &= ~WEFT__TCP_READING;
        weft__tcp_update(t);
    }
    WEFT__LOOP_CALL(l, t->_read_cb, t, l->rbuf, n);
}

static void weft__tcp_on_io(weft_io_t *io, unsigned events)
{
    weft_tcp_t *t = io->data;
    if (t->_flags & WEFT__TCP_LISTENING) {
        WEFT__LOOP_CALL(t->loop, t->_status_cb, t, 0);
        return;
    }
    if (t->_flags & WEFT__TCP_CONNECTING) {
        weft__tcp_connected(t);
        return;
    }
    if ((events & (WEFT_IO_WRITE | WEFT_IO_ERROR)) && t->_wlen > t->_woff && weft__tcp_writable(t))
        return;
    if ((events & (WEFT_IO_READ | WEFT_IO_ERROR)) && (t->_flags & WEFT__TCP_READING))
        weft__tcp_readable(t);
}
