/*
 * preload_behaviour.c - a pthread program whose every result is printed, so
 * a run under `weft check` can be compared byte for byte with a plain run:
 * the preload library must pass errors through, survive fork() and thread
 * exit, and leave the program's output alone.
 */
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static struct timespec in_ms(clockid_t clk, long ms)
{
    struct timespec ts;
    clock_gettime(clk, &ts);
    ts.tv_nsec += ms * 1000000;
    ts.tv_sec += ts.tv_nsec / 1000000000;
    ts.tv_nsec %= 1000000000;
    return ts;
}

static pthread_mutex_t held = PTHREAD_MUTEX_INITIALIZER;
static void *try_other(void *x)
{
    printf("trylock held by other: %s\n", strerrorname_np(pthread_mutex_trylock(&held)));
    struct timespec ts = in_ms(CLOCK_REALTIME, 30);
    printf("timedlock held by other: %s\n", strerrorname_np(pthread_mutex_timedlock(&held, &ts)));
    ts = in_ms(CLOCK_MONOTONIC, 30);
    printf("clocklock held by other: %s\n",
           strerrorname_np(pthread_mutex_clocklock(&held, CLOCK_MONOTONIC, &ts)));
    return x;
}

static void mutexes(void)
{
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ERRORCHECK);
    pthread_mutex_t ec;
    pthread_mutex_init(&ec, &a);
    printf("errorcheck lock: %d\n", pthread_mutex_lock(&ec));
    printf("errorcheck relock: %s\n", strerrorname_np(pthread_mutex_lock(&ec)));
    printf("errorcheck unlock: %d\n", pthread_mutex_unlock(&ec));
    printf("errorcheck unlock again: %s\n", strerrorname_np(pthread_mutex_unlock(&ec)));
    printf("destroy: %d\n", pthread_mutex_destroy(&ec));
    pthread_mutex_lock(&held);
    pthread_t t;
    pthread_create(&t, NULL, try_other, NULL);
    pthread_join(t, NULL);
    pthread_mutex_unlock(&held);
    struct timespec bad = {0, 2000000000};
    int r = pthread_mutex_timedlock(&held, &bad); /* glibc takes a free mutex anyway */
    printf("timedlock bad timespec: %s\n", r ? strerrorname_np(r) : "0");
    if (r == 0)
        pthread_mutex_unlock(&held);
}

static void semaphores(void)
{
    sem_t s;
    printf("sem_init: %d\n", sem_init(&s, 0, 1));
    printf("sem_trywait: %d\n", sem_trywait(&s));
    int r = sem_trywait(&s);
    printf("sem_trywait empty: %d %s\n", r, strerrorname_np(errno));
    struct timespec ts = in_ms(CLOCK_REALTIME, 30);
    r = sem_timedwait(&s, &ts);
    printf("sem_timedwait empty: %d %s\n", r, strerrorname_np(errno));
    struct timespec bad = {0, -1};
    r = sem_timedwait(&s, &bad);
    printf("sem_timedwait bad: %d %s\n", r, strerrorname_np(errno));
    printf("sem_post: %d\n", sem_post(&s));
    int v = -1;
    sem_getvalue(&s, &v);
    printf("value: %d\n", v);
    printf("sem_destroy: %d\n", sem_destroy(&s));
}

static void rwlocks_and_conds(void)
{
    pthread_rwlock_t rw = PTHREAD_RWLOCK_INITIALIZER;
    printf("wrlock: %d\n", pthread_rwlock_wrlock(&rw));
    printf("wrlock again: %s\n", strerrorname_np(pthread_rwlock_wrlock(&rw)));
    printf("tryrdlock while written: %s\n", strerrorname_np(pthread_rwlock_tryrdlock(&rw)));
    printf("unlock: %d\n", pthread_rwlock_unlock(&rw));
    pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t c = PTHREAD_COND_INITIALIZER;
    pthread_mutex_lock(&m);
    struct timespec ts = in_ms(CLOCK_REALTIME, 20);
    printf("cond timedwait: %s\n", strerrorname_np(pthread_cond_timedwait(&c, &m, &ts)));
    ts = in_ms(CLOCK_MONOTONIC, 20);
    printf("cond clockwait: %s\n",
           strerrorname_np(pthread_cond_clockwait(&c, &m, CLOCK_MONOTONIC, &ts)));
    pthread_mutex_unlock(&m);
}

/* Default mutexes are locked and unlocked inline by the preload library
 * (glibc's own steps for that type): glibc's view of them must stay right.
 * The lock is taken twice first so the second time comes from the cache. */
static pthread_mutex_t dflt = PTHREAD_MUTEX_INITIALIZER;
static int woken;
static void *waiter(void *x)
{
    pthread_mutex_lock(&dflt); /* blocks in the real function: lock word 2 */
    woken = 1;
    pthread_mutex_unlock(&dflt);
    return x;
}

static void *trylock_dflt(void *x)
{
    printf("default mutex trylock by other: %s\n", strerrorname_np(pthread_mutex_trylock(&dflt)));
    return x;
}

static void default_mutexes(void)
{
    for (int i = 0; i < 2; i++) {
        pthread_mutex_lock(&dflt);
        pthread_mutex_unlock(&dflt);
    }
    pthread_mutex_lock(&dflt);
    pthread_t t;
    pthread_create(&t, NULL, trylock_dflt, NULL);
    pthread_join(t, NULL);
    pthread_create(&t, NULL, waiter, NULL);
    struct timespec pause = {0, 50000000};
    nanosleep(&pause, NULL); /* let the waiter block */
    pthread_mutex_unlock(&dflt); /* must wake it */
    pthread_join(t, NULL);
    printf("waiter woken by unlock: %d\n", woken);
    pthread_cond_t c = PTHREAD_COND_INITIALIZER;
    pthread_mutex_lock(&dflt);
    struct timespec ts = in_ms(CLOCK_REALTIME, 10);
    printf("cond timedwait on default mutex: %s\n",
           strerrorname_np(pthread_cond_timedwait(&c, &dflt, &ts)));
    printf("relock after cond wait: %s\n", strerrorname_np(pthread_mutex_trylock(&dflt)));
    pthread_mutex_unlock(&dflt);
    /* glibc refuses to destroy a mutex whose user count is not 0: the
     * inline steps must have counted every lock and unlock. */
    printf("destroy when free: %d\n", pthread_mutex_destroy(&dflt));
}

/* The same memory as a default mutex (cached as one by the preload) and
 * then as a recursive one: after a proper destroy and init, and after a
 * bare assignment of the static initializer (no init, no destroy). Both
 * must behave as recursive mutexes. */
static pthread_mutex_t reused;
static void reused_memory(void)
{
    pthread_mutex_init(&reused, NULL);
    for (int i = 0; i < 3; i++) {
        pthread_mutex_lock(&reused);
        pthread_mutex_unlock(&reused);
    }
    pthread_mutex_destroy(&reused);
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&reused, &a);
    int r1 = pthread_mutex_lock(&reused), r2 = pthread_mutex_lock(&reused);
    int r3 = pthread_mutex_unlock(&reused), r4 = pthread_mutex_unlock(&reused);
    printf("recursive after destroy+init: %d %d %d %d, destroy %d\n", r1, r2, r3, r4,
           pthread_mutex_destroy(&reused));
    pthread_mutex_init(&reused, NULL);
    for (int i = 0; i < 3; i++) {
        pthread_mutex_lock(&reused);
        pthread_mutex_unlock(&reused);
    }
    pthread_mutex_t rec = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP;
    memcpy(&reused, &rec, sizeof rec); /* no destroy, no init */
    r1 = pthread_mutex_lock(&reused);
    r2 = pthread_mutex_lock(&reused);
    r3 = pthread_mutex_unlock(&reused);
    r4 = pthread_mutex_unlock(&reused);
    printf("recursive by assignment: %d %d %d %d, trylock %d\n", r1, r2, r3, r4,
           pthread_mutex_trylock(&reused));
    pthread_mutex_unlock(&reused);
}

static pthread_once_t once = PTHREAD_ONCE_INIT;
static int once_runs;
static void once_fn(void) { once_runs++; }
static void *exiting(void *x)
{
    pthread_mutex_lock(&held);
    pthread_mutex_unlock(&held);
    pthread_once(&once, once_fn);
    pthread_exit(x);
}

int main(void)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    mutexes();
    default_mutexes();
    reused_memory();
    semaphores();
    rwlocks_and_conds();
    pthread_t t;
    pthread_create(&t, NULL, exiting, NULL);
    pthread_join(t, NULL);
    pthread_once(&once, once_fn);
    printf("once ran %d time(s)\n", once_runs);
    pthread_mutex_lock(&held); /* held across fork: the child must cope */
    pid_t pid = fork();
    if (pid == 0) {
        pthread_mutex_unlock(&held);
        pthread_mutex_lock(&held);
        pthread_mutex_unlock(&held);
        printf("child: locks work after fork\n");
        _exit(7);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    pthread_mutex_unlock(&held);
    printf("parent: child exited %d\n", WEXITSTATUS(st));
    return 3;
}
