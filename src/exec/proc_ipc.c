/*
 * proc_ipc.c - the process pool's messages, and the worker process's loop.
 *
 * Owns: the wire format of internal/exec_proc.h over a SOCK_STREAM
 * socketpair, large payloads in memfds passed with SCM_RIGHTS, and
 * weft__proc_worker_main, the whole life of a worker process.
 * Promises: EINTR is retried; SIGPIPE is never raised (MSG_NOSIGNAL); a
 * peer that dies mid-message gives -EPIPE, never a short result; every
 * descriptor received is closed or owned by a payload.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "internal/exec_proc.h"

/* The largest payload accepted (a corrupt length must not allocate wildly). */
#define WEFT__PMSG_MAX ((uint64_t)1 << 34)

static int weft__send_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return errno == ECONNRESET ? -EPIPE : -errno;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int weft__recv_all(int fd, void *buf, size_t len)
{
    char *p = buf;
    while (len > 0) {
        ssize_t n = recv(fd, p, len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return errno == ECONNRESET ? -EPIPE : -errno;
        if (n == 0)
            return -EPIPE;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Copy a payload into a new memfd. Returns the fd or a negative errno. */
static int weft__memfd_of(const void *data, size_t len)
{
    int fd = memfd_create("weft-proc", MFD_CLOEXEC);
    if (fd < 0)
        return -errno;
    if (ftruncate(fd, (off_t)len) != 0) {
        int e = -errno;
        close(fd);
        return e;
    }
    void *m = mmap(NULL, len, PROT_WRITE, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED) {
        int e = -errno;
        close(fd);
        return e;
    }
    memcpy(m, data, len);
    munmap(m, len);
    return fd;
}

/* Send the header, with `passfd` attached when it is >= 0. */
static int weft__send_header(int fd, const weft__pmsg_t *h, int passfd)
{
    struct iovec iov = {(void *)h, sizeof *h};
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } c;
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
    if (passfd >= 0) {
        memset(&c, 0, sizeof c);
        m.msg_control = c.buf;
        m.msg_controllen = sizeof c.buf;
        struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(cm), &passfd, sizeof(int));
    }
    ssize_t n;
    do
        n = sendmsg(fd, &m, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return errno == ECONNRESET ? -EPIPE : -errno;
    /* The descriptor went with the first byte; send what is left, if any. */
    return weft__send_all(fd, (const char *)h + n, sizeof *h - (size_t)n);
}

int weft__pmsg_send(int fd, weft__pmsg_t *h, const void *data, size_t len, size_t shm_threshold)
{
    h->magic = WEFT__PMSG_MAGIC;
    h->len = len;
    h->flags = 0;
    if (len == 0 || len < shm_threshold) {
        int r = weft__send_header(fd, h, -1);
        return r != 0 || len == 0 ? r : weft__send_all(fd, data, len);
    }
    int mfd = weft__memfd_of(data, len);
    if (mfd < 0)
        return mfd;
    h->flags = WEFT__PMSG_SHM;
    int r = weft__send_header(fd, h, mfd);
    close(mfd); /* the receiver has its own descriptor now */
    return r;
}

/* Receive the header and the descriptor sent with it (-1 if none). */
static int weft__recv_header(int fd, weft__pmsg_t *h, int *passfd)
{
    struct iovec iov = {h, sizeof *h};
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } c;
    struct msghdr m = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = c.buf, .msg_controllen = sizeof c.buf};
    *passfd = -1;
    ssize_t n;
    do
        n = recvmsg(fd, &m, MSG_CMSG_CLOEXEC);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return errno == ECONNRESET ? -EPIPE : -errno;
    if (n == 0)
        return -EPIPE;
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(&m); cm != NULL; cm = CMSG_NXTHDR(&m, cm))
        if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS)
            memcpy(passfd, CMSG_DATA(cm), sizeof(int));
    int r = weft__recv_all(fd, (char *)h + n, sizeof *h - (size_t)n);
    if (r == 0 && (h->magic != WEFT__PMSG_MAGIC || h->len > WEFT__PMSG_MAX))
        r = -EPROTO;
    return r;
}

/* Map a received memfd read-only as the payload. */
static int weft__payload_map(weft__payload_t *p, int mfd, size_t len)
{
    void *m = mmap(NULL, len, PROT_READ, MAP_PRIVATE, mfd, 0);
    if (m == MAP_FAILED)
        return -errno;
    p->data = m;
    p->len = len;
    p->mapped = true;
    return 0;
}

int weft__pmsg_recv(int fd, weft__pmsg_t *h, weft__payload_t *p)
{
    int mfd;
    memset(p, 0, sizeof *p);
    int r = weft__recv_header(fd, h, &mfd);
    if (r == 0 && (h->flags & WEFT__PMSG_SHM) && h->len > 0) {
        r = mfd >= 0 ? weft__payload_map(p, mfd, h->len) : -EPROTO;
    } else if (r == 0 && h->len > 0) {
        p->data = malloc(h->len);
        p->len = h->len;
        r = p->data == NULL ? -ENOMEM : weft__recv_all(fd, p->data, h->len);
    }
    if (mfd >= 0)
        close(mfd); /* a mapping keeps the memory; the descriptor is done */
    if (r != 0)
        weft__payload_free(p);
    return r;
}

void weft__payload_free(weft__payload_t *p)
{
    if (p->data != NULL) {
        if (p->mapped)
            munmap(p->data, p->len);
        else
            free(p->data);
    }
    memset(p, 0, sizeof *p);
}

/* ---- the worker process --------------------------------------------------- */

/* Default dispositions for every signal (the parent's handlers, such as a
 * test framework's SIGSEGV handler, must not run in a worker), SIGPIPE
 * ignored, and the pool creator's mask. */
static void weft__worker_signals(const sigset_t *mask)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL;
    for (int s = 1; s < NSIG; s++)
        if (s != SIGKILL && s != SIGSTOP)
            (void)sigaction(s, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    (void)sigaction(SIGPIPE, &sa, NULL);
    pthread_sigmask(SIG_SETMASK, mask, NULL);
}

void weft__proc_worker_main(int fd, const sigset_t *mask, size_t shm_threshold)
{
    weft__worker_signals(mask);
    for (;;) {
        weft__pmsg_t h;
        weft__payload_t in;
        int r = weft__pmsg_recv(fd, &h, &in);
        if (r == -EPIPE)
            _exit(0); /* the parent closed: retire */
        if (r != 0 || h.kind != WEFT__PMSG_TASK)
            _exit(2);
        weft_proc_fn fn = (weft_proc_fn)(uintptr_t)h.fn;
        void *out = NULL;
        size_t out_len = 0;
        int status = fn(in.data, in.len, &out, &out_len);
        weft__payload_free(&in);
        weft__pmsg_t rh = {.kind = WEFT__PMSG_RESULT, .id = h.id, .status = status};
        if (out == NULL)
            out_len = 0;
        r = weft__pmsg_send(fd, &rh, out, out_len, shm_threshold);
        free(out);
        if (r != 0)
            _exit(r == -EPIPE ? 0 : 2);
    }
}
