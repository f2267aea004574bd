/*
 * tsa_correct.c - correct uses of weft's locks that clang -Wthread-safety
 * must accept without a diagnostic: lock/unlock, trylock and timedlock
 * tested against 0 (WEFT_TRY_ACQUIRE(0, m) means "returns 0 on success"),
 * a WEFT_REQUIRES helper, a cond wait, and a WEFT_EXCLUDES function.
 */
#include "weft.h"

static weft_mutex_t lock = WEFT_MUTEX_INIT("tsa");
static weft_cond_t ready_cv = WEFT_COND_INIT("tsa");
static long counter WEFT_GUARDED_BY(lock);
static int ready WEFT_GUARDED_BY(lock);

static void bump_locked(void) WEFT_REQUIRES(lock)
{
    counter++;
}

void tsa_lock(void) WEFT_EXCLUDES(lock);
void tsa_lock(void)
{
    weft_mutex_lock(&lock);
    bump_locked();
    weft_mutex_unlock(&lock);
}

int tsa_trylock(void);
int tsa_trylock(void)
{
    if (weft_mutex_trylock(&lock) != 0)
        return -1;
    counter++;
    weft_mutex_unlock(&lock);
    return 0;
}

int tsa_timedlock(void);
int tsa_timedlock(void)
{
    if (weft_mutex_timedlock(&lock, 1000000) == 0) {
        counter++;
        weft_mutex_unlock(&lock);
        return 0;
    }
    return -1;
}

void tsa_wait_ready(void);
void tsa_wait_ready(void)
{
    weft_mutex_lock(&lock);
    while (!ready)
        weft_cond_wait(&ready_cv, &lock);
    weft_mutex_unlock(&lock);
}
