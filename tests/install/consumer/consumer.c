/*
 * consumer.c - a program built against an installed weft, as a user builds
 * one: it includes <weft.h> from the installed tree and links the installed
 * library (shared or static, chosen by how it is built).
 *
 * It checks that the headers and the library it loaded are the same version,
 * then passes one value from a second thread through a mutex and condition
 * variable. Prints "weft VERSION ok" and exits 0 on success.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <weft.h>

static weft_mutex_t lock = WEFT_MUTEX_INIT("consumer");
static weft_cond_t ready = WEFT_COND_INIT("consumer.ready");
static int value WEFT_GUARDED_BY(lock);

static void *producer(void *arg)
{
    (void)arg;
    weft_mutex_lock(&lock);
    value = 42;
    weft_cond_signal(&ready);
    weft_mutex_unlock(&lock);
    return NULL;
}

/* Waits (at most 10 s) for the producer's value. */
static int await_value(void)
{
    int rc = 0;
    weft_mutex_lock(&lock);
    while (value == 0 && rc == 0)
        rc = weft_cond_timedwait(&ready, &lock, 10 * (int64_t)1000000000);
    int v = value;
    weft_mutex_unlock(&lock);
    if (rc != 0)
        fprintf(stderr, "consumer: wait failed: %s\n", weft_strerror(rc));
    return v;
}

int main(void)
{
    if (strcmp(weft_version(), WEFT_VERSION_STRING) != 0) {
        fprintf(stderr, "consumer: headers are %s but the library is %s\n", WEFT_VERSION_STRING,
                weft_version());
        return 1;
    }
    pthread_t t;
    if (pthread_create(&t, NULL, producer, NULL) != 0)
        return 1;
    int v = await_value();
    pthread_join(t, NULL);
    if (v != 42)
        return 1;
    printf("weft %s ok\n", weft_version());
    return 0;
}
