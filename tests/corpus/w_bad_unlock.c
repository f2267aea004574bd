/* A thread unlocks a weft mutex another thread holds: refused with -EPERM
 * (in every build) and reported with both sites. */
// expect: bad-unlock
#include <pthread.h>
#include "weft.h"
static weft_mutex_t M = WEFT_MUTEX_INIT("session");
static int r;
static void *other(void *x) { r = weft_mutex_unlock(&M); return x; }
int main(void)
{
    weft_mutex_lock(&M);
    pthread_t t;
    pthread_create(&t, NULL, other, NULL);
    pthread_join(t, NULL);
    weft_mutex_unlock(&M);
    return r == -EPERM ? 0 : 1;
}
