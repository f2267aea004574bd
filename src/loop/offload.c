/*
 * offload.c - weft_loop_offload: CPU work on a weft pool, completion on
 * the loop thread.
 *
 * DESIGN
 *   Each offload is a request owned by the loop: on off_all (loop thread
 *   only) from submit until its done callback has run. A pool worker runs
 *   the work, then pushes the request onto off_done under off_mu and wakes
 *   the loop through its eventfd. The loop, woken, takes the whole done
 *   list under the lock and calls each done callback outside it, so a
 *   callback may offload again.
 *
 *   No completion is lost: the worker pushes before it wakes, and the loop
 *   takes the list after it cleared wake_pending (weft__loop_on_wake), so
 *   a push the loop's take missed is followed by a wake that it will see.
 *
 *   Destroy settles every request: one cancelled before it started gets
 *   status -ECANCELED; one running is waited for and delivered normally.
 *   The worker's last touch of the loop (the wake) happens before the task
 *   returns, so after weft_future_wait the loop may be freed.
 */
#include <stdlib.h>

#include "internal/loop.h"

struct weft__offload {
    weft_loop_t *loop;
    weft_task_fn work;
    void *arg;
    void *result;
    weft_offload_done_cb done;
    weft_future_t *future;
    weft__offload_t *next_done;   /* off_done link; under off_mu */
    weft__offload_t *prev, *next; /* off_all links; loop thread only */
};

static void *weft__offload_task(void *p)
{
    weft__offload_t *r = p;
    weft_loop_t *l = r->loop;
    r->result = r->work(r->arg);
    weft_mutex_lock(&l->off_mu);
    r->next_done = l->off_done;
    l->off_done = r;
    weft_mutex_unlock(&l->off_mu);
    weft__loop_wake(l);
    return NULL;
}

static void weft__offload_link(weft_loop_t *l, weft__offload_t *r)
{
    r->prev = NULL;
    r->next = l->off_all;
    if (l->off_all != NULL)
        l->off_all->prev = r;
    l->off_all = r;
    /* Relaxed: written by the loop thread alone; a statistic for others. */
    __atomic_store_n(&l->off_pending, l->off_pending + 1, __ATOMIC_RELAXED);
}

static void weft__offload_unlink(weft_loop_t *l, weft__offload_t *r)
{
    if (r->prev != NULL)
        r->prev->next = r->next;
    else
        l->off_all = r->next;
    if (r->next != NULL)
        r->next->prev = r->prev;
    /* Relaxed: as in weft__offload_link(). */
    __atomic_store_n(&l->off_pending, l->off_pending - 1, __ATOMIC_RELAXED);
}

int weft_loop_offload(weft_loop_t *loop, weft_pool_t *pool, weft_task_fn work_fn, void *arg,
                      weft_offload_done_cb done_cb)
{
    if (loop == NULL || pool == NULL || work_fn == NULL || done_cb == NULL)
        return -EINVAL;
    weft__offload_t *r = calloc(1, sizeof *r);
    if (r == NULL)
        return -ENOMEM;
    *r = (weft__offload_t){.loop = loop, .work = work_fn, .arg = arg, .done = done_cb};
    /* Linked before the submit: the worker may finish at once, and the
     * loop must know the request when the completion arrives. */
    weft__offload_link(loop, r);
    int err = weft_pool_submit(pool, weft__offload_task, r, &r->future);
    if (err != 0) {
        weft__offload_unlink(loop, r);
        free(r);
    }
    return err;
}

/* Finish one request on the loop thread: unlink, callback, free. */
static void weft__offload_finish(weft_loop_t *l, weft__offload_t *r, int status)
{
    weft__offload_unlink(l, r);
    weft_future_release(r->future);
    void *result = status == 0 ? r->result : NULL;
    weft_offload_done_cb done = r->done;
    void *arg = r->arg;
    free(r);
    WEFT__LOOP_CALL(l, done, l, arg, result, status);
}

static weft__offload_t *weft__offload_take(weft_loop_t *l)
{
    weft_mutex_lock(&l->off_mu);
    weft__offload_t *list = l->off_done;
    l->off_done = NULL;
    weft_mutex_unlock(&l->off_mu);
    return list;
}

void weft__offload_run(weft_loop_t *l)
{
    weft__offload_t *list = weft__offload_take(l);
    /* The list is newest first; reverse it so callbacks run in completion order. */
    weft__offload_t *fifo = NULL;
    while (list != NULL) {
        weft__offload_t *n = list->next_done;
        list->next_done = fifo;
        fifo = list;
        list = n;
    }
    while (fifo != NULL) {
        weft__offload_t *n = fifo->next_done;
        weft__offload_finish(l, fifo, 0);
        fifo = n;
    }
}

void weft__offload_settle(weft_loop_t *l)
{
    while (l->off_all != NULL) {
        weft__offload_t *r = l->off_all;
        if (weft_future_cancel(r->future) == 0) {
            weft__offload_finish(l, r, -ECANCELED);
            continue;
        }
        weft_future_wait(r->future, WEFT_FOREVER, NULL);
        weft__offload_run(l);
    }
}
