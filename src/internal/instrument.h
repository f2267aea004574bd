/*
 * Run-time instrumentation switch and the annotation hooks the sync layer
 * calls around every lock operation.
 *
 * One global word, weft__instr, says whether anything watches the
 * primitives: ThreadSanitizer in the process, Valgrind's Helgrind, or weft's
 * own check layer. When it is 0 (the normal case) each hook site costs one
 * load and one predictable branch. The bits are set once at load time (TSan,
 * Helgrind, WEFT_CHECK in the environment) or by weft_check_enable(); they are
 * never cleared while threads run.
 */
#ifndef WEFT_INTERNAL_INSTRUMENT_H
#define WEFT_INTERNAL_INSTRUMENT_H

#include <stdint.h>

#include "internal/base.h"

enum {
    WEFT__INSTR_TSAN = 1u << 0,     /* ThreadSanitizer runtime present */
    WEFT__INSTR_HELGRIND = 1u << 1, /* running under Valgrind */
    WEFT__INSTR_CHECK = 1u << 2,    /* weft's check layer enabled */
};

extern uint32_t weft__instr;

/* Relaxed: a stale 0 only delays instrumentation of one operation; the bits
 * are set before the threads that matter start (load-time constructor). */
#define WEFT__INSTRUMENTED() weft__unlikely(__atomic_load_n(&weft__instr, __ATOMIC_RELAXED) != 0)

/* Flags for the hooks below. */
enum {
    WEFT__ANN_READ = 1u << 0,       /* shared (reader) acquisition */
    WEFT__ANN_TRY = 1u << 1,        /* a try or timed acquisition */
    WEFT__ANN_FAILED = 1u << 2,     /* ... that did not acquire */
    WEFT__ANN_RWLOCK = 1u << 3,     /* the object is a reader-writer lock */
};

/*
 * Lock-like objects (mutex, rwlock, fairlock). `word`/`word_size` is the
 * private state the primitive changes with atomics: hidden from Helgrind's
 * race detector, which does not understand atomics.
 */
void weft__ann_lock_create(void *lock, void *word, unsigned word_size, unsigned flags);
void weft__ann_lock_destroy(void *lock, unsigned flags);
void weft__ann_pre_lock(void *lock, void *word, unsigned word_size, unsigned flags);
void weft__ann_post_lock(void *lock, unsigned flags);
void weft__ann_pre_unlock(void *lock, unsigned flags);
void weft__ann_post_unlock(void *lock, unsigned flags);

/* Atomic words of objects that are not locks (condition variable): hidden
 * from Helgrind's race detector; no synchronisation is implied. */
void weft__ann_hide(void *word, unsigned word_size);

/* Happens-before edges for objects that are not locks (semaphore, once,
 * barrier): release() before publishing, acquire() after observing. */
void weft__ann_release(void *obj, void *word, unsigned word_size);
void weft__ann_acquire(void *obj, void *word, unsigned word_size);

#endif /* WEFT_INTERNAL_INSTRUMENT_H */
