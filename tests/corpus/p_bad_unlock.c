/* A thread unlocks a mutex another thread holds. */
// expect: bad-unlock
#include <pthread.h>
static pthread_mutex_t M = PTHREAD_MUTEX_INITIALIZER;
static void *other(void *x) { pthread_mutex_unlock(&M); return x; }
int main(void)
{
    pthread_mutex_lock(&M);
    pthread_t t;
    pthread_create(&t, NULL, other, NULL);
    pthread_join(t, NULL);
    return 0;
}
