/*
 * Unit tests for the Treiber stack and the hazard pointers under it, with
 * the reclamation debug checks on (weft_hp_debug_set(true) in setup).
 *
 * The ABA scenario replays, step by step on two threads, the interleaving
 * that corrupts a naive Treiber stack: A reads top = N1 and next = N2 and
 * stalls; B pops N1 and N2 and pushes a new item, which a recycling
 * allocator places at N1's address; A's compare-and-swap then succeeds and
 * installs N2, a node already popped. The same scenario runs against a
 * deliberately naive stack (it must be caught) and against weft's.
 */
#include <pthread.h>
#include <semaphore.h>
#include <stdlib.h>
#include <time.h>

#include "lockfree/internal.h"
#include "weft.h"
#include "wtest.h"

// ctest-timeout 30

static int debug_on(void **state)
{
    (void)state;
    weft_hp_debug_set(true);
    return 0;
}

static void test_stack_args(void **state)
{
    (void)state;
    void *item;
    weft_stack_t s = WEFT_STACK_INIT;
    assert_err(weft_stack_init(NULL), -EINVAL);
    assert_err(weft_stack_push(NULL, NULL), -EINVAL);
    assert_err(weft_stack_pop(NULL, &item), -EINVAL);
    assert_err(weft_stack_pop(&s, NULL), -EINVAL);
    assert_err(weft_stack_pop(&s, &item), -EAGAIN);
    weft_stack_destroy(NULL);
}

static void test_stack_lifo(void **state)
{
    (void)state;
    weft_stack_t s;
    void *item;
    assert_int_equal(weft_stack_init(&s), 0);
    for (uintptr_t i = 0; i < 100; i++)
        assert_int_equal(weft_stack_push(&s, (void *)i), 0);
    for (uintptr_t i = 100; i-- > 50;) {
        assert_int_equal(weft_stack_pop(&s, &item), 0);
        assert_ptr_equal(item, (void *)i);
    }
    weft_stack_destroy(&s); /* frees the 50 left; ASan checks */
    assert_int_equal(weft_hp_drain(), 0);
    assert_int_equal(weft_hp_debug_reports(), 0);
}

/* ---- hazard pointers ------------------------------------------------------ */

struct tnode {
    weft_hp_node_t hp;
    int value;
};

static int reclaimed;

static void tnode_free(weft_hp_node_t *n)
{
    reclaimed++;
    free(n);
}

static struct tnode *tnode_new(int v)
{
    struct tnode *n = malloc(sizeof *n);
    assert_non_null(n);
    weft_hp_node_init(&n->hp);
    n->value = v;
    return n;
}

static void test_hp_args(void **state)
{
    (void)state;
    void *p = NULL;
    assert_null(weft_hp_protect(WEFT_HP_SLOTS, (void *const *)&p));
    assert_null(weft_hp_protect(0, NULL));
    assert_err(weft_hp_retire(NULL, tnode_free), -EINVAL);
    struct tnode *n = tnode_new(1);
    assert_err(weft_hp_retire(&n->hp, NULL), -EINVAL);
    weft_hp_clear(WEFT_HP_SLOTS); /* ignored */
    free(n);
    assert_true(weft_hp_check(NULL));
}

static struct tnode *shared;
static sem_t sem_protected, sem_release;

static void sem_wait_5s(sem_t *s)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 5;
    assert_int_equal(sem_timedwait(s, &ts), 0);
}

static void *protector(void *arg)
{
    (void)arg;
    struct tnode *n = weft_hp_protect(1, (void *const *)&shared);
    assert_non_null(n);
    sem_post(&sem_protected);
    sem_wait_5s(&sem_release);
    assert_true(weft_hp_check(&n->hp));
    assert_int_equal(n->value, 7); /* still allocated: ASan would say otherwise */
    weft_hp_clear(1);
    return NULL;
}

/* A node another thread protects survives retire and drain; once the
 * hazard is cleared, the next drain reclaims it. Silent in debug mode. */
static void test_hp_protection_defers_reclaim(void **state)
{
    (void)state;
    pthread_t t;
    sem_init(&sem_protected, 0, 0);
    sem_init(&sem_release, 0, 0);
    shared = tnode_new(7);
    assert_int_equal(pthread_create(&t, NULL, protector, NULL), 0);
    sem_wait_5s(&sem_protected);
    struct tnode *n = shared;
    __atomic_store_n(&shared, NULL, __ATOMIC_SEQ_CST); /* unlink */
    reclaimed = 0;
    assert_int_equal(weft_hp_retire(&n->hp, tnode_free), 0);
    assert_int_equal(weft_hp_drain(), 1);
    assert_int_equal(reclaimed, 0);
    sem_post(&sem_release);
    pthread_join(t, NULL);
    assert_int_equal(weft_hp_drain(), 0);
    assert_int_equal(weft_hp_debug_reports(), 0);
}

static void test_hp_debug_retire_own_hazard(void **state)
{
    (void)state;
    shared = tnode_new(1);
    struct tnode *n = weft_hp_protect(0, (void *const *)&shared);
    shared = NULL;
    assert_int_equal(weft_hp_retire(&n->hp, tnode_free), 0); /* wrong: still protected */
    assert_int_equal(weft_hp_debug_reports(), 1);
    weft_hp_clear(0);
    assert_int_equal(weft_hp_drain(), 0);
}

static void test_hp_debug_double_retire(void **state)
{
    (void)state;
    struct tnode *n = tnode_new(1);
    assert_int_equal(weft_hp_retire(&n->hp, tnode_free), 0);
    assert_int_equal(weft_hp_retire(&n->hp, tnode_free), 0); /* wrong */
    assert_int_equal(weft_hp_debug_reports(), 1);
    assert_int_equal(weft_hp_drain(), 0);
}

static void test_hp_debug_retired_while_reachable(void **state)
{
    (void)state;
    struct tnode *n = tnode_new(1);
    shared = n;
    assert_int_equal(weft_hp_retire(&n->hp, tnode_free), 0); /* wrong: still linked */
    assert_int_equal(weft_hp_debug_reports(), 0);
    assert_ptr_equal(weft_hp_protect(0, (void *const *)&shared), n);
    assert_int_equal(weft_hp_debug_reports(), 1);
    weft_hp_clear(0);
    shared = NULL;
    assert_int_equal(weft_hp_drain(), 0);
}

static void test_hp_debug_touch_after_reclaim(void **state)
{
    (void)state;
    struct tnode *n = tnode_new(1);
    assert_int_equal(weft_hp_retire(&n->hp, tnode_free), 0);
    assert_int_equal(weft_hp_drain(), 0); /* reclaimed into the quarantine */
    assert_int_equal(weft_hp_debug_reports(), 0);
    assert_false(weft_hp_check(&n->hp)); /* wrong: touching it */
    assert_int_equal(weft_hp_debug_reports(), 1);
    shared = n; /* wrong: republishing it */
    (void)weft_hp_protect(0, (void *const *)&shared);
    assert_int_equal(weft_hp_debug_reports(), 2);
    weft_hp_clear(0);
    shared = NULL;
}

/* Correct concurrent use of the stack makes no report. */
enum { CU_THREADS = 4, CU_ITERS = 20000 };
static weft_stack_t cu_stack = WEFT_STACK_INIT;

static void *cu_worker(void *arg)
{
    (void)arg;
    void *item;
    for (uintptr_t i = 0; i < CU_ITERS; i++) {
        assert_int_equal(weft_stack_push(&cu_stack, (void *)i), 0);
        int r = weft_stack_pop(&cu_stack, &item);
        assert_true(r == 0 || r == -EAGAIN);
    }
    return NULL;
}

static void test_hp_debug_silent_on_correct_use(void **state)
{
    (void)state;
    pthread_t t[CU_THREADS];
    for (int i = 0; i < CU_THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, cu_worker, NULL), 0);
    for (int i = 0; i < CU_THREADS; i++)
        pthread_join(t[i], NULL);
    void *item;
    while (weft_stack_pop(&cu_stack, &item) == 0)
        ;
    assert_int_equal(weft_hp_drain(), 0);
    assert_int_equal(weft_hp_debug_reports(), 0);
    weft_stack_destroy(&cu_stack);
}

/* ---- the ABA scenario ------------------------------------------------------- */

struct aba_ops {
    void (*push)(uintptr_t item);
    int (*pop)(uintptr_t *item);
    void (*begin)(void);            /* A: read top and next, keep them */
    int (*commit)(uintptr_t *item); /* A: CAS top -> next; 0 or -EAGAIN */
    size_t (*quiesce)(void);        /* B: reclaim what may be reclaimed */
};

/* weft's stack, driven through its two pop steps. */
static weft_stack_t w_stack = WEFT_STACK_INIT;
static weft__stack_step_t w_step;

static void w_push(uintptr_t item)
{
    assert_int_equal(weft_stack_push(&w_stack, (void *)item), 0);
}

static int w_pop(uintptr_t *item)
{
    void *p;
    int r = weft_stack_pop(&w_stack, &p);
    *item = (uintptr_t)p;
    return r;
}

static void w_begin(void)
{
    assert_int_equal(weft__stack_pop_begin(&w_stack, &w_step), 0);
}

static int w_commit(uintptr_t *item)
{
    void *p;
    int r = weft__stack_pop_commit(&w_stack, &w_step, &p);
    *item = (uintptr_t)p;
    return r;
}

static const struct aba_ops weft_ops = {w_push, w_pop, w_begin, w_commit, weft_hp_drain};

/* A naive Treiber stack whose nodes come from a FIFO recycling pool, as a
 * simple allocator might hand them out; single-threaded pool is enough
 * here because the scenario runs one step at a time. */
struct nnode {
    struct nnode *next;
    uintptr_t item;
};
static struct nnode *n_top;
static struct nnode *n_pool[8];
static size_t n_pool_head, n_pool_len;
static struct nnode *n_seen_top, *n_seen_next;
static struct nnode *n_all[8];
static size_t n_nall;

static struct nnode *n_alloc(void)
{
    if (n_pool_len > 0) {
        n_pool_len--;
        return n_pool[n_pool_head++ % 8];
    }
    struct nnode *n = malloc(sizeof *n);
    assert_non_null(n);
    n_all[n_nall++] = n;
    return n;
}

static void n_free(struct nnode *n)
{
    n_pool[(n_pool_head + n_pool_len++) % 8] = n;
}

static void n_push(uintptr_t item)
{
    struct nnode *n = n_alloc();
    n->item = item;
    n->next = __atomic_load_n(&n_top, __ATOMIC_ACQUIRE);
    while (!__atomic_compare_exchange_n(&n_top, &n->next, n, false, __ATOMIC_SEQ_CST,
                                        __ATOMIC_ACQUIRE))
        ;
}

static void n_begin(void)
{
    n_seen_top = __atomic_load_n(&n_top, __ATOMIC_ACQUIRE);
    n_seen_next = n_seen_top->next;
}

static int n_commit(uintptr_t *item)
{
    struct nnode *t = n_seen_top;
    if (!__atomic_compare_exchange_n(&n_top, &t, n_seen_next, false, __ATOMIC_SEQ_CST,
                                     __ATOMIC_ACQUIRE))
        return -EAGAIN;
    *item = n_seen_top->item;
    n_free(n_seen_top);
    return 0;
}

/* B's pops: the same two steps, on B's own copies of top and next. */
static int n_pop(uintptr_t *item)
{
    for (;;) {
        struct nnode *t = __atomic_load_n(&n_top, __ATOMIC_ACQUIRE);
        if (t == NULL)
            return -EAGAIN;
        if (__atomic_compare_exchange_n(&n_top, &t, t->next, false, __ATOMIC_SEQ_CST,
                                        __ATOMIC_ACQUIRE)) {
            *item = t->item;
            n_free(t);
            return 0;
        }
    }
}

static size_t n_quiesce(void)
{
    return 0;
}

static const struct aba_ops naive_ops = {n_push, n_pop, n_begin, n_commit, n_quiesce};

static const struct aba_ops *aba_cur;
static sem_t aba_go_b, aba_go_a;
static uintptr_t aba_a_item;

static void *aba_thread_a(void *arg)
{
    (void)arg;
    aba_cur->begin();
    sem_post(&aba_go_b);
    sem_wait_5s(&aba_go_a);
    while (aba_cur->commit(&aba_a_item) != 0)
        aba_cur->begin(); /* the CAS noticed the change: start over */
    return NULL;
}

/* Runs the interleaving; returns how many items were lost or duplicated. */
static int aba_scenario(const struct aba_ops *ops)
{
    int count[5] = {0}; /* items 1, 2, 3, 4 (the new one) */
    uintptr_t item;
    pthread_t a;
    aba_cur = ops;
    sem_init(&aba_go_a, 0, 0);
    sem_init(&aba_go_b, 0, 0);
    ops->push(3);
    ops->push(2);
    ops->push(1); /* N1(1) -> N2(2) -> N3(3) */
    assert_int_equal(pthread_create(&a, NULL, aba_thread_a, NULL), 0);
    sem_wait_5s(&aba_go_b); /* A holds top = N1, next = N2 */
    for (int i = 0; i < 2; i++) {
        assert_int_equal(ops->pop(&item), 0);
        count[item]++;
    }
    (void)ops->quiesce();
    ops->push(4); /* a naive pool hands out N1's memory again */
    sem_post(&aba_go_a);
    pthread_join(a, NULL);
    count[aba_a_item]++;
    for (int i = 0; i < 8 && ops->pop(&item) == 0; i++)
        count[item < 5 ? item : 0]++;
    int bad = 0;
    for (int i = 1; i <= 4; i++)
        bad += abs(count[i] - 1);
    return bad + count[0];
}

static void test_aba_catches_naive_stack(void **state)
{
    (void)state;
    assert_true(aba_scenario(&naive_ops) > 0);
    for (size_t i = 0; i < n_nall; i++)
        free(n_all[i]);
}

static void test_aba_weft_stack_survives(void **state)
{
    (void)state;
    assert_int_equal(aba_scenario(&weft_ops), 0);
    assert_int_equal(weft_hp_drain(), 0);
    assert_int_equal(weft_hp_debug_reports(), 0);
    weft_stack_destroy(&w_stack);
}

/* The same without the debug quarantine, so that freed nodes really go back
 * to malloc and their addresses can come back at once: the case in which a
 * reclamation bug (freeing N1 while A protects it) turns into ABA. */
static void test_aba_weft_stack_survives_address_reuse(void **state)
{
    (void)state;
    weft_hp_debug_set(false);
    assert_int_equal(aba_scenario(&weft_ops), 0);
    assert_int_equal(weft_hp_drain(), 0);
    weft_stack_destroy(&w_stack);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup(test_stack_args, debug_on),
    cmocka_unit_test_setup(test_stack_lifo, debug_on),
    cmocka_unit_test_setup(test_hp_args, debug_on),
    cmocka_unit_test_setup(test_hp_protection_defers_reclaim, debug_on),
    cmocka_unit_test_setup(test_hp_debug_retire_own_hazard, debug_on),
    cmocka_unit_test_setup(test_hp_debug_double_retire, debug_on),
    cmocka_unit_test_setup(test_hp_debug_retired_while_reachable, debug_on),
    cmocka_unit_test_setup(test_hp_debug_touch_after_reclaim, debug_on),
    cmocka_unit_test_setup(test_hp_debug_silent_on_correct_use, debug_on),
    cmocka_unit_test_setup(test_aba_catches_naive_stack, debug_on),
    cmocka_unit_test_setup(test_aba_weft_stack_survives, debug_on),
    cmocka_unit_test(test_aba_weft_stack_survives_address_reuse),
};

WTEST_MAIN(tests)
