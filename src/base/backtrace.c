/*
 * backtrace.c - capturing call stacks and turning addresses into
 * "function (file:line)" with elfutils' libdw.
 *
 * Capture is cheap enough for rare events (a new lock-order edge, a report);
 * symbolisation is slow and happens only when a report is printed. The
 * libdw session is rebuilt for each batch so modules loaded with dlopen()
 * since the last report are found.
 *
 * libdw is loaded with dlopen() on the first report, not linked: programs
 * that use weft (statically or not) need no extra library, and without
 * libdw (package libdw1) reports fall back to dladdr()'s symbol names.
 */
#include <dlfcn.h>
#include <elfutils/libdwfl.h>
#include <execinfo.h>
#include <stdbool.h>
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

/* The libdw functions used, resolved from libdw.so.1 at first use. */
static struct {
    int tried;
    __typeof__(dwfl_begin) *begin;
    __typeof__(dwfl_end) *end;
    __typeof__(dwfl_report_begin) *report_begin;
    __typeof__(dwfl_report_end) *report_end;
    __typeof__(dwfl_linux_proc_report) *proc_report;
    __typeof__(dwfl_linux_proc_find_elf) *find_elf;
    __typeof__(dwfl_standard_find_debuginfo) *find_debuginfo;
    __typeof__(dwfl_addrmodule) *addrmodule;
    __typeof__(dwfl_module_info) *module_info;
    __typeof__(dwfl_module_addrname) *addrname;
    __typeof__(dwfl_module_getsrc) *getsrc;
    __typeof__(dwfl_lineinfo) *lineinfo;
} weft__dw; /* protected by weft__dwfl_lock */

static weft__rawlock_t weft__dwfl_lock = WEFT__RAWLOCK_INIT;
static Dwfl *weft__dwfl;
static Dwfl_Callbacks weft__dwfl_cb;

#define WEFT__DW(field, name) (weft__dw.field = (__typeof__(weft__dw.field))dlsym(h, #name)) != NULL

/* Caller holds weft__dwfl_lock. True when every function was found. */
static bool weft__dw_load(void)
{
    if (weft__dw.tried)
        return weft__dw.lineinfo != NULL;
    weft__dw.tried = 1;
    void *h = dlopen("libdw.so.1", RTLD_NOW | RTLD_LOCAL);
    if (h == NULL)
        return false;
    bool ok = WEFT__DW(begin, dwfl_begin) && WEFT__DW(end, dwfl_end) &&
              WEFT__DW(report_begin, dwfl_report_begin) &&
              WEFT__DW(report_end, dwfl_report_end) &&
              WEFT__DW(proc_report, dwfl_linux_proc_report) &&
              WEFT__DW(find_elf, dwfl_linux_proc_find_elf) &&
              WEFT__DW(find_debuginfo, dwfl_standard_find_debuginfo) &&
              WEFT__DW(addrmodule, dwfl_addrmodule) && WEFT__DW(module_info, dwfl_module_info) &&
              WEFT__DW(addrname, dwfl_module_addrname) && WEFT__DW(getsrc, dwfl_module_getsrc) &&
              WEFT__DW(lineinfo, dwfl_lineinfo);
    if (!ok)
        weft__dw.lineinfo = NULL;
    return ok;
}

static Dwfl *weft__dwfl_open(void)
{
    static char *debuginfo_path;
    if (!weft__dw_load())
        return NULL;
    weft__dwfl_cb.find_elf = weft__dw.find_elf;
    weft__dwfl_cb.find_debuginfo = weft__dw.find_debuginfo;
    weft__dwfl_cb.debuginfo_path = &debuginfo_path;
    Dwfl *d = weft__dw.begin(&weft__dwfl_cb);
    if (d == NULL)
        return NULL;
    weft__dw.report_begin(d);
    if (weft__dw.proc_report(d, getpid()) != 0 || weft__dw.report_end(d, NULL, NULL) != 0) {
        weft__dw.end(d);
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
        weft__dw.end(weft__dwfl);
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
    Dwfl_Module *mod = weft__dwfl != NULL ? weft__dw.addrmodule(weft__dwfl, a) : NULL;
    if (mod == NULL) {
        weft__symbolize_dladdr(pc, f);
        return;
    }
    const char *mname = weft__dw.module_info(mod, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
    if (mname != NULL)
        snprintf(f->module, sizeof f->module, "%s", weft__basename(mname));
    const char *fn = weft__dw.addrname(mod, a);
    if (fn != NULL)
        snprintf(f->function, sizeof f->function, "%s", fn);
    Dwfl_Line *line = weft__dw.getsrc(mod, a);
    int lineno = 0;
    const char *file =
        line != NULL ? weft__dw.lineinfo(line, NULL, &lineno, NULL, NULL, NULL) : NULL;
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
