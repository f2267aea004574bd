/* A trylock retry loop that never succeeds while another thread holds the
 * lock for three seconds. */
// expect: livelock
#include <pthread.h>
#include <sched.h>
#include <unistd.h>
static pthread_mutex_t M = PTHREAD_MUTEX_INITIALIZER;
static pthread_barrier_t bar;
static void *holder(void *x) { pthread_mutex_lock(&M); pthread_barrier_wait(&bar); sleep(3); pthread_mutex_unlock(&M); return x; }
int main(void)
{
    pthread_barrier_init(&bar, NULL, 2);
    pthread_t t;
    pthread_create(&t, NULL, holder, NULL);
    pthread_barrier_wait(&bar);
    while (pthread_mutex_trylock(&M) != 0)
        sched_yield();
    pthread_mutex_unlock(&M);
    pthread_join(t, NULL);
    return 0;
}
