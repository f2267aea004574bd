/*
 * check.c - `weft check [OPTIONS] -- PROG ARGS...`: runs an unmodified
 * program under the hazard detectors (libweft-preload.so) and exits with
 * the program's own status when nothing was found, 66 when anything was
 * reported (a deadlock that would hang also ends the program with 66).
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cmd.h"
#include "weft.h"

#define WEFT_CHECK_FOUND 66

static void check_usage(FILE *to)
{
    fprintf(to, "usage: weft check [--json] [--output FILE] [--] PROG [ARGS...]\n"
                "  runs PROG with weft's hazard detectors watching its pthread locks,\n"
                "  semaphores and once calls; reports go to stderr (or FILE).\n"
                "  --json         reports as JSON lines instead of text\n"
                "  --output FILE  append reports to FILE\n"
                "  exit status: PROG's own when nothing was reported, 66 otherwise\n");
}

/* libweft-preload.so beside this binary (build tree), in ../lib of an
 * installed tree, or where WEFT_PRELOAD says. */
static int find_preload(char *out, size_t len)
{
    const char *env = getenv("WEFT_PRELOAD");
    if (env != NULL && env[0]) {
        snprintf(out, len, "%s", env);
        return access(out, R_OK) == 0 ? 0 : -ENOENT;
    }
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
        return -ENOENT;
    self[n] = 0;
    char *slash = strrchr(self, '/');
    if (slash != NULL)
        *slash = 0;
    static const char *const rel[] = {"libweft-preload.so", "../lib/libweft-preload.so",
                                      "../lib/x86_64-linux-gnu/libweft-preload.so",
                                      "../lib64/libweft-preload.so"};
    for (size_t i = 0; i < sizeof rel / sizeof rel[0]; i++) {
        int w = snprintf(out, len, "%s/%s", self, rel[i]);
        if (w > 0 && (size_t)w < len && access(out, R_OK) == 0)
            return 0;
    }
    return -ENOENT;
}

static void set_preload(const char *lib)
{
    const char *old = getenv("LD_PRELOAD");
    size_t n = strlen(lib) + (old ? strlen(old) : 0) + 2;
    char *v = malloc(n);
    if (v == NULL)
        return;
    snprintf(v, n, "%s%s%s", lib, old && old[0] ? ":" : "", old ? old : "");
    setenv("LD_PRELOAD", v, 1);
    free(v);
}

static unsigned count_lines(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return 0;
    unsigned n = 0;
    for (int c; (c = fgetc(f)) != EOF;)
        n += c == '\n';
    fclose(f);
    return n;
}

static int run_child(char **argv)
{
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "weft check: fork: %s\n", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        execvp(argv[0], argv);
        fprintf(stderr, "weft check: cannot run '%s': %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    /* The child gets terminal signals itself; we only wait for it. */
    signal(SIGINT, SIG_IGN);
    signal(SIGQUIT, SIG_IGN);
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return -1;
    return st;
}

static int run(int argc, char **argv)
{
    int i = 1;
    bool json = false;
    const char *output = NULL;
    for (; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0) {
            i++;
            break;
        } else if (strcmp(argv[i], "--json") == 0) {
            json = true;
        } else if (strcmp(argv[i], "--output") == 0 && i + 1 < argc) {
            output = argv[++i];
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            check_usage(stdout);
            return 0;
        } else if (argv[i][0] == '-') {
            fprintf(stderr, "weft check: unknown option '%s' (try 'weft check --help')\n",
                    argv[i]);
            return 2;
        } else {
            break;
        }
    }
    if (i >= argc) {
        fprintf(stderr, "weft check: no program given (usage: weft check [--json] -- PROG ARGS)\n");
        return 2;
    }
    char lib[PATH_MAX];
    if (find_preload(lib, sizeof lib) != 0) {
        fprintf(stderr, "weft check: libweft-preload.so not found (set WEFT_PRELOAD)\n");
        return 2;
    }
    char status[] = "/tmp/weft-check-XXXXXX";
    int fd = mkstemp(status);
    if (fd < 0) {
        fprintf(stderr, "weft check: mkstemp: %s\n", strerror(errno));
        return 2;
    }
    close(fd);
    set_preload(lib);
    setenv("WEFT_CHECK", "1", 1);
    setenv("WEFT_CHECK_ON_DEADLOCK", "exit", 1);
    setenv("WEFT_CHECK_STATUS", status, 1);
    if (json)
        setenv("WEFT_CHECK_FORMAT", "json", 1);
    if (output != NULL)
        setenv("WEFT_CHECK_OUTPUT", output, 1);
    int st = run_child(argv + i);
    unsigned reports = count_lines(status);
    unlink(status);
    if (st < 0)
        return 2;
    if (reports > 0) {
        fprintf(stderr, "weft check: %u problem%s reported\n", reports, reports == 1 ? "" : "s");
        return WEFT_CHECK_FOUND;
    }
    if (WIFSIGNALED(st))
        return 128 + WTERMSIG(st);
    return WEXITSTATUS(st);
}

const struct weft_cmd weft_cmd_check = {"check", "run a program under the hazard detectors", run};
