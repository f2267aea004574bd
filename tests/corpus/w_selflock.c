/* A thread re-locks a weft mutex it holds: the timed call returns -EDEADLK
 * at once and the self-deadlock is reported. */
// expect: deadlock
#include "weft.h"
static weft_mutex_t M = WEFT_MUTEX_INIT("config");
int main(void)
{
    weft_mutex_lock(&M);
    int r = weft_mutex_timedlock(&M, WEFT_FOREVER);
    weft_mutex_unlock(&M);
    return r == -EDEADLK ? 0 : 1;
}
