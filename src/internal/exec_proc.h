/*
 * Internal interface of the process pool: the message format between the
 * parent and its workers (src/exec/proc_ipc.c) and the worker's main loop.
 */
#ifndef WEFT_INTERNAL_EXEC_PROC_H
#define WEFT_INTERNAL_EXEC_PROC_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "weft/proc.h"

#define WEFT__PMSG_MAGIC 0x77667470u /* "wftp" */

enum {
    WEFT__PMSG_TASK = 1,   /* parent -> worker: run fn on the payload */
    WEFT__PMSG_RESULT = 2, /* worker -> parent: status and result payload */
};

enum {
    WEFT__PMSG_SHM = 1u << 0, /* the payload is in a memfd sent with the header */
};

/*
 * Every message is this fixed header followed by `len` payload bytes,
 * unless WEFT__PMSG_SHM is set: then the payload is the first `len` bytes
 * of the memfd passed (SCM_RIGHTS) with the header, and nothing follows.
 */
typedef struct weft__pmsg {
    uint32_t magic;
    uint32_t kind;
    uint64_t id;    /* the task's id, echoed in its result */
    uint64_t fn;    /* TASK: the function's address */
    uint64_t len;   /* payload bytes */
    int32_t status; /* RESULT: the function's return value */
    uint32_t flags;
} weft__pmsg_t;

/* A received payload: heap memory, or a read-only mapping of a memfd. */
typedef struct weft__payload {
    void *data;
    size_t len;
    bool mapped;
} weft__payload_t;

/* Send a header and payload; payloads of shm_threshold bytes or more go by
 * memfd. 0 or a negative errno (-EPIPE: the peer is gone). */
int weft__pmsg_send(int fd, weft__pmsg_t *h, const void *data, size_t len, size_t shm_threshold);

/* Receive one message. 0; -EPIPE at end of file; another negative errno on
 * a malformed message or a failed call. */
int weft__pmsg_recv(int fd, weft__pmsg_t *h, weft__payload_t *p);

void weft__payload_free(weft__payload_t *p);

/* The worker process: serve tasks on fd until the parent closes it, then
 * _exit(0). Never returns. */
__attribute__((noreturn)) void weft__proc_worker_main(int fd, const sigset_t *mask,
                                                      size_t shm_threshold);

#endif /* WEFT_INTERNAL_EXEC_PROC_H */
