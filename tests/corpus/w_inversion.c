/* weft mutexes taken in opposite orders by two threads, one after the
 * other: reported as a potential deadlock although nothing hung. */
// expect: lock-order-inversion
#include <pthread.h>
#include "weft.h"
static weft_mutex_t A = WEFT_MUTEX_INIT("accounts");
static weft_mutex_t B = WEFT_MUTEX_INIT("audit log");
static void *ab(void *x) { weft_mutex_lock(&A); weft_mutex_lock(&B); weft_mutex_unlock(&B); weft_mutex_unlock(&A); return x; }
int main(void)
{
    pthread_t t;
    pthread_create(&t, NULL, ab, NULL);
    pthread_join(t, NULL);
    weft_mutex_lock(&B);
    weft_mutex_lock(&A);
    weft_mutex_unlock(&A);
    weft_mutex_unlock(&B);
    return weft_check_report_count() == 1 ? 0 : 1;
}
