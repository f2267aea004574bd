/*
 * bench_loop.c - the weft event loop against libuv, side by side in one run:
 *
 *   (a) timer churn: start, then stop, N timers with distinct timeouts
 *   (b) cross-thread wake-ups: two loops in two threads ping-pong an async
 *       handle; wake-ups per second (each trip is two wake-ups)
 *   (c) TCP echo on loopback: a server loop in one thread, clients in
 *       another; 64-byte round trips per second with 1 and with C
 *       connections (each connection keeps one message in flight)
 *
 * Each figure is the median of --reps runs.
 *
 *   bench_loop [--timers N] [--trips N] [--conns C] [--reps N] [--quick]
 *              [--only timers|wakeups|echo]
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef WEFT_HAVE_LIBUV
#include <uv.h>
#endif

#include "weft.h"

#define MAX_REPS 15
#define MSG 64

typedef struct cfg {
    long timers;
    long trips;
    int conns;
    int reps;
    const char *only; /* "timers", "wakeups" or "echo"; NULL: all */
} cfg_t;

static cfg_t cfg = {1000000, 200000, 1000, 3, NULL};

static double now_s(void)
{
    return (double)weft_now_ns() / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median_of(double (*fn)(long), long arg)
{
    double v[MAX_REPS];
    for (int i = 0; i < cfg.reps; i++)
        v[i] = fn(arg);
    qsort(v, (size_t)cfg.reps, sizeof *v, cmp_double);
    return cfg.reps % 2 ? v[cfg.reps / 2] : (v[cfg.reps / 2 - 1] + v[cfg.reps / 2]) / 2;
}

static void check(int rc, const char *what)
{
    if (rc < 0) {
        fprintf(stderr, "bench_loop: %s failed: %d\n", what, rc);
        exit(1);
    }
}

/* ---- (a) timer churn ------------------------------------------------------------ */

static void never(weft_timer_t *t)
{
    (void)t;
}

/* Nanoseconds per start+stop pair. */
static double weft_timer_churn(long n)
{
    weft_loop_t *l;
    check(weft_loop_create(&l, NULL), "weft_loop_create");
    weft_timer_t *t = malloc((size_t)n * sizeof *t);
    for (long i = 0; i < n; i++)
        weft_timer_init(l, &t[i]);
    double t0 = now_s();
    for (long i = 0; i < n; i++)
        weft_timer_start(&t[i], never, (uint64_t)(1000 + (i * 7919) % 100000) * 1000000, 0);
    for (long i = 0; i < n; i++)
        weft_timer_stop(&t[i]);
    double dt = now_s() - t0;
    weft_loop_destroy(l);
    free(t);
    return dt * 1e9 / (double)n;
}

#ifdef WEFT_HAVE_LIBUV
static void uv_never(uv_timer_t *t)
{
    (void)t;
}

static double uv_timer_churn(long n)
{
    uv_loop_t l;
    uv_loop_init(&l);
    uv_timer_t *t = malloc((size_t)n * sizeof *t);
    for (long i = 0; i < n; i++)
        uv_timer_init(&l, &t[i]);
    double t0 = now_s();
    for (long i = 0; i < n; i++)
        uv_timer_start(&t[i], uv_never, (uint64_t)(1000 + (i * 7919) % 100000), 0);
    for (long i = 0; i < n; i++)
        uv_timer_stop(&t[i]);
    double dt = now_s() - t0;
    for (long i = 0; i < n; i++)
        uv_close((uv_handle_t *)&t[i], NULL);
    uv_run(&l, UV_RUN_DEFAULT);
    uv_loop_close(&l);
    free(t);
    return dt * 1e9 / (double)n;
}
#endif

/* ---- (b) cross-thread wake-ups ------------------------------------------------------ */

static struct {
    weft_loop_t *la, *lb;
    weft_async_t aa, ab;
    long count, goal;
    int quit; /* atomic */
} wp;

static void wp_a(weft_async_t *a)
{
    if (++wp.count == wp.goal) {
        __atomic_store_n(&wp.quit, 1, __ATOMIC_RELEASE);
        weft_async_stop(a);
    }
    weft_async_send(&wp.ab);
}

static void wp_b(weft_async_t *b)
{
    if (__atomic_load_n(&wp.quit, __ATOMIC_ACQUIRE)) {
        weft_async_stop(b);
        return;
    }
    weft_async_send(&wp.aa);
}

static void *wp_thread(void *arg)
{
    (void)arg;
    weft_loop_run(wp.lb, WEFT_RUN_DEFAULT);
    return NULL;
}

/* Wake-ups per second. */
static double weft_wakeups(long trips)
{
    memset(&wp, 0, sizeof wp);
    wp.goal = trips;
    check(weft_loop_create(&wp.la, NULL), "create");
    check(weft_loop_create(&wp.lb, NULL), "create");
    weft_async_init(wp.la, &wp.aa);
    weft_async_init(wp.lb, &wp.ab);
    weft_async_start(&wp.aa, wp_a);
    weft_async_start(&wp.ab, wp_b);
    pthread_t th;
    double t0 = now_s();
    pthread_create(&th, NULL, wp_thread, NULL);
    weft_async_send(&wp.ab);
    weft_loop_run(wp.la, WEFT_RUN_DEFAULT);
    pthread_join(th, NULL);
    double dt = now_s() - t0;
    weft_loop_destroy(wp.la);
    weft_loop_destroy(wp.lb);
    return 2.0 * (double)trips / dt;
}

#ifdef WEFT_HAVE_LIBUV
static struct {
    uv_loop_t la, lb;
    uv_async_t aa, ab;
    long count, goal;
    int quit;
} up;

static void up_a(uv_async_t *a)
{
    if (++up.count == up.goal) {
        __atomic_store_n(&up.quit, 1, __ATOMIC_RELEASE);
        uv_close((uv_handle_t *)a, NULL);
    }
    uv_async_send(&up.ab);
}

static void up_b(uv_async_t *b)
{
    if (__atomic_load_n(&up.quit, __ATOMIC_ACQUIRE)) {
        uv_close((uv_handle_t *)b, NULL);
        return;
    }
    uv_async_send(&up.aa);
}

static void *up_thread(void *arg)
{
    (void)arg;
    uv_run(&up.lb, UV_RUN_DEFAULT);
    return NULL;
}

static double uv_wakeups(long trips)
{
    memset(&up, 0, sizeof up);
    up.goal = trips;
    uv_loop_init(&up.la);
    uv_loop_init(&up.lb);
    uv_async_init(&up.la, &up.aa, up_a);
    uv_async_init(&up.lb, &up.ab, up_b);
    pthread_t th;
    double t0 = now_s();
    pthread_create(&th, NULL, up_thread, NULL);
    uv_async_send(&up.ab);
    uv_run(&up.la, UV_RUN_DEFAULT);
    pthread_join(th, NULL);
    double dt = now_s() - t0;
    uv_loop_close(&up.la);
    uv_loop_close(&up.lb);
    return 2.0 * (double)trips / dt;
}
#endif

/* ---- (c) TCP echo: weft ------------------------------------------------------------- */

typedef struct wconn {
    weft_tcp_t tcp;
    size_t got;
    long left;
} wconn_t;

static struct {
    weft_loop_t *sl, *cl;
    weft_tcp_t server;
    wconn_t *sc, *cc;
    int nsc, open, conns;
    uint16_t port;
    long trips_left;
} we;

static char msg[MSG];

static void we_sread(weft_tcp_t *t, const char *buf, ssize_t n)
{
    if (n <= 0) {
        weft_tcp_close(t);
        if (--we.open == 0)
            weft_tcp_close(&we.server);
        return;
    }
    weft_tcp_write(t, buf, (size_t)n);
}

static void we_accept(weft_tcp_t *s, int status)
{
    (void)status;
    while (we.nsc < we.conns) {
        wconn_t *c = &we.sc[we.nsc];
        weft_tcp_init(s->loop, &c->tcp);
        if (weft_tcp_accept(s, &c->tcp) != 0)
            return;
        we.nsc++;
        we.open++;
        weft_tcp_read_start(&c->tcp, we_sread);
    }
}

static void *we_server(void *arg)
{
    (void)arg;
    weft_loop_run(we.sl, WEFT_RUN_DEFAULT);
    return NULL;
}

static void we_cread(weft_tcp_t *t, const char *buf, ssize_t n)
{
    (void)buf;
    wconn_t *c = t->data;
    if (n <= 0) {
        weft_tcp_close(t);
        return;
    }
    c->got += (size_t)n;
    while (c->got >= MSG) {
        c->got -= MSG;
        if (--c->left > 0)
            weft_tcp_write(t, msg, MSG);
        else
            weft_tcp_close(t);
    }
}

static void we_connected(weft_tcp_t *t, int status)
{
    check(status, "connect");
    weft_tcp_read_start(t, we_cread);
    weft_tcp_write(t, msg, MSG);
}

/* Round trips per second with `conns` connections. */
static double weft_echo(long conns)
{
    memset(&we, 0, sizeof we);
    we.conns = (int)conns;
    we.sc = calloc((size_t)conns, sizeof *we.sc);
    we.cc = calloc((size_t)conns, sizeof *we.cc);
    check(weft_loop_create(&we.sl, NULL), "create");
    check(weft_loop_create(&we.cl, NULL), "create");
    weft_tcp_init(we.sl, &we.server);
    check(weft_tcp_listen(&we.server, "127.0.0.1", 0, 4096, we_accept), "listen");
    weft_tcp_port(&we.server, &we.port);
    pthread_t th;
    pthread_create(&th, NULL, we_server, NULL);
    long per = cfg.trips / conns > 0 ? cfg.trips / conns : 1;
    double t0 = now_s();
    for (long i = 0; i < conns; i++) {
        we.cc[i].left = per;
        weft_tcp_init(we.cl, &we.cc[i].tcp);
        we.cc[i].tcp.data = &we.cc[i];
        check(weft_tcp_connect(&we.cc[i].tcp, "127.0.0.1", we.port, we_connected), "connect");
    }
    weft_loop_run(we.cl, WEFT_RUN_DEFAULT);
    double dt = now_s() - t0;
    pthread_join(th, NULL);
    weft_loop_destroy(we.sl);
    weft_loop_destroy(we.cl);
    free(we.sc);
    free(we.cc);
    return (double)(per * conns) / dt;
}

/* ---- (c) TCP echo: libuv -------------------------------------------------------------- */

#ifdef WEFT_HAVE_LIBUV
typedef struct uconn {
    uv_tcp_t tcp;
    size_t got;
    long left;
} uconn_t;

static struct {
    uv_loop_t sl, cl;
    uv_tcp_t server;
    uconn_t *sc, *cc;
    int nsc, open, conns;
    int port;
} ue;

static char ubuf[64 * 1024];
static uv_buf_t umsg;

static void ue_alloc(uv_handle_t *h, size_t size, uv_buf_t *buf)
{
    (void)h, (void)size;
    *buf = uv_buf_init(ubuf, sizeof ubuf);
}

/* Echo writes copy into a request with its own buffer. */
typedef struct uwrite {
    uv_write_t req;
    char data[];
} uwrite_t;

static void ue_written(uv_write_t *req, int status)
{
    (void)status;
    free(req);
}

static void ue_server_closed(uv_handle_t *h)
{
    (void)h;
    if (--ue.open == 0)
        uv_close((uv_handle_t *)&ue.server, NULL);
}

static void ue_sread(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    if (n < 0) {
        uv_close((uv_handle_t *)s, ue_server_closed);
        return;
    }
    if (n == 0)
        return;
    uwrite_t *w = malloc(sizeof *w + (size_t)n);
    memcpy(w->data, buf->base, (size_t)n);
    uv_buf_t b = uv_buf_init(w->data, (unsigned)n);
    uv_write(&w->req, s, &b, 1, ue_written);
}

static void ue_accept(uv_stream_t *s, int status)
{
    (void)status;
    uconn_t *c = &ue.sc[ue.nsc];
    uv_tcp_init(&ue.sl, &c->tcp);
    if (uv_accept(s, (uv_stream_t *)&c->tcp) != 0) {
        uv_close((uv_handle_t *)&c->tcp, NULL);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    ue.nsc++;
    ue.open++;
    uv_read_start((uv_stream_t *)&c->tcp, ue_alloc, ue_sread);
}

static void *ue_server(void *arg)
{
    (void)arg;
    uv_run(&ue.sl, UV_RUN_DEFAULT);
    return NULL;
}

static void ue_send(uconn_t *c)
{
    uv_write_t *w = malloc(sizeof *w);
    uv_write(w, (uv_stream_t *)&c->tcp, &umsg, 1, ue_written);
}

static void ue_cread(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    (void)buf;
    uconn_t *c = s->data;
    if (n < 0) {
        uv_close((uv_handle_t *)s, NULL);
        return;
    }
    c->got += (size_t)n;
    while (c->got >= MSG) {
        c->got -= MSG;
        if (--c->left > 0)
            ue_send(c);
        else
            uv_close((uv_handle_t *)s, NULL);
    }
}

static void ue_connected(uv_connect_t *req, int status)
{
    check(status, "uv connect");
    uconn_t *c = req->data;
    free(req);
    uv_tcp_nodelay(&c->tcp, 1);
    uv_read_start((uv_stream_t *)&c->tcp, ue_alloc, ue_cread);
    ue_send(c);
}

static double uv_echo(long conns)
{
    memset(&ue, 0, sizeof ue);
    ue.conns = (int)conns;
    ue.sc = calloc((size_t)conns, sizeof *ue.sc);
    ue.cc = calloc((size_t)conns, sizeof *ue.cc);
    umsg = uv_buf_init(msg, MSG);
    uv_loop_init(&ue.sl);
    uv_loop_init(&ue.cl);
    uv_tcp_init(&ue.sl, &ue.server);
    struct sockaddr_in sa;
    uv_ip4_addr("127.0.0.1", 0, &sa);
    uv_tcp_bind(&ue.server, (struct sockaddr *)&sa, 0);
    check(uv_listen((uv_stream_t *)&ue.server, 4096, ue_accept), "uv_listen");
    int len = sizeof sa;
    uv_tcp_getsockname(&ue.server, (struct sockaddr *)&sa, &len);
    pthread_t th;
    pthread_create(&th, NULL, ue_server, NULL);
    long per = cfg.trips / conns > 0 ? cfg.trips / conns : 1;
    double t0 = now_s();
    for (long i = 0; i < conns; i++) {
        ue.cc[i].left = per;
        uv_tcp_init(&ue.cl, &ue.cc[i].tcp);
        ue.cc[i].tcp.data = &ue.cc[i];
        uv_connect_t *req = malloc(sizeof *req);
        req->data = &ue.cc[i];
        check(uv_tcp_connect(req, &ue.cc[i].tcp, (struct sockaddr *)&sa, ue_connected),
              "uv_tcp_connect");
    }
    uv_run(&ue.cl, UV_RUN_DEFAULT);
    double dt = now_s() - t0;
    pthread_join(th, NULL);
    uv_loop_close(&ue.sl);
    uv_loop_close(&ue.cl);
    free(ue.sc);
    free(ue.cc);
    return (double)(per * conns) / dt;
}
#endif

/* ---- main ------------------------------------------------------------------------------- */

static void parse(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : "0";
        if (strcmp(a, "--quick") == 0) {
            cfg = (cfg_t){100000, 20000, 200, 1, cfg.only};
            continue;
        }
        if (strcmp(a, "--timers") == 0)
            cfg.timers = atol(v);
        else if (strcmp(a, "--trips") == 0)
            cfg.trips = atol(v);
        else if (strcmp(a, "--conns") == 0)
            cfg.conns = atoi(v);
        else if (strcmp(a, "--reps") == 0)
            cfg.reps = atoi(v);
        else if (strcmp(a, "--only") == 0)
            cfg.only = v;
        else {
            fprintf(stderr, "usage: bench_loop [--timers N] [--trips N] [--conns C] "
                            "[--reps N] [--quick] [--only timers|wakeups|echo]\n");
            exit(2);
        }
        i++;
    }
    if (cfg.reps < 1 || cfg.reps > MAX_REPS || cfg.timers < 1 || cfg.trips < 1 || cfg.conns < 1) {
        fprintf(stderr, "bench_loop: bad argument\n");
        exit(2);
    }
}

static void row(const char *name, double w, double u, const char *unit)
{
#ifdef WEFT_HAVE_LIBUV
    printf("%-40s %12.1f %12.1f  %s\n", name, w, u, unit);
#else
    (void)u;
    printf("%-40s %12.1f %12s  %s\n", name, w, "-", unit);
#endif
}

static bool want(const char *what)
{
    return cfg.only == NULL || strcmp(cfg.only, what) == 0;
}

int main(int argc, char **argv)
{
    parse(argc, argv);
    double u[4] = {0, 0, 0, 0};
    char name[64];
    printf("timers %ld, trips %ld, connections %d, median of %d\n", cfg.timers, cfg.trips,
           cfg.conns, cfg.reps);
    printf("%-40s %12s %12s\n", "", "weft", "libuv");
#ifdef WEFT_HAVE_LIBUV
    u[0] = want("timers") ? median_of(uv_timer_churn, cfg.timers) : 0;
    u[1] = want("wakeups") ? median_of(uv_wakeups, cfg.trips) : 0;
    u[2] = want("echo") ? median_of(uv_echo, 1) : 0;
    u[3] = want("echo") ? median_of(uv_echo, cfg.conns) : 0;
#endif
    if (want("timers"))
        row("timer churn, start+stop (ns)", median_of(weft_timer_churn, cfg.timers), u[0],
            "lower is better");
    if (want("wakeups"))
        row("cross-thread wake-ups (per s)", median_of(weft_wakeups, cfg.trips), u[1],
            "higher is better");
    if (want("echo")) {
        row("TCP echo, 1 connection (trips/s)", median_of(weft_echo, 1), u[2], "higher is better");
        snprintf(name, sizeof name, "TCP echo, %d connections (trips/s)", cfg.conns);
        row(name, median_of(weft_echo, cfg.conns), u[3], "higher is better");
    }
    return 0;
}
