/*
 * checks.c - lets an experiment switch weft's check layer on and keep the
 * reports it makes, so the lab can show them (result.check_report) and
 * count them (metrics check_reports and check_reports_<kind>).
 *
 * Reports arrive on whichever thread found the problem, possibly several at
 * once, so the capture state is guarded by a pthread mutex (the reporter
 * must not block on weft locks; a plain pthread mutex is outside what the
 * check layer watches). Each experiment runs in its own process, so turning
 * checking on for the rest of the process affects that experiment only.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "weft.h"
#include "weft/check.h"
#include "lab/lab.h"

#define MAX_KINDS 8

static struct {
    pthread_mutex_t mu;
    struct weft_lab_result *res; /* where report texts go */
    unsigned total, dropped;     /* reports seen; reports that did not fit */
    unsigned nkinds;
    char kind[MAX_KINDS][32];
    unsigned count[MAX_KINDS];
} cap = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void count_kind(const char *kind)
{
    for (unsigned i = 0; i < cap.nkinds; i++)
        if (strcmp(cap.kind[i], kind) == 0) {
            cap.count[i]++;
            return;
        }
    if (cap.nkinds < MAX_KINDS) {
        snprintf(cap.kind[cap.nkinds], sizeof cap.kind[0], "%s", kind);
        cap.count[cap.nkinds++] = 1;
    }
}

/* Keep whole reports only, in arrival order, while they fit. */
static void capture(const weft_check_report_t *r, void *arg)
{
    (void)arg;
    pthread_mutex_lock(&cap.mu);
    cap.total++;
    count_kind(r->kind != NULL ? r->kind : "unknown");
    char *buf = cap.res->check_report;
    const char *text = r->text + strspn(r->text, "\n"); /* no leading blank lines */
    size_t len = strlen(buf), need = strlen(text) + 1;
    if (len + need < sizeof cap.res->check_report)
        snprintf(buf + len, sizeof cap.res->check_report - len, "%s%s", len ? "\n" : "", text);
    else
        cap.dropped++;
    pthread_mutex_unlock(&cap.mu);
}

void weft_lab_check_begin(struct weft_lab_ctx *ctx)
{
    pthread_mutex_lock(&cap.mu);
    cap.res = ctx->res;
    pthread_mutex_unlock(&cap.mu);
    weft_check_set_reporter(capture, NULL);
    weft_check_enable();
}

unsigned weft_lab_check_collect(struct weft_lab_ctx *ctx)
{
    pthread_mutex_lock(&cap.mu);
    unsigned total = cap.total;
    weft_lab_metric(ctx, "check_reports", total);
    for (unsigned i = 0; i < cap.nkinds; i++) {
        char key[64];
        snprintf(key, sizeof key, "check_reports_%s", cap.kind[i]);
        for (char *p = key; *p != '\0'; p++)
            *p = *p == '-' ? '_' : *p;
        weft_lab_metric(ctx, key, cap.count[i]);
    }
    if (cap.dropped > 0)
        weft_lab_note(ctx, "%u more check-layer report%s did not fit in the output.", cap.dropped,
                      cap.dropped == 1 ? "" : "s");
    pthread_mutex_unlock(&cap.mu);
    return total;
}

unsigned weft_lab_check_count(const char *kind)
{
    pthread_mutex_lock(&cap.mu);
    unsigned n = 0;
    for (unsigned i = 0; i < cap.nkinds; i++)
        if (strcmp(cap.kind[i], kind) == 0)
            n = cap.count[i];
    pthread_mutex_unlock(&cap.mu);
    return n;
}
