/* Bank transfers between accounts of one kind with weft_mutex_lock_all
 * (one global order by address): must stay silent, balances conserved. */
// expect: silent
#include <pthread.h>
#include <stdlib.h>
#include "weft.h"
#define N 8
static struct account { weft_mutex_t mu; long balance; } acct[N];
static void *worker(void *x)
{
    unsigned seed = (unsigned)(long)x;
    for (int i = 0; i < 5000; i++) {
        int a = rand_r(&seed) % N, b = rand_r(&seed) % N;
        weft_mutex_t *pair[2] = {&acct[a].mu, &acct[b].mu};
        weft_mutex_lock_all(pair, 2);
        acct[a].balance--;
        acct[b].balance++;
        weft_mutex_unlock_all(pair, 2);
    }
    return NULL;
}
int main(void)
{
    for (int i = 0; i < N; i++) {
        weft_mutex_init(&acct[i].mu, "account");
        acct[i].balance = 100;
    }
    pthread_t t[3];
    for (long i = 0; i < 3; i++)
        pthread_create(&t[i], NULL, worker, (void *)(i + 1));
    for (int i = 0; i < 3; i++)
        pthread_join(t[i], NULL);
    long sum = 0;
    for (int i = 0; i < N; i++)
        sum += acct[i].balance;
    return sum == 100 * N ? 0 : 1;
}
