/*
 * hazard.c - hazard pointers: safe memory reclamation for node structures.
 *
 * DESIGN
 * Every thread that protects or retires owns one record: WEFT_HP_SLOTS
 * hazard slots, its list of retired nodes and (debug mode) a quarantine.
 * Records live on one global push-only list and are never freed: a thread
 * that exits clears its slots and marks its record inactive; the next new
 * thread adopts it, retired nodes included. So the scan walks a list that
 * only grows, without any lock.
 *
 *   rec->active == 0    free for adoption (its slots are all NULL)
 *   rec->active == 1    owned by one thread, which alone touches the
 *                       private fields; others only read the slots
 *
 * Protect (reader):  p = *src; slot = p; re-read *src until it equals p.
 * Retire (remover):  unlink the node (seq_cst CAS in the structure), then
 *                    scan every slot (seq_cst loads) before freeing.
 *
 *   [W] slot = p   (seq_cst)          [W] *src = next (seq_cst CAS)
 *   [R] *src       (seq_cst)          [R] every slot  (seq_cst)
 *
 * Store-buffering, all seq_cst: either the reader's re-read sees the node
 * unlinked (and it retries, never touching it), or the remover's scan sees
 * the hazard (and keeps the node). A reader that validated p may use it
 * until it clears or reuses the slot.
 *
 * A retired node is freed by the thread that retired it (or the one that
 * adopts its record), at a scan: every R retirements, R = max(64, 2 * H)
 * for H slots in all, which bounds unreclaimed nodes per thread by O(H).
 *
 * Debug mode adds a state word to each node (LIVE, RETIRED, POISON),
 * a FIFO quarantine that keeps reclaimed nodes allocated but poisoned for a
 * while, and the reports listed in weft/lockfree.h.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal/base.h"
#include "weft/lockfree.h"

#define WEFT__HP_LIVE 0x4c495645u    /* "LIVE" */
#define WEFT__HP_RETIRED 0x52455449u /* "RETI" */
#define WEFT__HP_POISON 0xdeadbeefu
#define WEFT__HP_SCAN_MIN 64u
#define WEFT__HP_QUARANTINE 256u
#define WEFT__HP_STACK_HAZARDS 128u

struct weft__hp_rec {
    void *slot[WEFT_HP_SLOTS]; /* atomic: written by the owner, read by scans */
    struct weft__hp_rec *next; /* immutable once the record is published */
    uint32_t active;           /* atomic: see the state table above */
    weft_hp_node_t *retired;   /* owner only: retired, not yet reclaimed */
    size_t nretired;           /* owner only */
    weft_hp_node_t *quar_head; /* owner only: debug quarantine, oldest first */
    weft_hp_node_t *quar_tail; /* owner only */
    size_t nquar;              /* owner only */
};

static struct weft__hp_rec *weft__hp_list; /* atomic: push-only */
static uint32_t weft__hp_nrecs;            /* atomic: records on the list */
static uint32_t weft__hp_dbg;              /* atomic: debug mode on */
static uint64_t weft__hp_nreports;         /* atomic: debug reports made */
static __thread struct weft__hp_rec *weft__hp_self;
static pthread_key_t weft__hp_key;
static pthread_once_t weft__hp_once = PTHREAD_ONCE_INIT;

/* Relaxed: the flag only selects extra checks; it is switched while no
 * nodes of interest exist (documented), so no ordering is needed. */
static inline bool weft__hp_debug(void)
{
    return weft__unlikely(__atomic_load_n(&weft__hp_dbg, __ATOMIC_RELAXED) != 0);
}

static WEFT__COLD void weft__hp_report(const char *what, const void *node)
{
    /* Relaxed: a statistic. */
    __atomic_fetch_add(&weft__hp_nreports, 1, __ATOMIC_RELAXED);
    fprintf(stderr, "weft: hazard pointers: %s (node %p, thread %u)\n", what, node, weft__tid());
}

/* ---- records ----------------------------------------------------------------- */

static void weft__hp_scan(struct weft__hp_rec *rec);

/* Thread exit: clear the slots and put the record up for adoption. */
static void weft__hp_thread_exit(void *arg)
{
    struct weft__hp_rec *rec = arg;
    for (unsigned i = 0; i < WEFT_HP_SLOTS; i++)
        /* Release: this thread's reads of protected nodes happen-before a
         * scan that sees the slot empty (its seq_cst load). */
        __atomic_store_n(&rec->slot[i], NULL, __ATOMIC_RELEASE);
    if (rec->nretired > 0)
        weft__hp_scan(rec);
    weft__hp_self = NULL;
    /* Release: hands the private fields (retired list, quarantine) to the
     * adopter; pairs with the acquire CAS in weft__hp_adopt(). */
    __atomic_store_n(&rec->active, 0, __ATOMIC_RELEASE);
}

static void weft__hp_key_create(void)
{
    if (pthread_key_create(&weft__hp_key, weft__hp_thread_exit) != 0)
        weft__fatal("hazard pointers: pthread_key_create failed");
}

/* An inactive record from the list, now owned by the caller, or NULL. */
static struct weft__hp_rec *weft__hp_adopt(void)
{
    /* Acquire: pairs with the release CAS in weft__hp_publish(), so the
     * record's `next` is visible. */
    struct weft__hp_rec *rec = __atomic_load_n(&weft__hp_list, __ATOMIC_ACQUIRE);
    for (; rec != NULL; rec = rec->next) {
        uint32_t idle = 0;
        if (__atomic_load_n(&rec->active, __ATOMIC_RELAXED) != 0)
            continue;
        /* Acquire: pairs with the release store in weft__hp_thread_exit(). */
        if (__atomic_compare_exchange_n(&rec->active, &idle, 1, false, __ATOMIC_ACQUIRE,
                                        __ATOMIC_RELAXED))
            return rec;
    }
    return NULL;
}

static void weft__hp_publish(struct weft__hp_rec *rec)
{
    struct weft__hp_rec *head = __atomic_load_n(&weft__hp_list, __ATOMIC_RELAXED);
    do {
        rec->next = head;
        /* Release: publishes the zeroed slots and `next` to scans and
         * adopters (their acquire loads of the list head). */
    } while (!__atomic_compare_exchange_n(&weft__hp_list, &head, rec, true, __ATOMIC_RELEASE,
                                          __ATOMIC_RELAXED));
    /* Relaxed: only sizes the scan's buffer, which re-counts as it walks. */
    __atomic_fetch_add(&weft__hp_nrecs, 1, __ATOMIC_RELAXED);
}

static WEFT__COLD struct weft__hp_rec *weft__hp_self_slow(void)
{
    pthread_once(&weft__hp_once, weft__hp_key_create);
    struct weft__hp_rec *rec = weft__hp_adopt();
    if (rec == NULL) {
        rec = calloc(1, sizeof *rec);
        if (rec == NULL)
            return NULL;
        rec->active = 1;
        weft__hp_publish(rec);
    }
    if (pthread_setspecific(weft__hp_key, rec) != 0) {
        __atomic_store_n(&rec->active, 0, __ATOMIC_RELEASE); /* as in thread exit */
        return NULL;
    }
    weft__hp_self = rec;
    return rec;
}

static inline struct weft__hp_rec *weft__hp_rec_self(void)
{
    struct weft__hp_rec *rec = weft__hp_self;
    return weft__likely(rec != NULL) ? rec : weft__hp_self_slow();
}

/* ---- protect ------------------------------------------------------------------- */

/* Debug: `p` was validated as reachable from *src after the slot was set. If
 * it is already retired and still reachable on a second look, it was
 * retired while reachable. (Reading RETIRED, then seeing *src moved on, is
 * the normal race with a remover and is not reported.) */
static WEFT__COLD void weft__hp_debug_protected(void *const *src, const weft_hp_node_t *n)
{
    uint32_t st = __atomic_load_n(&n->_state, __ATOMIC_SEQ_CST);
    if (st == WEFT__HP_POISON) {
        weft__hp_report("protected a node after it was reclaimed", n);
    } else if (st == WEFT__HP_RETIRED) {
        if (__atomic_load_n((void **)src, __ATOMIC_SEQ_CST) == n)
            weft__hp_report("node retired while still reachable", n);
    } else if (st != WEFT__HP_LIVE) {
        weft__hp_report("protected a node never passed to weft_hp_node_init()", n);
    }
}

static inline void *weft__hp_protect(struct weft__hp_rec *rec, unsigned slot, void *const *src)
{
    /* Acquire: pairs with the release (or seq_cst) store that published the
     * node in the structure, so its fields are visible once validated. */
    void *p = __atomic_load_n((void **)src, __ATOMIC_ACQUIRE);
    for (;;) {
        __atomic_store_n(&rec->slot[slot], p, __ATOMIC_SEQ_CST);
        /* Seq_cst: the store-buffering pair with the remover's unlink and
         * scan (see DESIGN). */
        void *q = __atomic_load_n((void **)src, __ATOMIC_SEQ_CST);
        if (q == p)
            break;
        p = q;
    }
    if (p != NULL && weft__hp_debug())
        weft__hp_debug_protected(src, p);
    return p;
}

void *weft_hp_protect(unsigned slot, void *const *src)
{
    if (slot >= WEFT_HP_SLOTS || src == NULL)
        return NULL;
    struct weft__hp_rec *rec = weft__hp_rec_self();
    if (rec == NULL)
        return NULL;
    return weft__hp_protect(rec, slot, src);
}

void weft_hp_clear(unsigned slot)
{
    struct weft__hp_rec *rec = weft__hp_self;
    if (slot >= WEFT_HP_SLOTS || rec == NULL)
        return;
    /* Release: reads of the node happen-before a scan that sees the slot
     * empty and frees it (the scan's seq_cst load). */
    __atomic_store_n(&rec->slot[slot], NULL, __ATOMIC_RELEASE);
}

/* ---- retire and scan ------------------------------------------------------------ */

static int weft__hp_cmp(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t) * (void *const *)a, y = (uintptr_t) * (void *const *)b;
    return (x > y) - (x < y);
}

/* Debug mode: poison and queue; free the oldest once the quarantine is full. */
static void weft__hp_quarantine(struct weft__hp_rec *rec, weft_hp_node_t *n)
{
    __atomic_store_n(&n->_state, WEFT__HP_POISON, __ATOMIC_SEQ_CST);
    n->_next = NULL;
    if (rec->quar_tail != NULL)
        rec->quar_tail->_next = n;
    else
        rec->quar_head = n;
    rec->quar_tail = n;
    if (++rec->nquar <= WEFT__HP_QUARANTINE)
        return;
    weft_hp_node_t *old = rec->quar_head;
    rec->quar_head = old->_next;
    rec->nquar--;
    old->_reclaim(old);
}

static void weft__hp_reclaim(struct weft__hp_rec *rec, weft_hp_node_t *n)
{
    /* Relaxed: the state was last written by this thread (retire). */
    if (weft__hp_debug() && __atomic_load_n(&n->_state, __ATOMIC_RELAXED) == WEFT__HP_RETIRED)
        weft__hp_quarantine(rec, n);
    else
        n->_reclaim(n);
}

/* Copies every non-NULL hazard into buf (at most cap); returns how many. */
static size_t weft__hp_collect(void **buf, size_t cap)
{
    size_t n = 0;
    /* Acquire: pairs with the release CAS in weft__hp_publish(). */
    struct weft__hp_rec *r = __atomic_load_n(&weft__hp_list, __ATOMIC_ACQUIRE);
    for (; r != NULL && n < cap; r = r->next) {
        for (unsigned i = 0; i < WEFT_HP_SLOTS && n < cap; i++) {
            /* Seq_cst: the store-buffering pair with weft__hp_protect(). */
            void *p = __atomic_load_n(&r->slot[i], __ATOMIC_SEQ_CST);
            if (p != NULL)
                buf[n++] = p;
        }
    }
    return n;
}

/* Frees every retired node of `rec` that no slot holds. Records published
 * after the list head is read need no look: their threads' validations
 * come after our unlinks, so they never hold our retired nodes. */
static void weft__hp_scan(struct weft__hp_rec *rec)
{
    void *small[WEFT__HP_STACK_HAZARDS];
    size_t cap = (size_t)__atomic_load_n(&weft__hp_nrecs, __ATOMIC_RELAXED) * WEFT_HP_SLOTS;
    void **buf = small;
    if (cap > WEFT__HP_STACK_HAZARDS && (buf = malloc(cap * sizeof *buf)) == NULL)
        return; /* out of memory: keep everything, try at the next scan */
    if (cap <= WEFT__HP_STACK_HAZARDS)
        cap = WEFT__HP_STACK_HAZARDS;
    size_t nh = weft__hp_collect(buf, cap);
    qsort(buf, nh, sizeof *buf, weft__hp_cmp);
    weft_hp_node_t *keep = NULL, *n = rec->retired;
    size_t nkeep = 0;
    while (n != NULL) {
        weft_hp_node_t *next = n->_next;
        if (bsearch(&n, buf, nh, sizeof *buf, weft__hp_cmp) != NULL) {
            n->_next = keep;
            keep = n;
            nkeep++;
        } else {
            weft__hp_reclaim(rec, n);
        }
        n = next;
    }
    rec->retired = keep;
    rec->nretired = nkeep;
    if (buf != small)
        free(buf);
}

static size_t weft__hp_threshold(void)
{
    size_t h = (size_t)__atomic_load_n(&weft__hp_nrecs, __ATOMIC_RELAXED) * WEFT_HP_SLOTS;
    return 2 * h > WEFT__HP_SCAN_MIN ? 2 * h : WEFT__HP_SCAN_MIN;
}

/* Debug checks at retire time; returns false when the node must not be
 * queued (it is already retired or reclaimed). */
static WEFT__COLD bool weft__hp_debug_retire(struct weft__hp_rec *rec, weft_hp_node_t *n)
{
    uint32_t st = __atomic_load_n(&n->_state, __ATOMIC_SEQ_CST);
    if (st == WEFT__HP_RETIRED || st == WEFT__HP_POISON) {
        weft__hp_report(st == WEFT__HP_RETIRED ? "node retired twice"
                                               : "node retired after it was reclaimed",
                        n);
        return false;
    }
    for (unsigned i = 0; i < WEFT_HP_SLOTS; i++)
        if (__atomic_load_n(&rec->slot[i], __ATOMIC_RELAXED) == n)
            weft__hp_report("retiring a node this thread still protects", n);
    /* Seq_cst: read by weft__hp_debug_protected() around its re-validation. */
    __atomic_store_n(&n->_state, WEFT__HP_RETIRED, __ATOMIC_SEQ_CST);
    return true;
}

int weft_hp_retire(weft_hp_node_t *node, void (*reclaim)(weft_hp_node_t *node))
{
    if (node == NULL || reclaim == NULL)
        return -EINVAL;
    struct weft__hp_rec *rec = weft__hp_rec_self();
    if (rec == NULL)
        return -ENOMEM;
    if (weft__hp_debug() && !weft__hp_debug_retire(rec, node))
        return 0;
    node->_reclaim = reclaim;
    node->_next = rec->retired;
    rec->retired = node;
    if (++rec->nretired >= weft__hp_threshold())
        weft__hp_scan(rec);
    return 0;
}

size_t weft_hp_drain(void)
{
    struct weft__hp_rec *rec = weft__hp_rec_self();
    if (rec == NULL)
        return 0;
    weft__hp_scan(rec);
    return rec->nretired;
}

/* ---- debug mode ------------------------------------------------------------------- */

void weft_hp_node_init(weft_hp_node_t *node)
{
    if (node == NULL)
        return;
    node->_next = NULL;
    node->_reclaim = NULL;
    node->_pad = 0;
    /* Relaxed: the node is not shared yet; the structure's publishing
     * store (release) carries this to other threads. */
    __atomic_store_n(&node->_state, WEFT__HP_LIVE, __ATOMIC_RELAXED);
}

bool weft_hp_check(const weft_hp_node_t *node)
{
    if (node == NULL || !weft__hp_debug())
        return true;
    if (__atomic_load_n(&node->_state, __ATOMIC_SEQ_CST) != WEFT__HP_POISON)
        return true;
    weft__hp_report("node touched after it was reclaimed", node);
    return false;
}

void weft_hp_debug_set(bool on)
{
    __atomic_store_n(&weft__hp_dbg, on ? 1u : 0u, __ATOMIC_RELAXED);
}

bool weft_hp_debug_enabled(void)
{
    return weft__hp_debug();
}

uint64_t weft_hp_debug_reports(void)
{
    return __atomic_load_n(&weft__hp_nreports, __ATOMIC_RELAXED);
}

/* WEFT_HP_DEBUG=1 in the environment turns debug mode on at load time. */
__attribute__((constructor)) static void weft__hp_env(void)
{
    const char *e = getenv("WEFT_HP_DEBUG");
    if (e != NULL && e[0] != '\0' && strcmp(e, "0") != 0)
        weft_hp_debug_set(true);
}
