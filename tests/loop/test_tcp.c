/* Tests of the loop's TCP streams on loopback: a 1,000-connection echo on
 * one loop thread with every byte checked, and write back-pressure. */
// ctest-timeout 30
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "weft.h"
#include "wtest.h"

#define MS 1000000ull

/* The byte at offset i of connection id's message. */
static char pattern(int id, size_t i)
{
    return (char)((unsigned)id * 131u + (unsigned)i * 7u + (unsigned)(i >> 8));
}

/* ---- echo server ------------------------------------------------------------------ */

typedef struct sconn {
    weft_tcp_t tcp;
} sconn_t;

static int server_open;

static void server_read(weft_tcp_t *t, const char *buf, ssize_t n);

static void server_drain(weft_tcp_t *t)
{
    weft_tcp_read_start(t, server_read);
}

static void server_read(weft_tcp_t *t, const char *buf, ssize_t n)
{
    if (n <= 0) {
        weft_tcp_close(t);
        free(t->data);
        server_open--;
        return;
    }
    assert_int_equal(weft_tcp_write(t, buf, (size_t)n), 0);
    /* Back-pressure: stop reading until the queue is drained. */
    if (weft_tcp_queued(t) >= 64 * 1024)
        weft_tcp_read_stop(t);
}

static void server_accept(weft_tcp_t *server, int status)
{
    assert_int_equal(status, 0);
    for (;;) {
        sconn_t *c = malloc(sizeof *c);
        weft_tcp_init(server->loop, &c->tcp);
        c->tcp.data = c;
        int err = weft_tcp_accept(server, &c->tcp);
        if (err == -EAGAIN) {
            free(c);
            return;
        }
        assert_int_equal(err, 0);
        server_open++;
        weft_tcp_on_drain(&c->tcp, server_drain);
        assert_int_equal(weft_tcp_read_start(&c->tcp, server_read), 0);
    }
}

/* ---- clients ------------------------------------------------------------------------ */

typedef struct cconn {
    weft_tcp_t tcp;
    int id;
    size_t len, got;
    char *msg;
} cconn_t;

static int clients_done;
static weft_tcp_t server;

static void client_read(weft_tcp_t *t, const char *buf, ssize_t n)
{
    cconn_t *c = t->data;
    assert_true(n > 0);
    for (ssize_t i = 0; i < n; i++)
        if (buf[i] != pattern(c->id, c->got + (size_t)i))
            fail_msg("connection %d: byte %zu differs", c->id, c->got + (size_t)i);
    c->got += (size_t)n;
    assert_true(c->got <= c->len);
    if (c->got == c->len) {
        weft_tcp_close(t);
        if (++clients_done == 1000)
            weft_tcp_close(&server);
    }
}

static void client_connected(weft_tcp_t *t, int status)
{
    cconn_t *c = t->data;
    assert_int_equal(status, 0);
    assert_int_equal(weft_tcp_write(t, c->msg, c->len), 0);
    assert_int_equal(weft_tcp_read_start(t, client_read), 0);
}

static void guard_fired(weft_timer_t *t)
{
    (void)t;
    fail_msg("echo not finished in time: %d clients done", clients_done);
}

static void test_echo_1000_connections(void **state)
{
    (void)state;
    enum { N = 1000 };
    weft_loop_t *l;
    assert_int_equal(weft_loop_create(&l, NULL), 0);
    weft_tcp_init(l, &server);
    assert_int_equal(weft_tcp_listen(&server, "127.0.0.1", 0, 4096, server_accept), 0);
    uint16_t port;
    assert_int_equal(weft_tcp_port(&server, &port), 0);
    cconn_t *c = calloc(N, sizeof *c);
    size_t total = 0;
    for (int i = 0; i < N; i++) {
        c[i].id = i;
        c[i].len = 1000 + (size_t)(i * 37) % 30000;
        c[i].msg = malloc(c[i].len);
        for (size_t k = 0; k < c[i].len; k++)
            c[i].msg[k] = pattern(i, k);
        total += c[i].len;
        weft_tcp_init(l, &c[i].tcp);
        c[i].tcp.data = &c[i];
        assert_int_equal(weft_tcp_connect(&c[i].tcp, "127.0.0.1", port, client_connected), 0);
    }
    weft_timer_t g;
    weft_timer_init(l, &g);
    weft_timer_start(&g, guard_fired, 20000 * MS, 0);
    while (clients_done < N || server_open > 0)
        weft_loop_run(l, WEFT_RUN_ONCE);
    weft_timer_stop(&g);
    size_t got = 0;
    for (int i = 0; i < N; i++) {
        got += c[i].got;
        free(c[i].msg);
    }
    assert_int_equal(got, total);
    assert_int_equal(weft_loop_run(l, WEFT_RUN_DEFAULT), 0);
    assert_int_equal(weft_loop_destroy(l), 0);
    free(c);
}

/* ---- back-pressure ----------------------------------------------------------------- */

enum { BP_TOTAL = 4 << 20, BP_CHUNK = 32 * 1024 };
static size_t bp_sent, bp_recv;
static int bp_refused;
static weft_tcp_t bp_server, bp_client, bp_peer;
static char bp_chunk[BP_CHUNK];

static void bp_pump(weft_tcp_t *t)
{
    while (bp_sent < BP_TOTAL) {
        for (size_t i = 0; i < BP_CHUNK; i++)
            bp_chunk[i] = pattern(7, bp_sent + i);
        int err = weft_tcp_write(t, bp_chunk, BP_CHUNK);
        if (err == -EAGAIN) {
            bp_refused++;
            assert_true(weft_tcp_queued(t) >= 64 * 1024);
            return; /* the drain callback resumes */
        }
        assert_int_equal(err, 0);
        bp_sent += BP_CHUNK;
    }
    if (weft_tcp_queued(t) == 0)
        weft_tcp_close(t); /* else bp_drain closes once the queue is sent */
}

static void bp_read(weft_tcp_t *t, const char *buf, ssize_t n)
{
    if (n == 0) {
        weft_tcp_close(t);
        return;
    }
    assert_true(n > 0);
    for (ssize_t i = 0; i < n; i++)
        assert_true(buf[i] == pattern(7, bp_recv + (size_t)i));
    bp_recv += (size_t)n;
}

static void bp_accept(weft_tcp_t *s, int status)
{
    assert_int_equal(status, 0);
    weft_tcp_init(s->loop, &bp_peer);
    assert_int_equal(weft_tcp_accept(s, &bp_peer), 0);
    weft_tcp_read_start(&bp_peer, bp_read);
    weft_tcp_close(s);
}

static void bp_drain(weft_tcp_t *t)
{
    if (bp_sent == BP_TOTAL)
        weft_tcp_close(t);
    else
        bp_pump(t);
}

static void bp_connected(weft_tcp_t *t, int status)
{
    assert_int_equal(status, 0);
    weft_tcp_on_drain(t, bp_drain);
    bp_pump(t);
}

static void test_write_back_pressure(void **state)
{
    (void)state;
    weft_loop_opts_t o = {.tcp_high_water = 64 * 1024};
    weft_loop_t *l;
    assert_int_equal(weft_loop_create(&l, &o), 0);
    weft_tcp_init(l, &bp_server);
    assert_int_equal(weft_tcp_listen(&bp_server, "127.0.0.1", 0, 0, bp_accept), 0);
    uint16_t port;
    weft_tcp_port(&bp_server, &port);
    weft_tcp_init(l, &bp_client);
    assert_int_equal(weft_tcp_connect(&bp_client, "127.0.0.1", port, bp_connected), 0);
    weft_timer_t g;
    weft_timer_init(l, &g);
    weft_timer_start(&g, guard_fired, 20000 * MS, 0);
    while (bp_recv < BP_TOTAL || bp_peer.fd >= 0)
        weft_loop_run(l, WEFT_RUN_ONCE);
    weft_timer_stop(&g);
    assert_int_equal(bp_recv, BP_TOTAL);
    assert_true(bp_refused > 0);
    assert_int_equal(weft_loop_run(l, WEFT_RUN_DEFAULT), 0);
    assert_int_equal(weft_loop_destroy(l), 0);
}

static void test_tcp_args(void **state)
{
    (void)state;
    weft_loop_t *l;
    assert_int_equal(weft_loop_create(&l, NULL), 0);
    weft_tcp_t t;
    weft_tcp_init(l, &t);
    assert_err(weft_tcp_listen(&t, "not-an-ip", 0, 0, bp_accept), -EINVAL);
    assert_err(weft_tcp_connect(&t, "127.0.0.1", 0, bp_connected), -EINVAL);
    assert_err(weft_tcp_write(&t, "x", 1), -EINVAL);
    assert_err(weft_tcp_read_start(&t, NULL), -EINVAL);
    assert_int_equal(weft_tcp_close(&t), 0);
    assert_int_equal(weft_loop_destroy(l), 0);
}

static void ignore_conn(weft_tcp_t *s, int status)
{
    (void)s, (void)status;
}

static void ignore_io(weft_io_t *io, unsigned events)
{
    (void)io, (void)events;
}

static void test_destroy_closes_tcp(void **state)
{
    (void)state;
    weft_loop_t *l;
    assert_int_equal(weft_loop_create(&l, NULL), 0);
    weft_tcp_t srv, cli, acc;
    weft_tcp_init(l, &srv);
    assert_int_equal(weft_tcp_listen(&srv, "127.0.0.1", 0, 0, ignore_conn), 0);
    uint16_t port;
    weft_tcp_port(&srv, &port);
    weft_tcp_init(l, &cli);
    assert_int_equal(weft_tcp_connect(&cli, "127.0.0.1", port, ignore_conn), 0);
    /* Queued while connecting: the write queue holds heap memory. */
    static char big[256 * 1024];
    assert_int_equal(weft_tcp_write(&cli, big, sizeof big), 0);
    assert_true(weft_tcp_queued(&cli) > 0);
    weft_loop_run(l, WEFT_RUN_NOWAIT);
    weft_tcp_init(l, &acc);
    weft_tcp_accept(&srv, &acc); /* may or may not have arrived yet */
    int p[2];
    assert_int_equal(pipe(p), 0);
    weft_io_t io;
    weft_io_init(l, &io, p[0]);
    assert_int_equal(weft_io_start(&io, WEFT_IO_READ, ignore_io), 0);
    assert_int_equal(weft_loop_destroy(l), 0);
    /* Everything was released; stopping or closing afterwards is a no-op. */
    assert_int_equal(cli.fd, -1);
    assert_int_equal(srv.fd, -1);
    assert_int_equal(acc.fd, -1);
    assert_int_equal(weft_tcp_close(&cli), 0);
    assert_int_equal(weft_io_stop(&io), 0);
    close(p[0]);
    close(p[1]);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_destroy_closes_tcp),
    cmocka_unit_test(test_echo_1000_connections),
    cmocka_unit_test(test_write_back_pressure),
    cmocka_unit_test(test_tcp_args),
};

WTEST_MAIN(tests)
