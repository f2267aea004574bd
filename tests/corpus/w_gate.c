/* Opposite orders under a common gate lock: must stay silent. */
// expect: silent
#include <pthread.h>
#include "weft.h"
static weft_mutex_t G = WEFT_MUTEX_INIT("gate");
static weft_mutex_t A = WEFT_MUTEX_INIT("A");
static weft_mutex_t B = WEFT_MUTEX_INIT("B");
static void *ab(void *x) { weft_mutex_lock(&G); weft_mutex_lock(&A); weft_mutex_lock(&B); weft_mutex_unlock(&B); weft_mutex_unlock(&A); weft_mutex_unlock(&G); return x; }
static void *ba(void *x) { weft_mutex_lock(&G); weft_mutex_lock(&B); weft_mutex_lock(&A); weft_mutex_unlock(&A); weft_mutex_unlock(&B); weft_mutex_unlock(&G); return x; }
int main(void)
{
    for (int i = 0; i < 50; i++) {
        pthread_t t1, t2;
        pthread_create(&t1, NULL, ab, NULL);
        pthread_create(&t2, NULL, ba, NULL);
        pthread_join(t1, NULL);
        pthread_join(t2, NULL);
    }
    return 0;
}
