/*
 * stress.h - what every seedable stress program in tests/stress/ shares.
 *
 * A stress program runs threads against one primitive with choices drawn
 * from a seed, checks invariants, and runs once more against a deliberately
 * broken variant that it must catch. This header gives each of them:
 *
 *  - the generators the programs draw their choices from. Three are in use
 *    (xorshift64*, plain xorshift64 and splitmix64); each program keeps the
 *    one it was written with, so a seed printed by an older build replays
 *    the same choices;
 *  - a table-driven option parser. A program lists its options (flags,
 *    unsigned numbers, 64-bit numbers, one word out of a list) with their
 *    ranges; the parser adds `--seed S` (default: from the clock) and
 *    `--long` (the program's long preset, applied before the explicit
 *    options, so `--long --iters 5` runs the long settings with 5
 *    iterations), builds the usage line from the table, and exits with
 *    status 2 on an unknown option, a missing value or a value out of
 *    range;
 *  - the output conventions: stress_start() for the first line (which
 *    carries the seed), stress_fail() for failure lines, which read
 *    "stress_NAME: seed=S: what went wrong" on stderr;
 *  - stress_run_self(), which runs the program again in a child process
 *    (for programs whose `--long` alone runs several configurations).
 *
 * Everything here is static inline and used from one thread at start-up,
 * except the generators (each thread owns its state) and stress_fail()
 * (callable from any thread: it writes each line with one stdio call).
 */
#ifndef WEFT_TESTS_STRESS_H
#define WEFT_TESTS_STRESS_H

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "weft.h"

/* ---- generators ------------------------------------------------------------- */

/* xorshift64* (Vigna): the state must be nonzero, and stays so. */
static inline uint64_t stress_rng_next(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1DULL;
}

/*
 * The starting state of stream `stream` (a thread's number, or any small
 * integer a program gives each of its threads) of the run seeded `seed`,
 * for stress_rng_next(). Streams of one seed start far apart; the state is
 * never zero.
 */
static inline uint64_t stress_rng_seed(uint64_t seed, uint64_t stream)
{
    uint64_t x = seed * 0x9E3779B97F4A7C15ULL + stream;
    return x != 0 ? x : 1;
}

/* Plain xorshift64 (shifts 13, 7, 17); the state must be nonzero. */
static inline uint64_t stress_xorshift64(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* splitmix64: any state will do, zero included. */
static inline uint64_t stress_splitmix64(uint64_t *s)
{
    uint64_t x = (*s += 0x9E3779B97F4A7C15ULL);
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
    return x ^ (x >> 31);
}

/* ---- options ---------------------------------------------------------------- */

enum stress_kind {
    STRESS_KIND_FLAG,   /* --name: sets a bool */
    STRESS_KIND_UINT,   /* --name N: an unsigned in [min, max] */
    STRESS_KIND_U64,    /* --name N: a uint64_t in [min, max] */
    STRESS_KIND_CHOICE, /* --name WORD: the index of WORD in "a|b|c", an int */
};

/* One option of a program. Declare them with the macros below, which check
 * the destination's type; an unsigned option's max is at most UINT_MAX. */
struct stress_opt {
    const char *name; /* "--threads" */
    enum stress_kind kind;
    const char *meta; /* the value's name in the usage line; a choice's words */
    uint64_t min, max;
    union {
        bool *flag;
        unsigned *u;
        uint64_t *u64;
        int *choice;
    } to;
};

#define STRESS_FLAG(name_, var_)                                                                   \
    {                                                                                              \
        .name = (name_), .kind = STRESS_KIND_FLAG, .to.flag = &(var_)                              \
    }
#define STRESS_UINT(name_, meta_, var_, min_, max_)                                                \
    {                                                                                              \
        .name = (name_), .kind = STRESS_KIND_UINT, .meta = (meta_), .min = (min_), .max = (max_),  \
        .to.u = &(var_)                                                                            \
    }
#define STRESS_U64(name_, meta_, var_, min_, max_)                                                 \
    {                                                                                              \
        .name = (name_), .kind = STRESS_KIND_U64, .meta = (meta_), .min = (min_), .max = (max_),   \
        .to.u64 = &(var_)                                                                          \
    }
#define STRESS_CHOICE(name_, words_, var_)                                                         \
    {                                                                                              \
        .name = (name_), .kind = STRESS_KIND_CHOICE, .meta = (words_), .to.choice = &(var_)        \
    }

/* A program: its options (ending with {0}) and what --long stands for. */
struct stress_prog {
    const char *name;               /* "stress_queue": starts failure lines */
    const struct stress_opt *opts;  /* the table; .name NULL ends it */
    const char *const *long_preset; /* arguments, NULL-terminated */
};

/* What the parser found besides the table's options. */
struct stress_args {
    uint64_t seed;
    bool seeded;   /* --seed was given */
    bool long_run; /* --long was given */
};

/* Prints the usage line built from the table, and exits with status 2. */
static inline void stress_usage(const struct stress_prog *p, const char *argv0)
{
    fprintf(stderr, "usage: %s", argv0);
    for (const struct stress_opt *o = p->opts; o->name != NULL; o++)
        if (o->kind == STRESS_KIND_FLAG)
            fprintf(stderr, " [%s]", o->name);
        else
            fprintf(stderr, " [%s %s]", o->name, o->meta);
    fprintf(stderr, " [--seed S] [--long]\n");
    exit(2);
}

/* Reads a whole unsigned number (decimal, 0x hex or 0 octal); no sign. */
static inline bool stress__number(const char *s, uint64_t *out)
{
    if (*s < '0' || *s > '9')
        return false;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno != 0 || *end != '\0')
        return false;
    *out = v;
    return true;
}

/* The index of `word` in the choice list "a|b|c", or -1. */
static inline int stress__choice(const char *list, const char *word)
{
    size_t n = strlen(word);
    if (n == 0 || strchr(word, '|') != NULL)
        return -1;
    for (int i = 0; list != NULL; i++) {
        if (strncmp(list, word, n) == 0 && (list[n] == '|' || list[n] == '\0'))
            return i;
        list = strchr(list, '|');
        list = list != NULL ? list + 1 : NULL;
    }
    return -1;
}

/* Stores `val` into the option's variable; false if it is not valid. */
static inline bool stress__set(const struct stress_opt *o, const char *val)
{
    uint64_t v = 0;
    if (o->kind == STRESS_KIND_CHOICE) {
        int i = stress__choice(o->meta, val);
        if (i >= 0)
            *o->to.choice = i;
        return i >= 0;
    }
    if (!stress__number(val, &v) || v < o->min || v > o->max)
        return false;
    if (o->kind == STRESS_KIND_UINT)
        *o->to.u = (unsigned)v;
    else
        *o->to.u64 = v;
    return true;
}

static inline const struct stress_opt *stress__find(const struct stress_prog *p, const char *name)
{
    for (const struct stress_opt *o = p->opts; o->name != NULL; o++)
        if (strcmp(o->name, name) == 0)
            return o;
    return NULL;
}

/* Says what is wrong with the arguments ("unknown option --x", "bad value
 * for --threads: 0 (want 1..64)"), prints the usage line and exits 2. */
static inline void stress__bad(const struct stress_prog *p, const char *argv0, const char *what,
                               const char *arg, const char *val, const struct stress_opt *o)
{
    fprintf(stderr, "%s: %s %s", argv0, what, arg);
    if (val != NULL)
        fprintf(stderr, ": %s", val);
    if (o != NULL && o->kind == STRESS_KIND_CHOICE)
        fprintf(stderr, " (want one of %s)", o->meta);
    else if (o != NULL && o->kind != STRESS_KIND_FLAG)
        fprintf(stderr, " (want %" PRIu64 "..%" PRIu64 ")", o->min, o->max);
    fputc('\n', stderr);
    stress_usage(p, argv0);
}

/* Applies the arguments args[0..n) to the table; --long is skipped (the
 * caller has applied the preset already). */
static inline void stress__apply(const struct stress_prog *p, const char *argv0, int n,
                                 const char *const *args, struct stress_args *out)
{
    for (int i = 0; i < n; i++) {
        const char *a = args[i];
        if (strcmp(a, "--long") == 0)
            continue;
        const struct stress_opt *o = stress__find(p, a);
        if (o == NULL && strcmp(a, "--seed") != 0)
            stress__bad(p, argv0, "unknown option", a, NULL, NULL);
        if (o != NULL && o->kind == STRESS_KIND_FLAG) {
            *o->to.flag = true;
            continue;
        }
        if (i + 1 >= n)
            stress__bad(p, argv0, "no value after", a, NULL, NULL);
        const char *v = args[++i];
        if (o == NULL) {
            if (!stress__number(v, &out->seed))
                stress__bad(p, argv0, "bad value for", a, v, NULL);
            out->seeded = true;
        } else if (!stress__set(o, v)) {
            stress__bad(p, argv0, "bad value for", a, v, o);
        }
    }
}

/*
 * Parses the command line into the table's variables (which hold the
 * defaults on entry). --long anywhere applies the program's preset first;
 * the other arguments follow in order, the last of a repeated option
 * winning. Without --seed the seed comes from the clock. Exits with status
 * 2, after the usage line, on any bad argument.
 */
static inline struct stress_args stress_parse(const struct stress_prog *p, int argc, char **argv)
{
    struct stress_args out = {0, false, false};
    const char *const *args = (const char *const *)argv + 1;
    for (int i = 0; i < argc - 1; i++)
        out.long_run |= strcmp(args[i], "--long") == 0;
    if (out.long_run && p->long_preset != NULL) {
        int n = 0;
        while (p->long_preset[n] != NULL)
            n++;
        stress__apply(p, argv[0], n, p->long_preset, &out);
    }
    stress__apply(p, argv[0], argc - 1, args, &out);
    if (!out.seeded)
        out.seed = weft_now_ns() ^ (uint64_t)time(NULL);
    return out;
}

/* ---- output ------------------------------------------------------------------ */

/* Prints the run's first line (which names the seed) and flushes it, so
 * that it comes out first even if the run crashes. */
__attribute__((format(printf, 1, 2))) static inline void stress_start(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
}

/*
 * Reports a failure on stderr as "prog: seed=S: message", in one write so
 * that lines from several threads do not mix. Safe from any thread. The
 * caller counts failures and decides how many to print.
 */
__attribute__((format(printf, 3, 0))) static inline void
stress_vfail(const char *prog, uint64_t seed, const char *fmt, va_list ap)
{
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    fprintf(stderr, "%s: seed=%" PRIu64 ": %s\n", prog, seed, msg);
}

__attribute__((format(printf, 3, 4))) static inline void
stress_fail(const char *prog, uint64_t seed, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    stress_vfail(prog, seed, fmt, ap);
    va_end(ap);
}

/* ---- child runs --------------------------------------------------------------- */

/* Runs this program again with `args` (args[0] is the name it sees; NULL
 * ends the list) and waits: 0 if the child exited with status 0, else 1. */
static inline int stress_run_self(const char *const *args)
{
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        execv("/proc/self/exe", (char *const *)args);
        _exit(127);
    }
    int st = 0;
    if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
        return 1;
    return 0;
}

#endif /* WEFT_TESTS_STRESS_H */
