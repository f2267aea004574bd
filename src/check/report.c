/*
 * report.c - turning what the detectors found into reports that teach:
 * a title, the chain, both acquisition sites with symbolised stacks, and an
 * interleaving that hangs (the lockdep shape; see docs/check.md).
 *
 * Where reports go: the callback set with weft_check_set_reporter(), else
 * the file named by WEFT_CHECK_OUTPUT (appended), else stderr. With
 * WEFT_CHECK_FORMAT=json each report is one JSON object on one line instead
 * of text. WEFT_CHECK_STATUS names a file that gets one line per report
 * (how `weft check` learns that something was found). Each distinct problem
 * is reported once per process.
 */
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check/check_internal.h"
#include "weft/check.h"

static weft_check_reporter_fn weft__ck_fn; /* protected by weft__ck_out_lock */
static void *weft__ck_fn_arg;
static weft__rawlock_t weft__ck_out_lock = WEFT__RAWLOCK_INIT;

int weft_check_set_reporter(weft_check_reporter_fn fn, void *arg)
{
    weft__rawlock_lock(&weft__ck_out_lock);
    weft__ck_fn = fn;
    weft__ck_fn_arg = arg;
    weft__rawlock_unlock(&weft__ck_out_lock);
    return 0;
}

/* ---- once per problem ----------------------------------------------------- */

#define WEFT__CK_SEEN 1024
static uint64_t weft__ck_seen[WEFT__CK_SEEN]; /* protected by weft__ck_out_lock */
static unsigned weft__ck_nseen;
static unsigned weft__ck_writing; /* atomic: reports begun and not yet emitted */

bool weft__ck_report_once(uint64_t key)
{
    bool fresh = true;
    weft__rawlock_lock(&weft__ck_out_lock);
    for (unsigned i = 0; i < weft__ck_nseen && fresh; i++)
        fresh = weft__ck_seen[i] != key;
    if (fresh && weft__ck_nseen < WEFT__CK_SEEN)
        weft__ck_seen[weft__ck_nseen++] = key;
    if (fresh)
        __atomic_fetch_add(&weft__ck_writing, 1, __ATOMIC_SEQ_CST);
    weft__rawlock_unlock(&weft__ck_out_lock);
    return fresh;
}

/* ---- growable text -------------------------------------------------------- */

static void weft__ck_vappend(char **s, size_t *len, size_t *cap, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        return;
    if (*len + (size_t)n + 1 > *cap) {
        size_t c = (*cap ? *cap * 2 : 1024);
        while (c < *len + (size_t)n + 1)
            c *= 2;
        char *p = realloc(*s, c);
        if (p == NULL)
            return;
        *s = p;
        *cap = c;
    }
    vsnprintf(*s + *len, *cap - *len, fmt, ap);
    *len += (size_t)n;
}

void weft__ck_printf(weft__ckbuf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    weft__ck_vappend(&b->text, &b->tlen, &b->tcap, fmt, ap);
    va_end(ap);
}

void weft__ck_jprintf(weft__ckbuf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    weft__ck_vappend(&b->json, &b->jlen, &b->jcap, fmt, ap);
    va_end(ap);
}

/* A JSON string literal, escaped. */
void weft__ck_jstr(weft__ckbuf_t *b, const char *s)
{
    weft__ck_jprintf(b, "\"");
    for (; s != NULL && *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            weft__ck_jprintf(b, "\\%c", c);
        else if (c < 0x20)
            weft__ck_jprintf(b, "\\u%04x", c);
        else
            weft__ck_jprintf(b, "%c", c);
    }
    weft__ck_jprintf(b, "\"");
}

/* A stack in both forms: indented lines of text, a JSON array of frames.
 * weft's own frames are dropped: the user's code is what matters. */
void weft__ck_stack(weft__ckbuf_t *b, void *const *bt, int n, const char *indent)
{
    weft__ck_jprintf(b, "[");
    int shown = 0;
    for (int i = 0; i < n && shown < 8; i++) {
        weft__frame_t f;
        weft__symbolize(bt[i], 1, &f);
        if (weft__frame_is_internal(&f) && shown == 0)
            continue;
        if (strcmp(f.function, "start_thread") == 0 || strncmp(f.function, "__clone", 7) == 0 ||
            strncmp(f.function, "__libc_start", 12) == 0 || strcmp(f.function, "_start") == 0)
            break; /* below main or the thread's start routine: noise */
        char line[320];
        weft__frame_format(&f, line, sizeof line);
        weft__ck_printf(b, "%s#%d %s\n", indent, shown, line);
        weft__ck_jprintf(b, "%s{\"function\":", shown ? "," : "");
        weft__ck_jstr(b, f.function[0] ? f.function : "??");
        weft__ck_jprintf(b, ",\"file\":");
        weft__ck_jstr(b, f.file);
        weft__ck_jprintf(b, ",\"line\":%d}", f.line);
        shown++;
    }
    if (shown == 0)
        weft__ck_printf(b, "%s(no stack)\n", indent);
    weft__ck_jprintf(b, "]");
}

/* ---- output --------------------------------------------------------------- */

static void weft__ck_write_all(int fd, const char *s, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, s, n);
        if (w <= 0)
            return;
        s += w;
        n -= (size_t)w;
    }
}

static void weft__ck_append_file(const char *path, const char *s, size_t n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0)
        return;
    weft__ck_write_all(fd, s, n);
    close(fd);
}

static void weft__ck_deliver(weft__ckbuf_t *b, const char *kind, const char *title)
{
    const char *fmt = getenv("WEFT_CHECK_FORMAT");
    bool json = fmt != NULL && strcmp(fmt, "json") == 0;
    const char *out = getenv("WEFT_CHECK_OUTPUT");
    weft__rawlock_lock(&weft__ck_out_lock);
    if (weft__ck_fn != NULL) {
        weft_check_report_t r = {kind, title, b->text, b->json};
        weft__ck_fn(&r, weft__ck_fn_arg);
    } else {
        if (json)
            weft__ck_jprintf(b, "\n"); /* one JSON object per line */
        const char *s = json ? b->json : b->text;
        size_t n = json ? b->jlen : b->tlen;
        if (out != NULL && out[0])
            weft__ck_append_file(out, s, n);
        else
            weft__ck_write_all(STDERR_FILENO, s, n);
    }
    const char *status = getenv("WEFT_CHECK_STATUS");
    if (status != NULL && status[0]) {
        char line[64];
        int n = snprintf(line, sizeof line, "%s\n", kind);
        weft__ck_append_file(status, line, (size_t)n);
    }
    weft__rawlock_unlock(&weft__ck_out_lock);
}

void weft__ck_emit(weft__ckbuf_t *b, const char *kind, const char *title)
{
    weft__ck_jprintf(b, "}");
    weft__ck_deliver(b, kind, title);
    __atomic_fetch_add(&weft__ck.reports, 1, __ATOMIC_RELAXED);
    __atomic_fetch_sub(&weft__ck_writing, 1, __ATOMIC_SEQ_CST);
    free(b->text);
    free(b->json);
    b->text = b->json = NULL;
}

/*
 * A deadlock was reported and the caller cannot return an error (a void
 * lock, or a pthread program): waiting on would hang forever. Under
 * `weft check` (WEFT_CHECK_ON_DEADLOCK=exit) the program exits with 66;
 * otherwise it aborts, leaving a core to inspect.
 */
void weft__check_stop_hang(void)
{
    /* Another thread may be writing its report of the same deadlock: let it
     * finish (for at most two seconds) before the process ends. */
    for (int i = 0; i < 2000 && __atomic_load_n(&weft__ck_writing, __ATOMIC_SEQ_CST) != 0; i++)
        usleep(1000);
    const char *act = getenv("WEFT_CHECK_ON_DEADLOCK");
    if (act != NULL && strcmp(act, "exit") == 0)
        _exit(66);
    if (act != NULL && strcmp(act, "wait") == 0)
        return;
    abort();
}

/*
 * A report composed elsewhere (the pools' deadlock reports) delivered like
 * every other: to the reporter, WEFT_CHECK_OUTPUT or stderr, counted, and
 * seen by `weft check`. The JSON form carries the text whole. An identical
 * text is reported once.
 */
void weft__check_report_text(const char *kind, const char *title, const char *text)
{
    uint64_t key = 1469598103934665603ull;
    for (const char *c = text; *c; c++)
        key = (key ^ (unsigned char)*c) * 1099511628211ull;
    if (!weft__ck_report_once(key))
        return;
    weft__ckbuf_t b = {0};
    weft__ck_printf(&b, "%s", text);
    weft__ck_jprintf(&b, "{\"kind\":");
    weft__ck_jstr(&b, kind);
    weft__ck_jprintf(&b, ",\"title\":");
    weft__ck_jstr(&b, title);
    weft__ck_jprintf(&b, ",\"text\":");
    weft__ck_jstr(&b, text);
    weft__ck_emit(&b, kind, title);
}
