/* weft semaphores used for signalling between threads (released by one,
 * acquired by another): not a leak. Must stay silent. */
// expect: silent
#include <pthread.h>
#include "weft.h"
static weft_sem_t ready = WEFT_SEM_INIT(0, "ready");
static weft_sem_t done = WEFT_SEM_INIT(0, "done");
static void *worker(void *x) { weft_sem_acquire(&ready); weft_sem_release(&done); return x; }
int main(void)
{
    for (int i = 0; i < 20; i++) {
        pthread_t t;
        pthread_create(&t, NULL, worker, NULL);
        weft_sem_release(&ready);
        weft_sem_acquire(&done);
        pthread_join(t, NULL);
    }
    return 0;
}
