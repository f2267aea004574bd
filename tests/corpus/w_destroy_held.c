/* Destroying a held weft mutex: refused with -EBUSY and reported. */
// expect: destroy-held
#include "weft.h"
int main(void)
{
    weft_mutex_t m;
    weft_mutex_init(&m, "cache");
    weft_mutex_lock(&m);
    int r = weft_mutex_destroy(&m);
    weft_mutex_unlock(&m);
    return r == -EBUSY && weft_mutex_destroy(&m) == 0 ? 0 : 1;
}
