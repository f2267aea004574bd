/*
 * report.c - `weft lab --report DIR`: DIR/index.html with, per experiment,
 * the claim, the verdict, the table, the notes and a plot.
 *
 * Plots are drawn by gnuplot into DIR/NAME.svg from DIR/NAME.dat and
 * DIR/NAME.gp (kept, so a plot can be re-rendered or restyled by hand).
 * Without gnuplot on PATH the page says so and keeps the tables.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "weft.h"
#include "lab/session.h"

/* True if an executable called `prog` is on PATH. */
static bool on_path(const char *prog)
{
    const char *path = getenv("PATH");
    if (path == NULL)
        return false;
    char dir[4096];
    while (*path != '\0') {
        size_t len = strcspn(path, ":");
        if (len > 0 && len < sizeof dir - strlen(prog) - 2) {
            snprintf(dir, sizeof dir, "%.*s/%s", (int)len, path, prog);
            if (access(dir, X_OK) == 0)
                return true;
        }
        path += len + (path[len] == ':');
    }
    return false;
}

/* Quote for a gnuplot double-quoted string. */
static void gp_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s != '\0'; s++) {
        if (*s == '"' || *s == '\\')
            fputc('\\', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

static int write_data(const char *dir, const struct weft_lab_entry *e)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.dat", dir, e->exp->name);
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return -errno;
    const struct weft_lab_table *t = &e->res->table;
    for (unsigned r = 0; r < t->nrows; r++) {
        fprintf(f, "%s", t->row[r]);
        for (unsigned c = 0; c < t->ncols; c++)
            fprintf(f, "\t%.9g", t->cell[r][c]);
        fputc('\n', f);
    }
    return fclose(f) == 0 ? 0 : -errno;
}

static void write_plot_lines(FILE *f, const struct weft_lab_entry *e)
{
    const struct weft_lab_table *t = &e->res->table;
    const struct weft_lab_plot *p = &e->res->plot;
    bool bars = p->kind == WEFT_LAB_PLOT_BARS;
    if (bars)
        fputs("set style data histograms\nset style histogram clustered gap 1\n"
              "set style fill solid 0.85 border -1\nset boxwidth 0.9\n",
              f);
    fputs("plot ", f);
    bool first = true;
    for (unsigned c = 0; c < t->ncols; c++) {
        if (!(p->columns & (1u << c)))
            continue;
        fprintf(f, "%s'%s.dat' using ", first ? "" : ", ", e->exp->name);
        if (bars)
            fprintf(f, "%u:xtic(1) title ", c + 2);
        else
            fprintf(f, "0:%u:xtic(1) with linespoints lw 2 pt 7 title ", c + 2);
        gp_str(f, t->col[c]);
        first = false;
    }
    fputc('\n', f);
}

static int write_script(const char *dir, const struct weft_lab_entry *e)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.gp", dir, e->exp->name);
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return -errno;
    const struct weft_lab_plot *p = &e->res->plot;
    fprintf(f,
            "set terminal svg size 720,380 dynamic font 'sans,11' background rgb 'white'\n"
            "set output '%s.svg'\nset datafile separator '\\t'\nset key outside right top\n"
            "set grid ytics\nset yrange [0:*]\n",
            e->exp->name);
    fputs("set title ", f);
    gp_str(f, e->res->table.title);
    fputs("\nset xlabel ", f);
    gp_str(f, p->xlabel);
    fputs("\nset ylabel ", f);
    gp_str(f, p->ylabel);
    fputc('\n', f);
    if (p->logy)
        fputs("set logscale y\nset yrange [*:*]\n", f);
    write_plot_lines(f, e);
    return fclose(f) == 0 ? 0 : -errno;
}

/* Run `gnuplot NAME.gp` inside dir. 0 when the SVG was written. */
static int run_gnuplot(const char *dir, const char *name)
{
    pid_t pid = fork();
    if (pid < 0)
        return -errno;
    if (pid == 0) {
        char script[512];
        snprintf(script, sizeof script, "%s.gp", name);
        int null = open("/dev/null", O_WRONLY);
        if (null >= 0) {
            dup2(null, STDOUT_FILENO);
            dup2(null, STDERR_FILENO);
        }
        if (chdir(dir) == 0)
            execlp("gnuplot", "gnuplot", script, (char *)NULL);
        _exit(127);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return -errno;
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -EIO;
}

/* Data, script and SVG for one experiment: true when the SVG exists. */
static bool plot_entry(const char *dir, const struct weft_lab_entry *e)
{
    if (e->res->plot.kind == WEFT_LAB_PLOT_NONE || e->res->table.nrows == 0)
        return false;
    if (write_data(dir, e) != 0 || write_script(dir, e) != 0)
        return false;
    return run_gnuplot(dir, e->exp->name) == 0;
}

/* ---- HTML ------------------------------------------------------------------- */

static void html_str(FILE *f, const char *s)
{
    for (; *s != '\0'; s++) {
        switch (*s) {
        case '<':
            fputs("&lt;", f);
            break;
        case '>':
            fputs("&gt;", f);
            break;
        case '&':
            fputs("&amp;", f);
            break;
        case '"':
            fputs("&quot;", f);
            break;
        default:
            fputc(*s, f);
        }
    }
}

static void html_table(FILE *f, const struct weft_lab_table *t)
{
    if (t->nrows == 0)
        return;
    fputs("<table><caption>", f);
    html_str(f, t->title);
    fputs("</caption>\n<tr><th></th>", f);
    for (unsigned c = 0; c < t->ncols; c++) {
        fputs("<th>", f);
        html_str(f, t->col[c]);
        fputs("</th>", f);
    }
    fputs("</tr>\n", f);
    for (unsigned r = 0; r < t->nrows; r++) {
        fputs("<tr><th>", f);
        html_str(f, t->row[r]);
        fputs("</th>", f);
        for (unsigned c = 0; c < t->ncols; c++)
            fprintf(f, "<td>%.6g</td>", t->cell[r][c]);
        fputs("</tr>\n", f);
    }
    fputs("</table>\n", f);
}

static void html_metrics(FILE *f, const struct weft_lab_result *r)
{
    fputs("<details><summary>metrics</summary><table>\n", f);
    for (unsigned i = 0; i < r->nmetrics; i++) {
        fputs("<tr><th>", f);
        html_str(f, r->metric[i].key);
        fprintf(f, "</th><td>%.9g</td></tr>\n", r->metric[i].value);
    }
    fputs("</table></details>\n", f);
}

static void html_entry(FILE *f, const struct weft_lab_entry *e, bool plotted)
{
    const struct weft_lab_result *r = e->res;
    fprintf(f, "<section id=\"%s\"><h2>%s</h2>\n<p class=\"claim\">", e->exp->name, e->exp->name);
    html_str(f, e->exp->claim);
    fprintf(f, "</p>\n<p class=\"verdict %s\">verdict: %s</p>\n",
            r->reproduced && r->error == 0 ? "yes" : "no", weft_lab_verdict_name(r));
    if (r->error != 0) {
        fputs("<p class=\"error\">could not run: ", f);
        html_str(f, r->error_msg);
        fputs("</p>\n", f);
    }
    html_table(f, &r->table);
    if (plotted)
        fprintf(f, "<img src=\"%s.svg\" alt=\"plot of %s\">\n", e->exp->name, e->exp->name);
    if (r->check_report[0] != '\0') {
        fputs("<pre class=\"report\">", f);
        html_str(f, r->check_report);
        fputs("</pre>\n", f);
    }
    fputs("<p class=\"notes\">", f);
    html_str(f, r->notes);
    fputs("</p>\n", f);
    html_metrics(f, r);
    fputs("</section>\n", f);
}

static const char html_style[] =
    "body{font-family:sans-serif;max-width:60em;margin:2em auto;padding:0 1em;color:#222}"
    "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;"
    "padding:.2em .6em;text-align:right}caption{font-weight:bold;text-align:left}"
    ".claim{font-style:italic}.verdict.yes{color:#070}.verdict.no{color:#a40}"
    ".error{color:#b00}pre.report{background:#f4f4f4;padding:.6em}"
    "section{border-top:1px solid #ddd;margin-top:1.5em}img{max-width:100%}";

static void html_head(FILE *f, const struct weft_lab_session *s, bool gnuplot)
{
    const struct weft_lab_machine *m = &s->machine;
    fprintf(f,
            "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>weft lab</title>"
            "<style>%s</style></head><body>\n<h1>weft lab</h1>\n<table>",
            html_style);
    fprintf(f, "<tr><th>CPUs</th><td>%u (%u online)</td></tr><tr><th>CPU</th><td>", m->cpus,
            m->cpus_online);
    html_str(f, m->cpu_model);
    fputs(m->virtualized ? " (virtual machine)" : "", f);
    fputs("</td></tr><tr><th>kernel</th><td>", f);
    html_str(f, m->kernel);
    fputs("</td></tr><tr><th>compiler</th><td>", f);
    html_str(f, m->compiler);
    fprintf(f,
            "</td></tr><tr><th>build</th><td>%s</td></tr><tr><th>load average</th>"
            "<td>%.2f</td></tr><tr><th>mode</th><td>%s</td></tr><tr><th>seed</th><td>%llu"
            "</td></tr><tr><th>weft</th><td>%s</td></tr><tr><th>run time</th><td>%.1f s"
            "</td></tr></table>\n",
            m->build, m->load_average, weft_lab_mode_name(s->mode), (unsigned long long)s->seed,
            weft_version(), s->seconds);
    if (!gnuplot)
        fputs("<p class=\"error\">gnuplot was not found on PATH, so this page has no plots; "
              "install gnuplot (Debian: gnuplot-nox) and run again to get them.</p>\n",
              f);
}

int weft_lab_write_report(const char *dir, const struct weft_lab_session *s, const char **why)
{
    if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
        *why = "cannot create the report directory";
        return -errno;
    }
    bool gnuplot = on_path("gnuplot");
    char path[4096];
    snprintf(path, sizeof path, "%s/index.html", dir);
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        *why = "cannot write index.html";
        return -errno;
    }
    html_head(f, s, gnuplot);
    for (unsigned i = 0; i < s->n; i++)
        html_entry(f, &s->entries[i], gnuplot && plot_entry(dir, &s->entries[i]));
    fputs("</body></html>\n", f);
    if (fclose(f) != 0) {
        *why = "cannot write index.html";
        return -errno;
    }
    return 0;
}
