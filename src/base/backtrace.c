/*
 * backtrace.c - capturing call stacks and turning addresses into
 * "function (file:line)" with elfutils' libdw.
 *
 * Capture is cheap enough for rare events (a new lock-order edge, a report);
 * symbolisation is slow and happens only when a report is printed. The
 * libdw session is rebuilt for each batch so modules loaded with dlopen()
 * since the last report are found.
 */
#include <dlfcn.h>
#include <elfutils/libdwfl.h>
#include <execinfo.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "internal/backtrace.h"
#include "internal/rawlock.h"

int weft__backtrace(void **frames, int max, int skip)
{
    void *buf[WEFT__BT_MAX + 8];
    int want = max + skip + 1;
    if (want > (int)(sizeof buf / sizeof buf[0]))
        want = (int)(sizeof buf / sizeof buf[0]);
    int n = backtrace(buf, want);
    int out = 0;
    for (int i = skip + 1; i < n && out < max; i++)
        frames[out++] = buf[i];
    return out;
}

static weft__rawlock_t weft__dwfl_lock = WEFT__RAWLOCK_INIT;
static Dwfl *weft__dwfl;

static Dwfl *weft__dwfl_open(void)
{
    static char *debuginfo_path;
    static const Dwfl_Callbacks cb = {
        .find_elf = dwfl_linux_proc_find_elf,
        .find_debuginfo = dwfl_standard_find_debuginfo,
        .debuginfo_path = &debuginfo_path,
    };
    Dwfl *d = dwfl_begin(&cb);
    if (d == NULL)
        return NULL;
    dwfl_report_begin(d);
    if (dwfl_linux_proc_report(d, getpid()) != 0 || dwfl_report_end(d, NULL, NULL) != 0) {
        dwfl_end(d);
        return NULL;
    }
    return d;
}

void weft__symbolize_begin(void)
{
    weft__rawlock_lock(&weft__dwfl_lock);
    weft__dwfl = weft__dwfl_open();
}

void weft__symbolize_end(void)
{
    if (weft__dwfl != NULL)
        dwfl_end(weft__dwfl);
    weft__dwfl = NULL;
    weft__rawlock_unlock(&weft__dwfl_lock);
}

static const char *weft__basename(const char *path)
{
    const char *s = strrchr(path, '/');
    return s != NULL ? s + 1 : path;
}

/* Fallback without debug information: the dynamic symbol table. */
static void weft__symbolize_dladdr(void *pc, weft__frame_t *f)
{
    Dl_info info;
    if (dladdr(pc, &info) != 0) {
        if (info.dli_sname != NULL)
            snprintf(f->function, sizeof f->function, "%s", info.dli_sname);
        if (info.dli_fname != NULL)
            snprintf(f->module, sizeof f->module, "%s", weft__basename(info.dli_fname));
    }
}

void weft__symbolize(void *pc, int is_return_address, weft__frame_t *f)
{
    memset(f, 0, sizeof *f);
    f->pc = pc;
    /* A return address points after the call: look up the call itself. */
    Dwarf_Addr a = (Dwarf_Addr)(uintptr_t)pc - (is_return_address ? 1 : 0);
    Dwfl_Module *mod = weft__dwfl != NULL ? dwfl_addrmodule(weft__dwfl, a) : NULL;
    if (mod == NULL) {
        weft__symbolize_dladdr(pc, f);
        return;
    }
    const char *mname = dwfl_module_info(mod, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
    if (mname != NULL)
        snprintf(f->module, sizeof f->module, "%s", weft__basename(mname));
    const char *fn = dwfl_module_addrname(mod, a);
    if (fn != NULL)
        snprintf(f->function, sizeof f->function, "%s", fn);
    Dwfl_Line *line = dwfl_module_getsrc(mod, a);
    int lineno = 0;
    const char *file = line != NULL ? dwfl_lineinfo(line, NULL, &lineno, NULL, NULL, NULL) : NULL;
    if (file != NULL) {
        snprintf(f->file, sizeof f->file, "%s", weft__basename(file));
        f->line = lineno;
    }
    if (f->function[0] == 0)
        weft__symbolize_dladdr(pc, f);
}

int weft__frame_format(const weft__frame_t *f, char *buf, size_t len)
{
    const char *fn = f->function[0] ? f->function : "??";
    if (f->file[0])
        return snprintf(buf, len, "%s (%s:%d)", fn, f->file, f->line);
    if (f->module[0])
        return snprintf(buf, len, "%s (%s+%p)", fn, f->module, f->pc);
    return snprintf(buf, len, "%s (%p)", fn, f->pc);
}

/* Frames inside weft itself and libc's thread start are noise in reports. */
int weft__frame_is_internal(const weft__frame_t *f)
{
    static const char *const prefixes[] = {"weft__", "weft_mutex_", "weft_rwlock_",
                                           "weft_fairlock_", "weft_sem_", "weft_cond_",
                                           "weft_preload_", "pthread_mutex_", "pthread_rwlock_",
                                           "pthread_cond_", "sem_", "__pthread_", "pthread_once",
                                           "__sem_"};
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++)
        if (strncmp(f->function, prefixes[i], strlen(prefixes[i])) == 0)
            return 1;
    return 0;
}
