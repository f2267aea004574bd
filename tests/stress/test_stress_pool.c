/*
 * test_stress_pool.c - seedable stress for weft_pool_t.
 *
 * Several submitter threads throw a random mix at one pool: plain tasks,
 * tasks with futures (waited with random timeouts, or cancelled at once),
 * and tasks that submit children into their own pool and wait on them (a
 * ForkJoin-style pool, so the waits run children inline, and a plain pool,
 * where a wait may return -EDEADLK). Every task id records how often it ran.
 * After each round the pool is destroyed and the harness checks: every task
 * accepted and not cancelled ran exactly once, no cancelled task ran, every
 * result that arrived is right.
 *
 *   test_stress_pool [--threads N] [--workers N] [--iters N] [--tasks N]
 *                    [--broken] [--seed S] [--long]
 *
 * --broken runs the same harness against a pool whose thieves take a task
 * with a plain store of the deque's top instead of a CAS (so a task can run
 * twice, or never); that run passes only if the harness detects it. The
 * broken rounds run in a child process, which exits with status 3 the
 * moment a check fails (a task starting a second time is caught before its
 * future is completed twice). A task with a future taken twice but run once
 * (the second claim fails) drops the future's queue reference twice; that
 * can crash the child (or make ASan stop it) before any count is off, and
 * that also counts as caught, as it would fail a normal run. Only a child
 * that passes every round (status 4) is a miss. The verdict says which.
 *
 * --long stands for --threads 3 --workers 4 --iters 40 (10 times the
 * default rounds); options given with it override it. The seed is printed
 * first; failure lines read "stress_pool: seed=S: ..." on stderr
 * (stress.h).
 */
// ctest stress --seed 1 --threads 2 --workers 2 --iters 6 --tasks 20000
// ctest stress_more_workers --seed 7 --threads 3 --workers 4 --iters 4 --tasks 20000
// ctest broken --broken --seed 3 --threads 3 --workers 4 --iters 200 --tasks 20000
// ctest long_preset --long --iters 1 --tasks 5000
// ctest-timeout 120
#include <pthread.h>

#include "internal/exec.h"
#include "stress/stress.h"

#define SEC 1000000000ll

typedef struct opts {
    uint64_t seed;
    unsigned threads, workers, iters, tasks;
    bool broken;
} opts_t;

typedef struct round {
    const opts_t *o;
    unsigned iter;
    weft_pool_t *pool;
    uint32_t *runs;      /* per task id: times run */
    uint8_t *cancelled;  /* per task id: cancel succeeded */
    uint8_t *accepted;   /* per task id: submit returned 0 */
    struct job *jobs;    /* per task id: the task's argument */
    uint32_t next_id;    /* atomic: ids for children */
    uint32_t bad_result; /* atomic: wrong results seen */
    uint32_t lost;       /* atomic: waits that gave up (10 s) */
} round_t;

typedef struct job {
    round_t *r;
    uint32_t id;
    uint32_t depth;
} job_t;

static opts_t opt = {.threads = 2, .workers = 2, .iters = 4, .tasks = 20000};

static const struct stress_opt options[] = {
    STRESS_UINT("--threads", "N", opt.threads, 1, 64),
    STRESS_UINT("--workers", "N", opt.workers, 1, 256),
    STRESS_UINT("--iters", "N", opt.iters, 0, UINT32_MAX),
    STRESS_UINT("--tasks", "N", opt.tasks, 1, 1u << 28),
    STRESS_FLAG("--broken", opt.broken),
    {0},
};

/* --long: more submitters and workers, 10 times the rounds. */
static const char *const long_preset[] = {"--threads", "3",  "--workers", "4",
                                          "--iters",   "40", NULL};

static const struct stress_prog prog = {"stress_pool", options, long_preset};

#define FAIL(...) stress_fail(prog.name, opt.seed, __VA_ARGS__)

static void *task(void *arg);

/* A child of a nested task: submitted into the same pool, awaited. */
static void run_child(job_t *j)
{
    round_t *r = j->r;
    uint32_t cid = __atomic_fetch_add(&r->next_id, 1, __ATOMIC_RELAXED);
    if (cid >= r->o->tasks * 2)
        return; /* out of ids: skip */
    job_t *c = &r->jobs[cid];
    *c = (job_t){r, cid, j->depth + 1};
    weft_future_t *f;
    if (weft_pool_submit(r->pool, task, c, &f) != 0)
        return;
    r->accepted[cid] = 1;
    void *res = NULL;
    int e = weft_future_wait(f, 10 * SEC, &res);
    if (e == 0 && (uintptr_t)res != cid + 1u)
        __atomic_fetch_add(&r->bad_result, 1, __ATOMIC_RELAXED);
    if (e == -ETIMEDOUT)
        __atomic_fetch_add(&r->lost, 1, __ATOMIC_RELAXED);
    weft_future_release(f); /* -EDEADLK: the child still runs later */
}

static void *task(void *arg)
{
    job_t *j = arg;
    uint32_t id = j->id;
    if (__atomic_fetch_add(&j->r->runs[id], 1, __ATOMIC_RELAXED) != 0) {
        /* Caught in the act: stop before the second completion of its future
         * corrupts memory. */
        FAIL("iter %u: task %u is running a second time", j->r->iter, id);
        _exit(3);
    }
    if (j->depth == 0 && (id % 7) == 0)
        run_child(j);
    return (void *)(uintptr_t)(id + 1);
}

typedef struct submitter {
    round_t *r;
    unsigned index;
    uint64_t rng;
} submitter_t;

/* Submit ids index, index + threads, ... of this round. */
static void *submitter_main(void *arg)
{
    submitter_t *s = arg;
    round_t *r = s->r;
    for (uint32_t id = s->index; id < r->o->tasks; id += r->o->threads) {
        job_t *j = &r->jobs[id];
        *j = (job_t){r, id, 0};
        uint64_t x = stress_xorshift64(&s->rng) % 16;
        weft_future_t *f = NULL;
        if (weft_pool_submit(r->pool, task, j, x < 8 ? NULL : &f) != 0)
            continue;
        r->accepted[id] = 1;
        if (f == NULL)
            continue;
        if (x < 11 && weft_future_cancel(f) == 0)
            r->cancelled[id] = 1;
        else if (x < 14) {
            void *res = NULL;
            int e = weft_future_wait(f, x == 13 ? 0 : 10 * SEC, &res);
            if (e == 0 && (uintptr_t)res != id + 1u)
                __atomic_fetch_add(&r->bad_result, 1, __ATOMIC_RELAXED);
            if (e != 0 && e != -ETIMEDOUT)
                __atomic_fetch_add(&r->bad_result, 1, __ATOMIC_RELAXED);
        }
        weft_future_release(f);
    }
    return NULL;
}

/* Every accepted, uncancelled task ran exactly once; nothing else ran. */
static int check_round(round_t *r)
{
    int bad = 0;
    uint32_t n = __atomic_load_n(&r->next_id, __ATOMIC_RELAXED);
    if (n > r->o->tasks * 2)
        n = r->o->tasks * 2;
    for (uint32_t id = 0; id < n; id++) {
        uint32_t want = r->accepted[id] && !r->cancelled[id] ? 1 : 0;
        if (r->runs[id] != want && bad++ < 5)
            FAIL("iter %u: task %u ran %u times, expected %u (accepted %d, cancelled %d)", r->iter,
                 id, r->runs[id], want, r->accepted[id], r->cancelled[id]);
    }
    if (r->bad_result != 0 && bad++ < 6)
        FAIL("iter %u: %u wrong results", r->iter, r->bad_result);
    if (r->lost != 0 && bad++ < 7)
        FAIL("iter %u: %u waits timed out after 10 s", r->iter, r->lost);
    return bad;
}

static int run_round(const opts_t *o, unsigned iter, uint64_t *rng)
{
    round_t r = {.o = o, .iter = iter, .next_id = o->tasks};
    r.runs = calloc(o->tasks * 2, sizeof *r.runs);
    r.cancelled = calloc(o->tasks * 2, 1);
    r.accepted = calloc(o->tasks * 2, 1);
    r.jobs = calloc(o->tasks * 2, sizeof *r.jobs);
    weft_pool_opts_t po = {
        .name = "stress", .threads = o->workers, .wait_runs_inline = (iter % 2) == 0};
    if (weft_pool_create(&r.pool, &po) != 0) {
        FAIL("pool create");
        return 1;
    }
    pthread_t th[64];
    submitter_t sub[64];
    for (unsigned i = 0; i < o->threads; i++) {
        sub[i] = (submitter_t){&r, i, stress_xorshift64(rng) | 1};
        pthread_create(&th[i], NULL, submitter_main, &sub[i]);
    }
    for (unsigned i = 0; i < o->threads; i++)
        pthread_join(th[i], NULL);
    int bad = 0;
    if (weft_pool_destroy_timed(r.pool, 10 * SEC) != 0) {
        FAIL("iter %u: destroy did not finish in 10 s (a task was lost)", iter);
        _exit(3); /* workers still run: the round's memory cannot be freed */
    }
    bad = check_round(&r);
    free(r.runs);
    free(r.cancelled);
    free(r.accepted);
    free(r.jobs);
    return bad;
}

/* Rounds until one fails: the number of failures (0: all passed). */
static int run_rounds(const opts_t *o)
{
    uint64_t rng = o->seed * 0x9E3779B97F4A7C15ull | 1;
    int bad = 0;
    for (unsigned iter = 0; iter < o->iters && bad == 0; iter++)
        bad = run_round(o, iter, &rng);
    return bad;
}

/* The self-test: the broken pool must be caught (in a child process). */
static int run_broken(const opts_t *o)
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        weft__exec_fault = WEFT__FAULT_STEAL_NO_CAS;
        _exit(run_rounds(o) != 0 ? 3 : 4); /* 4: every round passed */
    }
    int st = 0;
    if (pid < 0 || waitpid(pid, &st, 0) != pid)
        return 1;
    bool missed = WIFEXITED(st) && (WEXITSTATUS(st) == 4 || WEXITSTATUS(st) == 0);
    bool checked = WIFEXITED(st) && WEXITSTATUS(st) == 3;
    printf("stress_pool: broken pool %s (seed %llu)\n",
           missed    ? "NOT caught"
           : checked ? "caught by the checks"
                     : "caught: the child crashed or a sanitizer stopped it",
           (unsigned long long)o->seed);
    if (WIFSIGNALED(st))
        printf("stress_pool: the child was killed by signal %d\n", WTERMSIG(st));
    else if (!missed && !checked)
        printf("stress_pool: the child exited with status %d\n", WEXITSTATUS(st));
    return missed ? 1 : 0;
}

int main(int argc, char **argv)
{
    opt.seed = stress_parse(&prog, argc, argv).seed;
    stress_start("stress_pool: seed %" PRIu64 " threads %u workers %u iters %u tasks %u%s",
                 opt.seed, opt.threads, opt.workers, opt.iters, opt.tasks,
                 opt.broken ? " (broken pool: must be caught)" : "");
    if (opt.broken)
        return run_broken(&opt);
    int bad = run_rounds(&opt);
    printf("stress_pool: %s (seed %" PRIu64 ")\n", bad ? "FAILED" : "ok", opt.seed);
    return bad ? 1 : 0;
}
