/*
 * lab.c - `weft lab`: runs the experiments of tools/weft/lab/ and prints
 * what they measured.
 *
 *   weft lab [--list] [--quick | --full] [--seed N] [--json] [--report DIR] [NAME...]
 *
 * Each experiment runs in a child process of its own with a hard time limit:
 * its result comes back through a shared anonymous mapping, so a hang is
 * ended by SIGKILL and a crash is reported, and neither stops the others.
 * Exit status: 0 when every selected experiment ran (whatever its verdict),
 * 1 when one could not run or the report could not be written, 2 on a usage
 * error (one line on stderr).
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "weft.h"
#include "cmd.h"
#include "lab/lab.h"
#include "lab/session.h"

/* The registry, in the order `weft lab` runs them. */
static const struct weft_lab_experiment *const experiments[] = {
    &weft_lab_race,        &weft_lab_check_then_act,  &weft_lab_deadlock,     &weft_lab_livelock,
    &weft_lab_starvation,  &weft_lab_semaphore,       &weft_lab_ownership,    &weft_lab_cas_vs_lock,
    &weft_lab_conc_vs_par, &weft_lab_pool_starvation, &weft_lab_memory_order, &weft_lab_optimistic,
};
#define N_EXPERIMENTS (sizeof experiments / sizeof experiments[0])

struct lab_opts {
    enum weft_lab_mode mode;
    uint64_t seed;
    bool seed_given, json, list;
    const char *report_dir;
    const struct weft_lab_experiment *chosen[N_EXPERIMENTS];
    unsigned nchosen;
};

static const char usage_line[] =
    "usage: weft lab [--list] [--quick | --full] [--seed N] [--json] [--report DIR] [NAME...]";

/* ---- arguments ---------------------------------------------------------- */

static const struct weft_lab_experiment *find_experiment(const char *name)
{
    for (size_t i = 0; i < N_EXPERIMENTS; i++)
        if (strcmp(experiments[i]->name, name) == 0)
            return experiments[i];
    return NULL;
}

/* One line on stderr; returns the usage-error exit status. */
static __attribute__((format(printf, 1, 2))) int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("weft lab: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputs(" (try 'weft lab --help')\n", stderr);
    va_end(ap);
    return 2;
}

static int parse_seed(struct lab_opts *o, const char *s)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (s[0] == '\0' || s[0] == '-' || *end != '\0' || errno != 0)
        return usage_error("--seed needs a non-negative integer, not '%s'", s);
    o->seed = v;
    o->seed_given = true;
    return 0;
}

static int add_name(struct lab_opts *o, const char *name)
{
    const struct weft_lab_experiment *e = find_experiment(name);
    if (e == NULL)
        return usage_error("no experiment named '%s'", name);
    for (unsigned i = 0; i < o->nchosen; i++)
        if (o->chosen[i] == e)
            return 0;
    o->chosen[o->nchosen++] = e;
    return 0;
}

/* An option's value: the rest of "--opt=value" or the next argument. */
static const char *opt_value(int argc, char **argv, int *i, const char *opt)
{
    size_t len = strlen(opt);
    if (argv[*i][len] == '=')
        return argv[*i] + len + 1;
    if (*i + 1 < argc)
        return argv[++*i];
    return NULL;
}

static bool is_opt(const char *arg, const char *opt)
{
    size_t len = strlen(opt);
    return strncmp(arg, opt, len) == 0 && (arg[len] == '\0' || arg[len] == '=');
}

static void list_experiments(void)
{
    for (size_t i = 0; i < N_EXPERIMENTS; i++)
        printf("%-28s %s\n", experiments[i]->name, experiments[i]->claim);
}

static void help(void)
{
    printf("%s\n\n"
           "Runs concurrency experiments and computes each verdict from its measurements.\n\n"
           "  --list        name every experiment with its claim\n"
           "  --quick       a fraction of a second each (noisy numbers)\n"
           "  --full        longer runs for tighter numbers\n"
           "  --seed N      seed for the randomised parts (printed in every output)\n"
           "  --json        one JSON document on stdout instead of text\n"
           "  --report DIR  also write DIR/index.html with tables and plots (gnuplot)\n\n"
           "experiments:\n",
           usage_line);
    for (size_t i = 0; i < N_EXPERIMENTS; i++)
        printf("  %s\n", experiments[i]->name);
}

/* Returns -1 to go on, or an exit status. */
static int parse_one(struct lab_opts *o, int argc, char **argv, int *i)
{
    const char *a = argv[*i];
    if (strcmp(a, "--list") == 0)
        o->list = true;
    else if (strcmp(a, "--json") == 0)
        o->json = true;
    else if (strcmp(a, "--quick") == 0 || strcmp(a, "--full") == 0) {
        enum weft_lab_mode m = a[2] == 'q' ? WEFT_LAB_QUICK : WEFT_LAB_FULL;
        if (o->mode != WEFT_LAB_DEFAULT && o->mode != m)
            return usage_error("--quick and --full exclude each other");
        o->mode = m;
    } else if (is_opt(a, "--seed")) {
        const char *v = opt_value(argc, argv, i, "--seed");
        if (v == NULL)
            return usage_error("--seed needs a value");
        if (parse_seed(o, v) != 0)
            return 2;
    } else if (is_opt(a, "--report")) {
        const char *v = opt_value(argc, argv, i, "--report");
        if (v == NULL || v[0] == '\0')
            return usage_error("--report needs a directory");
        o->report_dir = v;
    } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
        help();
        return 0;
    } else if (a[0] == '-')
        return usage_error("unknown option '%s'", a);
    else if (add_name(o, a) != 0)
        return 2;
    return -1;
}

static int parse_args(struct lab_opts *o, int argc, char **argv)
{
    memset(o, 0, sizeof *o);
    o->mode = WEFT_LAB_DEFAULT;
    for (int i = 1; i < argc; i++) {
        int rc = parse_one(o, argc, argv, &i);
        if (rc >= 0)
            return rc;
    }
    if (o->nchosen == 0)
        for (size_t i = 0; i < N_EXPERIMENTS; i++)
            o->chosen[o->nchosen++] = experiments[i];
    if (!o->seed_given)
        o->seed = weft_lab_mix(weft_now_ns() ^ (uint64_t)getpid()) % 1000000000u;
    return -1;
}

/* ---- running ----------------------------------------------------------------- */

/* The hard limit for one experiment: generous next to its budget, because
 * sanitizer builds run several times slower, but finite. WEFT_LAB_LIMIT_MS
 * in the environment overrides it (the tests use it to exercise the kill). */
static uint64_t hard_limit_ns(enum weft_lab_mode mode)
{
    const char *env = getenv("WEFT_LAB_LIMIT_MS");
    char *end;
    if (env != NULL && env[0] != '\0') {
        unsigned long long ms = strtoull(env, &end, 10);
        if (*end == '\0' && ms > 0)
            return ms * 1000000u;
    }
    uint64_t s = mode == WEFT_LAB_QUICK ? 60 : mode == WEFT_LAB_FULL ? 300 : 90;
    return s * 1000000000u;
}

static uint64_t name_hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (; *s != '\0'; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

/* The progress line: stderr is unbuffered, so it appears at once. */
static void progress(bool on, unsigned i, unsigned n, const char *name, double secs)
{
    if (on)
        fprintf(stderr, "\r\033[Kweft lab [%u/%u] %s %.0f s", i + 1, n, name, secs);
}

static void progress_clear(bool on)
{
    if (on)
        fputs("\r\033[K", stderr);
}

static __attribute__((noreturn)) void child_run(const struct weft_lab_experiment *e,
                                                struct weft_lab_ctx *ctx)
{
    uint64_t t0 = weft_now_ns();
    int rc = e->run(ctx);
    if (rc < 0 && ctx->res->error == 0)
        weft_lab_fail(ctx, rc, "%s", weft_strerror(rc));
    ctx->res->seconds = (double)(weft_now_ns() - t0) / 1e9;
    /* exit, not _exit: a sanitizer's exit-time checks (TSan reports, ASan
     * leaks) must be able to turn the status non-zero, which the parent
     * reports as a failure. stdio was flushed before fork(). */
    exit(0);
}

static void record_death(struct weft_lab_result *r, int status, bool killed, uint64_t limit)
{
    if (killed) {
        r->error = -ETIMEDOUT;
        snprintf(r->error_msg, sizeof r->error_msg,
                 "did not finish within its hard limit of %.3g s and was killed",
                 (double)limit / 1e9);
    } else if (WIFSIGNALED(status)) {
        r->error = -ECHILD;
        snprintf(r->error_msg, sizeof r->error_msg, "crashed: %s", strsignal(WTERMSIG(status)));
    } else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        r->error = -ECHILD;
        snprintf(r->error_msg, sizeof r->error_msg, "exited with status %d", WEXITSTATUS(status));
    } else
        return;
    r->reproduced = false;
}

/* Wait for the child, showing progress, killing it at the limit. */
static void supervise(pid_t pid, struct weft_lab_result *r, uint64_t limit, bool show, unsigned i,
                      unsigned n, const char *name)
{
    uint64_t t0 = weft_now_ns();
    bool killed = false;
    int status = 0;
    uint64_t shown = UINT64_MAX; /* the whole second the progress line shows */
    for (;;) {
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid || (w < 0 && errno != EINTR))
            break;
        uint64_t el = weft_now_ns() - t0;
        if (!killed && el > limit) {
            kill(pid, SIGKILL);
            killed = true;
        }
        if (el / 1000000000u != shown) {
            shown = el / 1000000000u;
            progress(show, i, n, name, (double)shown);
        }
        weft_lab_sleep_ns(20000000);
    }
    if (r->seconds == 0)
        r->seconds = (double)(weft_now_ns() - t0) / 1e9;
    record_death(r, status, killed, limit);
}

static int run_one(const struct lab_opts *o, struct weft_lab_entry *e, bool show, unsigned i)
{
    struct weft_lab_ctx ctx = {o->mode, weft_lab_mix(o->seed ^ name_hash(e->exp->name)),
                               weft_cpu_count(), e->res};
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0)
        return weft_lab_fail(&ctx, -errno, "fork failed");
    if (pid == 0)
        child_run(e->exp, &ctx);
    supervise(pid, e->res, hard_limit_ns(o->mode), show, i, o->nchosen, e->exp->name);
    return e->res->error;
}

static int run_all(const struct lab_opts *o, struct weft_lab_session *s)
{
    bool show = isatty(STDERR_FILENO);
    int status = 0;
    uint64_t t0 = weft_now_ns();
    if (!o->json)
        weft_lab_print_header(stdout, s);
    for (unsigned i = 0; i < s->n; i++) {
        if (run_one(o, &s->entries[i], show, i) != 0)
            status = 1;
        progress_clear(show);
        if (!o->json)
            weft_lab_print_entry(stdout, &s->entries[i]);
        fflush(stdout);
    }
    s->seconds = (double)(weft_now_ns() - t0) / 1e9;
    if (o->json)
        weft_lab_print_json(stdout, s);
    else
        weft_lab_print_summary(stdout, s);
    return status;
}

static int lab_main(int argc, char **argv)
{
    struct lab_opts o;
    int rc = parse_args(&o, argc, argv);
    if (rc >= 0)
        return rc;
    if (o.list) {
        list_experiments();
        return 0;
    }
    struct weft_lab_session s = {o.mode, o.seed, {0}, NULL, o.nchosen, 0};
    weft_lab_machine_probe(&s.machine);
    size_t bytes = o.nchosen * sizeof(struct weft_lab_result);
    struct weft_lab_result *res =
        mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    struct weft_lab_entry entries[N_EXPERIMENTS];
    if (res == MAP_FAILED) {
        fprintf(stderr, "weft lab: cannot map %zu bytes for results\n", bytes);
        return 1;
    }
    for (unsigned i = 0; i < o.nchosen; i++)
        entries[i] = (struct weft_lab_entry){o.chosen[i], &res[i]};
    s.entries = entries;
    int status = run_all(&o, &s);
    const char *why = NULL;
    if (o.report_dir != NULL && (rc = weft_lab_write_report(o.report_dir, &s, &why)) != 0) {
        fprintf(stderr, "weft lab: %s %s: %s\n", why, o.report_dir, weft_strerror(rc));
        status = 1;
    }
    munmap(res, bytes);
    return status;
}

const struct weft_cmd weft_cmd_lab = {"lab", "run the concurrency experiments (--list)", lab_main};
