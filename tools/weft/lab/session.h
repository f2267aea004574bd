/*
 * session.h - one run of `weft lab`: the machine it ran on, the options, and
 * each experiment's result; and the three ways to print it (text, JSON,
 * HTML report). Used by tools/weft/lab.c; implemented in lab/output.c and
 * lab/report.c. Single-threaded: only the runner's main thread calls these.
 */
#ifndef WEFT_TOOLS_LAB_SESSION_H
#define WEFT_TOOLS_LAB_SESSION_H

#include <stdio.h>

#include "lab/lab.h"

struct weft_lab_machine {
    unsigned cpus;        /* CPUs this process may run on */
    unsigned cpus_online; /* CPUs the system has online */
    char cpu_model[128];
    char kernel[256]; /* "Linux 6.1.0 x86_64" */
    char compiler[128];
    char build[32]; /* "plain", "tsan" or "asan" */
    bool virtualized;
    double memory_mb;
    double load_average; /* 1-minute load average when the run started */
};

struct weft_lab_entry {
    const struct weft_lab_experiment *exp;
    struct weft_lab_result *res;
};

struct weft_lab_session {
    enum weft_lab_mode mode;
    uint64_t seed;
    struct weft_lab_machine machine;
    struct weft_lab_entry *entries;
    unsigned n;
    double seconds;
};

/* Fill *m from the system (sysfs, /proc, uname) and the build. */
void weft_lab_machine_probe(struct weft_lab_machine *m);
const char *weft_lab_mode_name(enum weft_lab_mode mode);
const char *weft_lab_verdict_name(const struct weft_lab_result *r);

void weft_lab_print_header(FILE *out, const struct weft_lab_session *s);
void weft_lab_print_entry(FILE *out, const struct weft_lab_entry *e);
void weft_lab_print_summary(FILE *out, const struct weft_lab_session *s);
void weft_lab_print_json(FILE *out, const struct weft_lab_session *s);

/* Write dir/index.html (and an SVG plot per experiment when gnuplot is
 * installed). 0 or a negative errno; *why names what failed. */
int weft_lab_write_report(const char *dir, const struct weft_lab_session *s, const char **why);

#endif /* WEFT_TOOLS_LAB_SESSION_H */
