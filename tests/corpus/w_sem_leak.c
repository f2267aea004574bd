/* A weft semaphore capping work at 2: a worker forgets to release and
 * exits (a leak, reported at its exit); a later acquire waits and is told
 * who holds the permits and where they took them. */
// expect: permit-leak sem-exhausted
#include <pthread.h>
#include <stdlib.h>
#include "weft.h"
static weft_sem_t slots = WEFT_SEM_INIT(2, "db connections");
static void *good(void *x) { for (int i = 0; i < 100; i++) { weft_sem_acquire(&slots); weft_sem_release(&slots); } return x; }
static void *leaky(void *x) { weft_sem_acquire(&slots); return x; }
int main(void)
{
    setenv("WEFT_CHECK_SEM_WAIT_MS", "200", 1);
    pthread_t t;
    pthread_create(&t, NULL, good, NULL);
    pthread_join(t, NULL);
    for (int i = 0; i < 2; i++) {
        pthread_create(&t, NULL, leaky, NULL);
        pthread_join(t, NULL);
    }
    int r = weft_sem_timedacquire(&slots, 600000000); /* both permits leaked */
    return r == -ETIMEDOUT ? 0 : 1;
}
