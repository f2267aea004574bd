/*
 * reports.c - the text and JSON of each kind of report. The shapes are
 * documented in docs/check.md; tools rely on the JSON field names.
 */
#include <stdio.h>
#include <string.h>

#include "check/check_internal.h"

/*
 * A lock's display name: its weft name; for pthread locks the symbol the
 * address belongs to (static locks), else "kind@address" and the site that
 * first used it.
 */
const char *weft__ck_label(const weft__cknode_t *n, char *buf, size_t len)
{
    if (n->name != NULL) {
        snprintf(buf, len, "%s", n->name);
        return buf;
    }
    weft__frame_t f;
    weft__symbolize(n->addr, 0, &f);
    if (f.function[0] && strncmp(f.function, "weft__", 6) != 0) {
        snprintf(buf, len, "%s", f.function);
        return buf;
    }
    static const char *const kinds[] = {
        [WEFT__LK_MUTEX] = "mutex", [WEFT__LK_RWLOCK] = "rwlock", [WEFT__LK_FAIRLOCK] = "fairlock",
        [WEFT__LK_SEM] = "sem",     [WEFT__LK_PMUTEX] = "mutex",  [WEFT__LK_PRWLOCK] = "rwlock",
        [WEFT__LK_PSEM] = "sem",
    };
    const char *k = n->kind >= 0 && n->kind <= WEFT__LK_PSEM ? kinds[n->kind] : "lock";
    if (n->first_site != NULL) {
        weft__symbolize(n->first_site, 1, &f);
        if (f.file[0]) {
            snprintf(buf, len, "%s@%p (first used at %s:%d)", k, n->addr, f.file, f.line);
            return buf;
        }
    }
    snprintf(buf, len, "%s@%p", k, n->addr);
    return buf;
}

static uint64_t weft__ck_key(const char *kind, weft__cknode_t *const *nodes, int n)
{
    uint64_t k = 1469598103934665603ull;
    for (const char *s = kind; *s; s++)
        k = (k ^ (unsigned char)*s) * 1099511628211ull;
    /* Order-independent over the set of nodes. */
    uint64_t sum = 0;
    for (int i = 0; i < n; i++)
        sum += ((uint64_t)(uintptr_t)nodes[i] + nodes[i]->gen) * 0x9E3779B97F4A7C15ull;
    return k ^ sum;
}

static void weft__ck_head(weft__ckbuf_t *b, const char *kind, const char *title)
{
    weft__ck_printf(b, "\n==weft== %s\n", title);
    weft__ck_jprintf(b, "{\"kind\":");
    weft__ck_jstr(b, kind);
    weft__ck_jprintf(b, ",\"title\":");
    weft__ck_jstr(b, title);
}

/* "A --> B --> A" in text, ["A","B","A"] in JSON. */
static void weft__ck_chain(weft__ckbuf_t *b, weft__cknode_t *const *nodes, int n)
{
    char l[160];
    weft__ck_printf(b, "chain: ");
    weft__ck_jprintf(b, ",\"chain\":[");
    for (int i = 0; i <= n; i++) {
        weft__ck_label(nodes[i % n], l, sizeof l);
        weft__ck_printf(b, "%s%s", i ? " --> " : "", l);
        weft__ck_jprintf(b, "%s", i ? "," : "");
        weft__ck_jstr(b, l);
    }
    weft__ck_printf(b, "\n");
    weft__ck_jprintf(b, "]");
}

/* Columns: one per edge; row i shows thread i taking its first lock, then
 * every thread asking for its second, each held by the next thread. */
static void weft__ck_interleaving(weft__ckbuf_t *b, weft__cknode_t *const *nodes, int n)
{
    char l[160];
    int cols = n > 4 ? 4 : n;
    weft__ck_printf(b, "\nan interleaving that hangs:\n\n");
    for (int c = 0; c < cols; c++)
        weft__ck_printf(b, "    %-26s", c == 0 ? "thread 1" : (c == 1 ? "thread 2" : (c == 2 ? "thread 3" : "thread 4")));
    weft__ck_printf(b, "\n");
    for (int step = 0; step < 2; step++)
        for (int c = 0; c < cols; c++) {
            weft__cknode_t *lk = nodes[(c + step) % n];
            weft__ck_label(lk, l, sizeof l);
            weft__ck_printf(b, "%*s    lock(%.18s)%s\n", 30 * c, "", l,
                            step ? "   <- waits" : "");
        }
    weft__ck_printf(b, "\n    *** DEADLOCK ***\n");
}

void weft__ck_report_inversion(weft__ckthread_t *t, weft__ckedge_t **cyc, int n,
                               weft__cknode_t **nodes)
{
    (void)t;
    if (!weft__ck_report_once(weft__ck_key("inversion", nodes, n)))
        return;
    weft__ckbuf_t b = {0};
    const char *title = "potential deadlock: lock order inversion";
    weft__symbolize_begin();
    weft__ck_head(&b, "lock-order-inversion", title);
    weft__ck_chain(&b, nodes, n);
    weft__ck_jprintf(&b, ",\"edges\":[");
    for (int i = 0; i < n; i++) {
        char a[160], c[160], site[320];
        weft__ck_label(nodes[i], a, sizeof a);
        weft__ck_label(nodes[(i + 1) % n], c, sizeof c);
        weft__frame_t f;
        weft__symbolize(cyc[i]->from_site, 1, &f);
        weft__frame_format(&f, site, sizeof site);
        weft__ck_printf(&b, "\n%s --> %s: thread %u acquired %s while holding %s\n", a, c,
                        cyc[i]->tid, c, a);
        weft__ck_printf(&b, "  %s was acquired at %s\n  %s was acquired at:\n", a, site, c);
        weft__ck_jprintf(&b, "%s{\"from\":", i ? "," : "");
        weft__ck_jstr(&b, a);
        weft__ck_jprintf(&b, ",\"to\":");
        weft__ck_jstr(&b, c);
        weft__ck_jprintf(&b, ",\"thread\":%u,\"from_site\":", cyc[i]->tid);
        weft__ck_jstr(&b, site);
        weft__ck_jprintf(&b, ",\"stack\":");
        weft__ck_stack(&b, cyc[i]->bt, cyc[i]->nbt, "    ");
        weft__ck_jprintf(&b, "}");
    }
    weft__ck_jprintf(&b, "]");
    weft__ck_interleaving(&b, nodes, n);
    weft__symbolize_end();
    weft__ck_emit(&b, "lock-order-inversion", title);
}

/* How a hop's holder keeps its waiter out, for the report's wording. */
enum { WEFT__HOP_OWNER, WEFT__HOP_SHARED, WEFT__HOP_PERMIT };

static int weft__ck_hop(weft__cknode_t *n, const weft__ckthread_t *o, void **site)
{
    *site = NULL;
    if (n->kind == WEFT__LK_SEM || n->kind == WEFT__LK_PSEM) {
        *site = weft__ck_permit_site(n, o);
        return WEFT__HOP_PERMIT;
    }
    int f = weft__ck_held_by(o, n, site);
    return f >= 0 && (f & WEFT__CK_READ) ? WEFT__HOP_SHARED : WEFT__HOP_OWNER;
}

static const char *weft__ck_deadlock_title(weft__ckthread_t *t, weft__cknode_t *n, int len,
                                           unsigned flags)
{
    if (len > 1)
        return "deadlock: threads wait for each other in a cycle";
    void *site;
    switch (weft__ck_hop(n, t, &site)) {
    case WEFT__HOP_PERMIT:
        return "deadlock: thread waits for a permit while it holds every permit itself";
    case WEFT__HOP_SHARED:
        return (flags & WEFT__CK_READ)
                   ? "deadlock: thread read-locks again a lock it holds shared while a writer waits"
                   : "deadlock: thread write-locks a lock it holds shared";
    default:
        return "deadlock: thread re-locks a lock it holds";
    }
}

/* For a semaphore hop: every holder (the walk found each of them blocked
 * in a wait that leads back), since one release would have sufficed. */
static void weft__ck_other_holders(weft__ckbuf_t *b, weft__cknode_t *n, const weft__ckthread_t *o)
{
    weft__ckthread_t *h[8];
    int k = weft__ck_permit_holders(n, h, 8);
    weft__ck_jprintf(b, ",\"permit_holders\":[");
    for (int i = 0; i < k; i++)
        weft__ck_jprintf(b, "%s%u", i ? "," : "", h[i]->tid);
    weft__ck_jprintf(b, "]");
    if (k < 2)
        return;
    weft__ck_printf(b, "    the other permits are held by threads blocked in the cycle too:");
    for (int i = 0; i < k; i++)
        if (h[i] != o)
            weft__ck_printf(b, " %u", h[i]->tid);
    weft__ck_printf(b, "\n");
}

/* One line per thread of the cycle: what it waits for, who holds it. */
static void weft__ck_deadlock_hop(weft__ckbuf_t *b, int i, weft__ckthread_t *waiter,
                                  weft__cknode_t *n, weft__ckthread_t *holder)
{
    static const char *const jhow[] = {"owner", "shared", "permit"};
    char l[160], site[320];
    void *osite;
    int hop = weft__ck_hop(n, holder, &osite);
    weft__frame_t f;
    weft__ck_label(n, l, sizeof l);
    weft__symbolize(osite, 1, &f);
    weft__frame_format(&f, site, sizeof site);
    if (hop == WEFT__HOP_PERMIT)
        weft__ck_printf(b,
                        "  thread %u waits for a permit of %s; thread %u holds a permit of it "
                        "(acquired at %s)\n",
                        waiter->tid, l, holder->tid, site);
    else
        weft__ck_printf(b, "  thread %u waits for %s, held%s by thread %u (acquired at %s)\n",
                        waiter->tid, l, hop == WEFT__HOP_SHARED ? " shared" : "", holder->tid,
                        site);
    weft__ck_jprintf(b, "%s{\"thread\":%u,\"waits_for\":", i ? "," : "", waiter->tid);
    weft__ck_jstr(b, l);
    weft__ck_jprintf(b, ",\"held_by\":%u,\"how\":\"%s\",\"held_since\":", holder->tid, jhow[hop]);
    weft__ck_jstr(b, site);
    if (hop == WEFT__HOP_PERMIT)
        weft__ck_other_holders(b, n, holder);
    weft__ck_jprintf(b, "}");
}

void weft__ck_report_waitfor(weft__ckthread_t *t, weft__cknode_t **cyc, weft__ckthread_t **who,
                             int len, unsigned flags)
{
    if (!weft__ck_report_once(weft__ck_key("deadlock", cyc, len)))
        return;
    weft__ckbuf_t b = {0};
    weft__symbolize_begin();
    const char *title = weft__ck_deadlock_title(t, cyc[0], len, flags);
    weft__ck_head(&b, "deadlock", title);
    weft__ck_chain(&b, cyc, len);
    weft__ck_jprintf(&b, ",\"threads\":[");
    /* Thread who[i-1] waits for cyc[i]; who[i] holds it. The waiter of
     * cyc[0] is t itself. */
    for (int i = 0; i < len; i++)
        weft__ck_deadlock_hop(&b, i, i == 0 ? t : who[i - 1], cyc[i], who[i]);
    weft__ck_jprintf(&b, "],\"stack\":");
    void *bt[WEFT__BT_MAX];
    int nbt = weft__backtrace(bt, WEFT__BT_MAX, 3);
    weft__ck_printf(&b, "  thread %u is blocked at:\n", t->tid);
    weft__ck_stack(&b, bt, nbt, "    ");
    weft__ck_printf(&b, "\n    *** DEADLOCK ***\n");
    weft__symbolize_end();
    weft__ck_emit(&b, "deadlock", title);
}

void weft__ck_report_deadlock(weft__ckthread_t *t, weft__cknode_t **cyc, weft__ckthread_t **who,
                              int len)
{
    weft__ck_report_waitfor(t, cyc, who, len, 0);
}

static void weft__ck_here(weft__ckbuf_t *b, const char *what)
{
    void *bt[WEFT__BT_MAX];
    int nbt = weft__backtrace(bt, WEFT__BT_MAX, 3);
    weft__ck_printf(b, "  %s at:\n", what);
    weft__ck_jprintf(b, ",\"stack\":");
    weft__ck_stack(b, bt, nbt, "    ");
}

/* An ownership report: the lock, its owner and where the owner took it,
 * then the offending thread and its stack. Called after report_once. */
static void weft__ck_ownership(weft__ckthread_t *t, weft__cknode_t *n, const char *kind,
                               const char *title, const char *what, const char *where)
{
    weft__ckbuf_t b = {0};
    char l[160], os[320];
    weft__symbolize_begin();
    weft__ck_head(&b, kind, title);
    weft__ck_label(n, l, sizeof l);
    weft__frame_t f;
    void *osite = NULL;
    weft__ckthread_t *o = weft__ck_owner(n, &osite);
    weft__symbolize(osite, 1, &f);
    weft__frame_format(&f, os, sizeof os);
    uint32_t otid = o != NULL ? o->tid : 0;
    weft__ck_printf(&b, "lock: %s, held by thread %u (acquired at %s)\n", l, otid, os);
    weft__ck_printf(&b, "thread %u %s\n", t->tid, what);
    weft__ck_jprintf(&b, ",\"lock\":");
    weft__ck_jstr(&b, l);
    weft__ck_jprintf(&b, ",\"owner\":%u,\"owner_site\":", otid);
    weft__ck_jstr(&b, os);
    weft__ck_jprintf(&b, ",\"thread\":%u", t->tid);
    weft__ck_here(&b, where);
    weft__symbolize_end();
    weft__ck_emit(&b, kind, title);
}

void weft__ck_report_bad_unlock(weft__ckthread_t *t, weft__cknode_t *n, void *site)
{
    (void)site;
    weft__cknode_t *nodes[1] = {n};
    if (weft__ck_report_once(weft__ck_key("bad-unlock", nodes, 1) ^ t->tid))
        weft__ck_ownership(t, n, "bad-unlock",
                           "ownership error: unlock by a thread that does not hold the lock",
                           "tried to unlock it", "the unlock");
}

void weft__ck_report_destroy_held(weft__ckthread_t *t, const weft__ck_lock_t *l)
{
    weft__cknode_t *n = weft__ck_node(t, l, NULL);
    if (n == NULL)
        return;
    weft__cknode_t *nodes[1] = {n};
    if (weft__ck_report_once(weft__ck_key("destroy-held", nodes, 1)))
        weft__ck_ownership(t, n, "destroy-held", "ownership error: lock destroyed while held",
                           "destroyed it", "the destroy");
}
