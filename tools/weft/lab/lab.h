/*
 * lab.h - the interface between `weft lab` (tools/weft/lab.c) and its
 * experiments (one file each in tools/weft/lab/).
 *
 * An experiment is a name, a one-sentence claim and a run() function. run()
 * measures, records numbers with weft_lab_metric(), fills one table (and
 * says how to plot it), decides the verdict from the numbers with a
 * threshold written in its own code, and explains the outcome in notes.
 *
 * The runner executes every experiment in a child process of its own, under
 * a hard time limit, so a hang or a crash in one experiment can neither stall
 * nor take down the whole lab. The result therefore lives in shared memory
 * and is plain data: fixed-size arrays, no pointers.
 *
 * Thread safety: the weft_lab_* recording functions are called by the
 * experiment's main thread only (worker threads report through their own
 * argument structs). The helpers marked "any thread" may be called anywhere.
 */
#ifndef WEFT_TOOLS_LAB_H
#define WEFT_TOOLS_LAB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WEFT_LAB_MAX_METRICS 64
#define WEFT_LAB_MAX_ROWS 16
#define WEFT_LAB_MAX_COLS 6
#define WEFT_LAB_TEXT 4096

/* How long and how tight: --quick (tests), the default, --full. */
enum weft_lab_mode { WEFT_LAB_QUICK, WEFT_LAB_DEFAULT, WEFT_LAB_FULL };

struct weft_lab_metric {
    char key[48];
    double value;
};

/* One table of numbers: rows are variants or thread counts, columns measures. */
struct weft_lab_table {
    char title[96];
    unsigned ncols, nrows;
    char col[WEFT_LAB_MAX_COLS][40];
    char row[WEFT_LAB_MAX_ROWS][40];
    double cell[WEFT_LAB_MAX_ROWS][WEFT_LAB_MAX_COLS];
};

enum weft_lab_plot_kind {
    WEFT_LAB_PLOT_NONE,  /* no plot */
    WEFT_LAB_PLOT_BARS,  /* clustered bars, one cluster per row */
    WEFT_LAB_PLOT_LINES, /* one line per column, rows along the x axis */
};

/* How the report draws the table: which columns, what kind, which scale. */
struct weft_lab_plot {
    enum weft_lab_plot_kind kind;
    unsigned columns; /* bit i set: plot column i */
    bool logy;
    char ylabel[64];
    char xlabel[64];
};

struct weft_lab_result {
    bool reproduced; /* the verdict, computed from the metrics */
    int error;       /* 0, or a negative errno: the experiment could not run */
    char error_msg[256];
    unsigned nmetrics;
    struct weft_lab_metric metric[WEFT_LAB_MAX_METRICS];
    struct weft_lab_table table;
    struct weft_lab_plot plot;
    char notes[WEFT_LAB_TEXT];
    /* A check-layer report the experiment provoked, shown verbatim. */
    char check_report[WEFT_LAB_TEXT];
    double seconds; /* wall time of run(), filled by the runner */
};

struct weft_lab_ctx {
    enum weft_lab_mode mode;
    uint64_t seed; /* this experiment's seed, derived from --seed and its name */
    unsigned cpus; /* weft_cpu_count() */
    struct weft_lab_result *res;
};

struct weft_lab_experiment {
    const char *name;
    const char *claim;
    /* Measure and fill ctx->res. 0, or a negative errno when it could not run. */
    int (*run)(struct weft_lab_ctx *ctx);
};

/* ---- recording results (experiment's main thread) ------------------------ */

/* Record a named number. Keys are unique snake_case; a repeated key overwrites. */
void weft_lab_metric(struct weft_lab_ctx *ctx, const char *key, double value);
/* The value recorded under key, or `otherwise` when there is none. */
double weft_lab_get(const struct weft_lab_ctx *ctx, const char *key, double otherwise);
/* Append a sentence (or several) to the notes. */
void weft_lab_note(struct weft_lab_ctx *ctx, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Start the table: a title and up to WEFT_LAB_MAX_COLS column headers. */
void weft_lab_table(struct weft_lab_ctx *ctx, const char *title, unsigned ncols,
                    const char *const cols[]);
/* Append a row: its label and exactly ncols doubles. */
void weft_lab_row(struct weft_lab_ctx *ctx, const char *label, ...);
/* Say how the report plots the table. */
void weft_lab_plot(struct weft_lab_ctx *ctx, enum weft_lab_plot_kind kind, unsigned columns,
                   bool logy, const char *xlabel, const char *ylabel);
/* Set the verdict (computed by the caller from its metrics). */
void weft_lab_verdict(struct weft_lab_ctx *ctx, bool reproduced);
/* Mark the experiment as failed to run: returns err for `return weft_lab_fail(...)`. */
int weft_lab_fail(struct weft_lab_ctx *ctx, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Record the 1-minute load average (metric load_average) and, when the
 * machine is busy (load at least the CPU count), say so in the notes:
 * threads meant to run at the same time then often do not. */
void weft_lab_note_load(struct weft_lab_ctx *ctx);

/*
 * True when WEFT_LAB_BROKEN is set in the environment: experiments that
 * have one then run a deliberately broken fix (the race's mutex variant
 * skips its lock; the semaphore gets one permit too many), so the tests can
 * prove that their invariant checks catch a broken run.
 */
bool weft_lab_broken(void);

/*
 * The check layer (weft/check.h). weft_lab_check_begin() switches checking
 * on for the rest of the experiment's process and captures every report
 * into res->check_report (whole reports, while they fit). Call it after the
 * unchecked measurements: checking slows every lock operation.
 * weft_lab_check_collect() records the metrics check_reports and
 * check_reports_<kind> (dashes become underscores) and returns the total.
 * weft_lab_check_count() returns how many reports of one kind arrived
 * (any thread).
 */
void weft_lab_check_begin(struct weft_lab_ctx *ctx);
unsigned weft_lab_check_collect(struct weft_lab_ctx *ctx);
unsigned weft_lab_check_count(const char *kind);

/* ---- budgets --------------------------------------------------------------- */

/* A time budget: default_ms in the default mode, a fraction with --quick,
 * several times more with --full. In nanoseconds. */
uint64_t weft_lab_budget_ns(const struct weft_lab_ctx *ctx, uint64_t default_ms);
/* An iteration count scaled the same way (at least 1). */
uint64_t weft_lab_scale(const struct weft_lab_ctx *ctx, uint64_t default_n);

/* ---- helpers (any thread) ------------------------------------------------ */

/* xorshift64* step: a fast, seedable generator (state must be non-zero). */
uint64_t weft_lab_rand(uint64_t *state);
/* splitmix64: spreads a seed into a good non-zero state. */
uint64_t weft_lab_mix(uint64_t x);

/*
 * Start n threads running fn(args + i * stride) and join them, waiting at
 * most timeout_ns in total. 0; -ETIMEDOUT if some thread did not finish; or
 * a negative errno if a thread could not be created (those already started
 * are joined). After -ETIMEDOUT the stuck threads still use their arguments:
 * the experiment must return weft_lab_fail() at once, and its process ends
 * (taking the threads with it) as soon as run() returns.
 */
int weft_lab_run_threads(unsigned n, void *(*fn)(void *), void *args, size_t stride,
                         int64_t timeout_ns);

/* A reusable spin barrier for a fixed number of threads (cheaper than a futex
 * barrier for lock-step trials). Spinning yields the CPU after a while. */
struct weft_lab_gate {
    unsigned parties;
    unsigned arrived; /* atomic */
    unsigned phase;   /* atomic: bumped by the last arrival */
};

void weft_lab_gate_init(struct weft_lab_gate *g, unsigned parties);
void weft_lab_gate_wait(struct weft_lab_gate *g);

/* Pin the calling thread to one CPU: 0 or a negative errno. */
int weft_lab_pin_self(int cpu);
/* The index-th CPU (0-based) this process may run on, or -1. */
int weft_lab_allowed_cpu(unsigned index);
/* Sleep for ns nanoseconds (nanosleep, EINTR retried). */
void weft_lab_sleep_ns(uint64_t ns);
/* Burn about `units` of CPU work (a dependent multiply chain); returns a
 * value that must be used so the work is not optimised away. */
uint64_t weft_lab_work(uint64_t units, uint64_t seed);

/* ---- the experiments ------------------------------------------------------ */

extern const struct weft_lab_experiment weft_lab_race;
extern const struct weft_lab_experiment weft_lab_check_then_act;
extern const struct weft_lab_experiment weft_lab_deadlock;
extern const struct weft_lab_experiment weft_lab_livelock;
extern const struct weft_lab_experiment weft_lab_starvation;
extern const struct weft_lab_experiment weft_lab_semaphore;
extern const struct weft_lab_experiment weft_lab_ownership;
extern const struct weft_lab_experiment weft_lab_cas_vs_lock;
extern const struct weft_lab_experiment weft_lab_conc_vs_par;
extern const struct weft_lab_experiment weft_lab_pool_starvation;
extern const struct weft_lab_experiment weft_lab_memory_order;
extern const struct weft_lab_experiment weft_lab_optimistic;

#endif /* WEFT_TOOLS_LAB_H */
