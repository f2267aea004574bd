/* The bank-transfer idiom: locks of one kind, always taken lower address
 * first, whatever the direction of the transfer. Must stay silent. */
// expect: silent
#include <pthread.h>
#include <stdlib.h>
#define N 8
static struct account { pthread_mutex_t mu; long balance; } acct[N];
static void transfer(struct account *from, struct account *to, long amount)
{
    struct account *lo = from < to ? from : to, *hi = from < to ? to : from;
    pthread_mutex_lock(&lo->mu);
    pthread_mutex_lock(&hi->mu);
    from->balance -= amount;
    to->balance += amount;
    pthread_mutex_unlock(&hi->mu);
    pthread_mutex_unlock(&lo->mu);
}
static void *worker(void *x)
{
    unsigned seed = (unsigned)(long)x;
    for (int i = 0; i < 5000; i++) {
        int a = rand_r(&seed) % N, b = rand_r(&seed) % N;
        if (a != b)
            transfer(&acct[a], &acct[b], 1);
    }
    return NULL;
}
int main(void)
{
    for (int i = 0; i < N; i++) {
        pthread_mutex_init(&acct[i].mu, NULL);
        acct[i].balance = 100;
    }
    pthread_t t[3];
    for (long i = 0; i < 3; i++)
        pthread_create(&t[i], NULL, worker, (void *)(i + 1));
    long sum = 0;
    for (int i = 0; i < 3; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < N; i++)
        sum += acct[i].balance;
    return sum == 100 * N ? 0 : 1;
}
