/* Re-locking a default (non-recursive) mutex the thread holds hangs forever. */
// expect: deadlock
#include <pthread.h>
static pthread_mutex_t M = PTHREAD_MUTEX_INITIALIZER;
int main(void)
{
    pthread_mutex_lock(&M);
    pthread_mutex_lock(&M);
    return 0;
}
