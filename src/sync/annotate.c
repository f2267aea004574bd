/*
 * annotate.c - tells ThreadSanitizer and Helgrind what weft's primitives do.
 *
 * Both tools know pthread but not futexes, so without these calls they would
 * see weft's locks as unsynchronised atomics and miss (or invent) races.
 * Every function here is reached only behind WEFT__INSTRUMENTED(), so the
 * cost when neither tool is present is one branch at the call site.
 *
 * TSan: the mutex annotation API of sanitizer/tsan_interface.h, declared
 * here (clang 14's header does not build as C11 with gcc) and referenced
 * weakly so an uninstrumented libweft works inside an instrumented program.
 * Helgrind: client requests from valgrind/helgrind.h; they are no-ops
 * outside Valgrind.
 */
#include <stddef.h>

#include <valgrind/helgrind.h>

#include "internal/instrument.h"

/* ---- ThreadSanitizer interface (compiler-rt tsan_interface.h) ---------- */

#define WEFT__TSAN_NOT_STATIC (1u << 8)
#define WEFT__TSAN_READ_LOCK (1u << 3)
#define WEFT__TSAN_TRY_LOCK (1u << 4)
#define WEFT__TSAN_TRY_LOCK_FAILED (1u << 5)

#define WEFT__WEAK __attribute__((weak))
WEFT__WEAK void __tsan_mutex_create(void *addr, unsigned flags);
WEFT__WEAK void __tsan_mutex_destroy(void *addr, unsigned flags);
WEFT__WEAK void __tsan_mutex_pre_lock(void *addr, unsigned flags);
WEFT__WEAK void __tsan_mutex_post_lock(void *addr, unsigned flags, int recursion);
WEFT__WEAK int __tsan_mutex_pre_unlock(void *addr, unsigned flags);
WEFT__WEAK void __tsan_mutex_post_unlock(void *addr, unsigned flags);
WEFT__WEAK void __tsan_acquire(void *addr);
WEFT__WEAK void __tsan_release(void *addr);

static unsigned weft__tsan_flags(unsigned f)
{
    unsigned t = 0;
    if (f & WEFT__ANN_READ)
        t |= WEFT__TSAN_READ_LOCK;
    if (f & WEFT__ANN_TRY)
        t |= WEFT__TSAN_TRY_LOCK;
    if (f & WEFT__ANN_FAILED)
        t |= WEFT__TSAN_TRY_LOCK_FAILED;
    return t;
}

static int weft__tsan(void)
{
    return (__atomic_load_n(&weft__instr, __ATOMIC_RELAXED) & WEFT__INSTR_TSAN) != 0;
}

static int weft__hg(void)
{
    return (__atomic_load_n(&weft__instr, __ATOMIC_RELAXED) & WEFT__INSTR_HELGRIND) != 0;
}

/* Helgrind checks every memory access; the lock words are changed with
 * atomics on purpose, so they are taken out of its race detection. */
static void weft__hg_hide(void *word, unsigned size)
{
    if (word != NULL && size != 0)
        VALGRIND_HG_DISABLE_CHECKING(word, size);
}

void weft__ann_lock_create(void *lock, void *word, unsigned word_size, unsigned flags)
{
    if (weft__tsan())
        __tsan_mutex_create(lock, WEFT__TSAN_NOT_STATIC);
    if (weft__hg()) {
        weft__hg_hide(word, word_size);
        if (flags & WEFT__ANN_RWLOCK)
            ANNOTATE_RWLOCK_CREATE(lock);
        else
            VALGRIND_HG_MUTEX_INIT_POST(lock, 0);
    }
}

void weft__ann_lock_destroy(void *lock, unsigned flags)
{
    if (weft__tsan())
        __tsan_mutex_destroy(lock, 0);
    if (weft__hg()) {
        if (flags & WEFT__ANN_RWLOCK)
            ANNOTATE_RWLOCK_DESTROY(lock);
        else
            VALGRIND_HG_MUTEX_DESTROY_PRE(lock);
    }
}

void weft__ann_pre_lock(void *lock, void *word, unsigned word_size, unsigned flags)
{
    if (weft__tsan())
        __tsan_mutex_pre_lock(lock, weft__tsan_flags(flags));
    if (weft__hg()) {
        /* Statically initialised locks never passed through create. */
        weft__hg_hide(word, word_size);
        if (!(flags & WEFT__ANN_RWLOCK))
            VALGRIND_HG_MUTEX_LOCK_PRE(lock, (flags & WEFT__ANN_TRY) ? 1 : 0);
    }
}

void weft__ann_post_lock(void *lock, unsigned flags)
{
    if (weft__tsan())
        __tsan_mutex_post_lock(lock, weft__tsan_flags(flags), 0);
    if (weft__hg() && !(flags & WEFT__ANN_FAILED)) {
        if (flags & WEFT__ANN_RWLOCK)
            ANNOTATE_RWLOCK_ACQUIRED(lock, (flags & WEFT__ANN_READ) ? 0 : 1);
        else
            VALGRIND_HG_MUTEX_LOCK_POST(lock);
    }
}

void weft__ann_pre_unlock(void *lock, unsigned flags)
{
    if (weft__tsan())
        (void)__tsan_mutex_pre_unlock(lock, weft__tsan_flags(flags & WEFT__ANN_READ));
    if (weft__hg()) {
        if (flags & WEFT__ANN_RWLOCK)
            ANNOTATE_RWLOCK_RELEASED(lock, (flags & WEFT__ANN_READ) ? 0 : 1);
        else
            VALGRIND_HG_MUTEX_UNLOCK_PRE(lock);
    }
}

void weft__ann_post_unlock(void *lock, unsigned flags)
{
    if (weft__tsan())
        __tsan_mutex_post_unlock(lock, weft__tsan_flags(flags & WEFT__ANN_READ));
    if (weft__hg() && !(flags & WEFT__ANN_RWLOCK))
        VALGRIND_HG_MUTEX_UNLOCK_POST(lock);
}

void weft__ann_hide(void *word, unsigned word_size)
{
    if (weft__hg())
        weft__hg_hide(word, word_size);
}

void weft__ann_release(void *obj, void *word, unsigned word_size)
{
    if (weft__tsan())
        __tsan_release(obj);
    if (weft__hg()) {
        weft__hg_hide(word, word_size);
        ANNOTATE_HAPPENS_BEFORE(obj);
    }
}

void weft__ann_acquire(void *obj, void *word, unsigned word_size)
{
    if (weft__tsan())
        __tsan_acquire(obj);
    if (weft__hg()) {
        weft__hg_hide(word, word_size);
        ANNOTATE_HAPPENS_AFTER(obj);
    }
}
