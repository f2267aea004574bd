/*
 * ledger.c - the semaphore permit ledger, starvation and livelock reports.
 *
 * Permit ledger: every permit taken is written down with the thread, the
 * site and the time; a release by a thread that holds an entry removes its
 * newest one, any other release removes the oldest (a hand-off). A
 * semaphore on which some thread released a permit it had itself acquired
 * is a resource limiter; only those report a thread that exits with permits
 * still written against it (a leak). Semaphores used purely for signalling
 * (acquired by one thread, released by another) never report leaks.
 *
 * Wait-for: a thread blocked on a semaphore waits for the ledger's holders
 * (see the walk in graph.c). That is trusted only while the ledger can be
 * the whole truth: once a thread releases a permit it did not take, the
 * semaphore is a signal, anyone may release it, and it is never followed.
 *
 * A ledger belongs to one life of its semaphore (init starts a new one): it
 * is emptied the first time it is touched in a new life.
 */
#include <stdio.h>
#include <stdlib.h>

#include "check/check_internal.h"

#define WEFT__CK_LEDGER_MAX 4096 /* entries per semaphore kept for reports */

uint64_t weft__check_sem_wait_ns(void)
{
    static uint64_t ns; /* racy first computation is idempotent */
    uint64_t v = __atomic_load_n(&ns, __ATOMIC_RELAXED);
    if (v == 0) {
        const char *e = getenv("WEFT_CHECK_SEM_WAIT_MS");
        long ms = e != NULL ? strtol(e, NULL, 10) : 0;
        v = (uint64_t)(ms > 0 ? ms : 1000) * 1000000u;
        __atomic_store_n(&ns, v, __ATOMIC_RELAXED);
    }
    return v;
}

/* Caller holds weft__ck.lock. Forget what an earlier life wrote down. */
static void weft__ck_ledger_life(weft__cknode_t *n)
{
    if (n->ledger_gen == n->gen)
        return;
    while (n->permits != NULL) {
        weft__ckpermit_t *p = n->permits;
        n->permits = p->next;
        free(p);
    }
    n->sem_resource = false;
    n->sem_signal = false;
    n->ledger_gen = n->gen;
}

void weft__check_sem_acquired(const weft__ck_lock_t *s, void *site)
{
    weft__ckthread_t *t = weft__ck_self();
    if (t == NULL || t->busy)
        return;
    t->busy = true;
    weft__cknode_t *n = weft__ck_node(t, s, NULL);
    weft__ckpermit_t *p = n != NULL ? malloc(sizeof *p) : NULL;
    if (p != NULL) {
        p->tid = t->tid;
        p->site = site;
        p->since_ns = weft__now_ns();
        p->thread = t;
        weft__rawlock_lock(&weft__ck.lock);
        weft__ck_ledger_life(n);
        p->next = n->permits;
        n->permits = p;
        weft__rawlock_unlock(&weft__ck.lock);
    }
    t->busy = false;
}

void weft__check_sem_released(const weft__ck_lock_t *s, void *site)
{
    (void)site;
    weft__ckthread_t *t = weft__ck_self();
    if (t == NULL || t->busy)
        return;
    t->busy = true;
    weft__cknode_t *n = weft__ck_node(t, s, NULL);
    weft__ckpermit_t *victim = NULL;
    if (n != NULL) {
        weft__rawlock_lock(&weft__ck.lock);
        weft__ck_ledger_life(n);
        weft__ckpermit_t **pp, **mine = NULL, **oldest = NULL;
        for (pp = &n->permits; *pp != NULL; pp = &(*pp)->next) {
            if (mine == NULL && (*pp)->thread == t)
                mine = pp; /* the list is newest first */
            oldest = pp;
        }
        pp = mine != NULL ? mine : oldest;
        if (mine != NULL)
            n->sem_resource = true;
        else
            n->sem_signal = true;
        if (pp != NULL) {
            victim = *pp;
            *pp = victim->next;
        }
        weft__rawlock_unlock(&weft__ck.lock);
    }
    free(victim);
    t->busy = false;
}

int weft__ck_permit_holders(weft__cknode_t *n, weft__ckthread_t **out, int max)
{
    int k = 0;
    weft__rawlock_lock(&weft__ck.lock);
    bool trusted = n->ledger_gen == n->gen && !n->sem_signal;
    for (weft__ckpermit_t *p = trusted ? n->permits : NULL; p != NULL && k >= 0; p = p->next) {
        bool listed = false;
        for (int i = 0; i < k && !listed; i++)
            listed = out[i] == p->thread;
        if (__atomic_load_n(&p->thread->exited, __ATOMIC_ACQUIRE) || (!listed && k == max))
            k = -1;
        else if (!listed)
            out[k++] = p->thread;
    }
    weft__rawlock_unlock(&weft__ck.lock);
    return trusted ? k : -1;
}

void *weft__ck_permit_site(weft__cknode_t *n, const weft__ckthread_t *o)
{
    void *site = NULL;
    weft__rawlock_lock(&weft__ck.lock);
    for (weft__ckpermit_t *p = n->permits; p != NULL && site == NULL; p = p->next)
        if (p->thread == o)
            site = p->site;
    weft__rawlock_unlock(&weft__ck.lock);
    return site;
}

/*
 * The waiting state of a semaphore wait, for wait-for walks. Only this
 * thread writes its waiting fields; walkers read waiting_on with acquire.
 */
void weft__check_sem_wait_begin(const weft__ck_lock_t *s)
{
    weft__ckthread_t *t = weft__ck_self();
    if (t == NULL || t->busy)
        return;
    t->busy = true;
    weft__cknode_t *n = weft__ck_node(t, s, NULL);
    if (n != NULL) {
        t->waiting_gen = n->gen;
        t->deadlock_seen = 0;
        /* Release: pairs with the acquire loads in the wait-for walk. */
        __atomic_store_n(&t->waiting_on, n, __ATOMIC_RELEASE);
    }
    t->busy = false;
}

void weft__check_sem_wait_end(const weft__ck_lock_t *s)
{
    (void)s;
    weft__ckthread_t *t = weft__ck_self();
    if (t != NULL) /* even when busy: a stale wait would mislead every walk */
        __atomic_store_n(&t->waiting_on, NULL, __ATOMIC_RELEASE);
}

/* Lists the ledger of n into the report. Caller holds weft__ck.lock. */
static unsigned weft__ck_ledger(weft__ckbuf_t *b, weft__cknode_t *n, const weft__ckthread_t *only)
{
    uint64_t now = weft__now_ns();
    unsigned count = 0;
    weft__ck_jprintf(b, ",\"holders\":[");
    for (weft__ckpermit_t *p = n->permits; p != NULL; p = p->next) {
        if (only != NULL && p->thread != only)
            continue;
        char site[320];
        weft__frame_t f;
        weft__symbolize(p->site, 1, &f);
        weft__frame_format(&f, site, sizeof site);
        double ms = (double)(now - p->since_ns) / 1e6;
        if (count < 16)
            weft__ck_printf(b, "  thread %u holds a permit since %.1f ms, acquired at %s%s\n",
                            p->tid, ms, site, p->thread->exited ? " (thread has exited)" : "");
        weft__ck_jprintf(b, "%s{\"thread\":%u,\"held_ms\":%.1f,\"site\":", count ? "," : "",
                         p->tid, ms);
        weft__ck_jstr(b, site);
        weft__ck_jprintf(b, "}");
        count++;
    }
    weft__ck_jprintf(b, "]");
    if (count > 16)
        weft__ck_printf(b, "  ... and %u more\n", count - 16);
    return count;
}

void weft__check_sem_waiting(const weft__ck_lock_t *s, uint64_t waited_ns, void *site)
{
    (void)site;
    weft__ckthread_t *t = weft__ck_self();
    if (t == NULL || t->busy)
        return;
    weft__cknode_t *n = weft__ck_node(t, s, NULL);
    weft__cknode_t *nodes[1] = {n};
    (void)nodes;
    if (n == NULL || !weft__ck_report_once(((uint64_t)(uintptr_t)n << 8) ^ n->gen ^ 0x5E))
        return;
    t->busy = true;
    weft__ckbuf_t b = {0};
    const char *title = "semaphore exhausted: a waiter is starved of permits";
    char l[160];
    weft__symbolize_begin();
    weft__ck_label(n, l, sizeof l);
    weft__ck_printf(&b, "\n==weft== %s\n", title);
    weft__ck_printf(&b, "semaphore: %s; thread %u has waited %.1f ms for a permit\n", l, t->tid,
                    (double)waited_ns / 1e6);
    weft__ck_jprintf(&b, "{\"kind\":\"sem-exhausted\",\"title\":");
    weft__ck_jstr(&b, title);
    weft__ck_jprintf(&b, ",\"lock\":");
    weft__ck_jstr(&b, l);
    weft__ck_jprintf(&b, ",\"thread\":%u,\"waited_ms\":%.1f", t->tid, (double)waited_ns / 1e6);
    weft__ck_printf(&b, "permits held now:\n");
    weft__rawlock_lock(&weft__ck.lock);
    if (weft__ck_ledger(&b, n, NULL) == 0)
        weft__ck_printf(&b, "  (none recorded: permits were never released back)\n");
    weft__rawlock_unlock(&weft__ck.lock);
    weft__symbolize_end();
    weft__ck_emit(&b, "sem-exhausted", title);
    t->busy = false;
}

/* One leak report per semaphore the exiting thread still holds permits of. */
void weft__ck_permits_at_exit(weft__ckthread_t *t)
{
    t->busy = true;
    for (size_t i = 0; i < WEFT__CK_BUCKETS; i++) {
        weft__rawlock_lock(&weft__ck.lock);
        weft__cknode_t *found = NULL;
        for (weft__cknode_t *n = weft__ck.buckets[i]; n != NULL && !found; n = n->hnext)
            if (n->alive && n->permits != NULL && n->sem_resource)
                for (weft__ckpermit_t *p = n->permits; p != NULL && !found; p = p->next)
                    found = p->thread == t ? n : NULL;
        weft__rawlock_unlock(&weft__ck.lock);
        if (found == NULL)
            continue;
        bool fresh = weft__ck_report_once(((uint64_t)(uintptr_t)found << 4) ^ found->gen ^
                                          ((uint64_t)t->tid << 32) ^ 0x1EA);
        weft__ckbuf_t b = {0};
        const char *title = "semaphore permit leak: thread exited holding permits";
        char l[160];
        weft__symbolize_begin();
        weft__ck_label(found, l, sizeof l);
        weft__ck_printf(&b, "\n==weft== %s\nsemaphore: %s; thread %u exited without releasing:\n",
                        title, l, t->tid);
        weft__ck_jprintf(&b, "{\"kind\":\"permit-leak\",\"title\":");
        weft__ck_jstr(&b, title);
        weft__ck_jprintf(&b, ",\"lock\":");
        weft__ck_jstr(&b, l);
        weft__ck_jprintf(&b, ",\"thread\":%u", t->tid);
        weft__rawlock_lock(&weft__ck.lock);
        (void)weft__ck_ledger(&b, found, t);
        weft__rawlock_unlock(&weft__ck.lock);
        weft__symbolize_end();
        if (fresh)
            weft__ck_emit(&b, "permit-leak", title);
        else {
            free(b.text);
            free(b.json);
        }
        i--; /* the same bucket may hold another semaphore */
        /* Forget this thread's entries there, so the loop ends. */
        weft__rawlock_lock(&weft__ck.lock);
        for (weft__ckpermit_t **pp = &found->permits; *pp != NULL;)
            if ((*pp)->thread == t) {
                weft__ckpermit_t *v = *pp;
                *pp = v->next;
                free(v);
            } else {
                pp = &(*pp)->next;
            }
        weft__rawlock_unlock(&weft__ck.lock);
    }
    t->busy = false;
}

void weft__check_retry_failed(const void *key, const char *what, uint32_t failures, void *site)
{
    weft__ckthread_t *t = weft__ck_self();
    if (t == NULL || t->busy)
        return;
    if (!weft__ck_report_once(((uint64_t)(uintptr_t)key * 31) ^ t->tid ^ 0x11E))
        return;
    t->busy = true;
    weft__ckbuf_t b = {0};
    const char *title = "possible livelock: a retry loop keeps failing without progress";
    char s[320];
    weft__symbolize_begin();
    weft__frame_t f;
    weft__symbolize(site, 1, &f);
    weft__frame_format(&f, s, sizeof s);
    weft__ck_printf(&b, "\n==weft== %s\nthread %u: %s failed %u times in a row at %s\n", title,
                    t->tid, what, failures, s);
    weft__ck_jprintf(&b, "{\"kind\":\"livelock\",\"title\":");
    weft__ck_jstr(&b, title);
    weft__ck_jprintf(&b, ",\"thread\":%u,\"what\":", t->tid);
    weft__ck_jstr(&b, what);
    weft__ck_jprintf(&b, ",\"failures\":%u,\"site\":", failures);
    weft__ck_jstr(&b, s);
    weft__symbolize_end();
    weft__ck_emit(&b, "livelock", title);
    t->busy = false;
}

void weft__ck_report_starvation(weft__ckthread_t *t, weft__cknode_t *n, uint64_t waited_ns,
                                uint64_t others)
{
    if (!weft__ck_report_once(((uint64_t)(uintptr_t)n << 4) ^ n->gen ^ ((uint64_t)t->tid << 40)))
        return;
    weft__ckbuf_t b = {0};
    const char *title = "starvation: a thread waits while others keep taking the lock";
    char l[160];
    weft__symbolize_begin();
    weft__ck_label(n, l, sizeof l);
    weft__ck_printf(&b, "\n==weft== %s\nlock: %s; thread %u has waited %.1f ms while it was "
                        "acquired %llu times by others\n",
                    title, l, t->tid, (double)waited_ns / 1e6, (unsigned long long)others);
    weft__ck_printf(&b, "  a fair lock (weft_fairlock_t) grants the lock in arrival order\n");
    weft__ck_jprintf(&b, "{\"kind\":\"starvation\",\"title\":");
    weft__ck_jstr(&b, title);
    weft__ck_jprintf(&b, ",\"lock\":");
    weft__ck_jstr(&b, l);
    weft__ck_jprintf(&b, ",\"thread\":%u,\"waited_ms\":%.1f,\"acquisitions_by_others\":%llu",
                     t->tid, (double)waited_ns / 1e6, (unsigned long long)others);
    void *bt[WEFT__BT_MAX];
    int nbt = weft__backtrace(bt, WEFT__BT_MAX, 3);
    weft__ck_printf(&b, "  the waiting thread is at:\n");
    weft__ck_jprintf(&b, ",\"stack\":");
    weft__ck_stack(&b, bt, nbt, "    ");
    weft__symbolize_end();
    weft__ck_emit(&b, "starvation", title);
}
