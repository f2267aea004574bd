/*
 * output.c - the machine facts, and the text and JSON forms of a lab run.
 *
 * Text is for people: per experiment the claim, the table, the verdict and
 * the notes. JSON is one document for machines:
 *   {"machine": {...}, "experiments": [{"name", "claim", "verdict",
 *    "metrics": {...}, "notes", ...}], ...}
 * Numbers that are not finite are written as null (JSON has no NaN).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysinfo.h>
#include <sys/utsname.h>

#include "weft.h"
#include "lab/session.h"

/* ---- machine facts -------------------------------------------------------- */

static void probe_cpuinfo(struct weft_lab_machine *m)
{
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (f == NULL)
        return;
    char line[1024];
    while (fgets(line, sizeof line, f) != NULL) {
        char *colon = strchr(line, ':');
        if (colon == NULL)
            continue;
        if (m->cpu_model[0] == '\0' && strncmp(line, "model name", 10) == 0)
            snprintf(m->cpu_model, sizeof m->cpu_model, "%s", colon + 2);
        if (strncmp(line, "flags", 5) == 0 && strstr(colon, " hypervisor") != NULL)
            m->virtualized = true;
    }
    fclose(f);
    m->cpu_model[strcspn(m->cpu_model, "\n")] = '\0';
}

static const char *build_kind(void)
{
#if defined(__SANITIZE_THREAD__)
    return "tsan";
#elif defined(__SANITIZE_ADDRESS__)
    return "asan";
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
    return "tsan";
#elif __has_feature(address_sanitizer)
    return "asan";
#else
    return "plain";
#endif
#else
    return "plain";
#endif
}

void weft_lab_machine_probe(struct weft_lab_machine *m)
{
    memset(m, 0, sizeof *m);
    m->cpus = weft_cpu_count();
    m->cpus_online = (unsigned)get_nprocs();
    snprintf(m->cpu_model, sizeof m->cpu_model, "%s", "");
    probe_cpuinfo(m);
    if (m->cpu_model[0] == '\0')
        snprintf(m->cpu_model, sizeof m->cpu_model, "unknown");
    struct utsname u;
    if (uname(&u) == 0)
        snprintf(m->kernel, sizeof m->kernel, "%s %s %s", u.sysname, u.release, u.machine);
#if defined(__clang__)
    snprintf(m->compiler, sizeof m->compiler, "clang %s", __clang_version__);
#else
    snprintf(m->compiler, sizeof m->compiler, "gcc %s", __VERSION__);
#endif
    snprintf(m->build, sizeof m->build, "%s", build_kind());
    struct sysinfo si;
    if (sysinfo(&si) == 0)
        m->memory_mb = (double)si.totalram * si.mem_unit / (1024.0 * 1024.0);
    double load[1];
    if (getloadavg(load, 1) == 1)
        m->load_average = load[0];
}

const char *weft_lab_mode_name(enum weft_lab_mode mode)
{
    return mode == WEFT_LAB_QUICK ? "quick" : mode == WEFT_LAB_FULL ? "full" : "default";
}

const char *weft_lab_verdict_name(const struct weft_lab_result *r)
{
    return r->reproduced && r->error == 0 ? "reproduced" : "not reproduced";
}

/* ---- text ------------------------------------------------------------------- */

void weft_lab_print_header(FILE *out, const struct weft_lab_session *s)
{
    const struct weft_lab_machine *m = &s->machine;
    fprintf(out, "weft lab %s: %u experiment%s, %s mode, seed %llu\n", weft_version(), s->n,
            s->n == 1 ? "" : "s", weft_lab_mode_name(s->mode), (unsigned long long)s->seed);
    fprintf(out, "machine: %u CPU%s (%u online), %s%s; %s; %s; %s build; load %.2f\n", m->cpus,
            m->cpus == 1 ? "" : "s", m->cpus_online, m->cpu_model,
            m->virtualized ? " (virtual machine)" : "", m->kernel, m->compiler, m->build,
            m->load_average);
}

/* A number in at most ~10 characters: integers plainly, others with 3-4
 * significant digits. */
static void fmt_num(char *buf, size_t size, double v)
{
    if (!isfinite(v))
        snprintf(buf, size, "-");
    else if (v == floor(v) && fabs(v) < 1e10)
        snprintf(buf, size, "%.0f", v);
    else if (fabs(v) >= 100)
        snprintf(buf, size, "%.1f", v);
    else
        snprintf(buf, size, "%.3g", v);
}

static void print_table(FILE *out, const struct weft_lab_table *t)
{
    if (t->nrows == 0)
        return;
    unsigned lw = 8;
    for (unsigned r = 0; r < t->nrows; r++)
        if (strlen(t->row[r]) > lw)
            lw = (unsigned)strlen(t->row[r]);
    fprintf(out, "  %s\n  %-*s", t->title, (int)lw, "");
    for (unsigned c = 0; c < t->ncols; c++)
        fprintf(out, " %14s", t->col[c]);
    fputc('\n', out);
    for (unsigned r = 0; r < t->nrows; r++) {
        fprintf(out, "  %-*s", (int)lw, t->row[r]);
        for (unsigned c = 0; c < t->ncols; c++) {
            char num[32];
            fmt_num(num, sizeof num, t->cell[r][c]);
            fprintf(out, " %14s", num);
        }
        fputc('\n', out);
    }
}

/* Print text after a label, wrapped at about 96 columns, continuation lines
 * indented under the text. */
static void print_wrapped(FILE *out, const char *label, const char *text)
{
    const unsigned width = 96, indent = (unsigned)strlen(label);
    unsigned col = indent;
    fputs(label, out);
    while (*text != '\0') {
        size_t word = strcspn(text, " ");
        if (col > indent && col + 1 + word > width) {
            fprintf(out, "\n%*s", (int)indent, "");
            col = indent;
        } else if (col > indent) {
            fputc(' ', out);
            col++;
        }
        fwrite(text, 1, word, out);
        col += (unsigned)word;
        text += word;
        text += strspn(text, " ");
    }
    fputc('\n', out);
}

void weft_lab_print_entry(FILE *out, const struct weft_lab_entry *e)
{
    const struct weft_lab_result *r = e->res;
    fprintf(out, "\n== %s  (%.1f s)\n", e->exp->name, r->seconds);
    print_wrapped(out, "claim: ", e->exp->claim);
    if (r->error != 0)
        fprintf(out, "error: %s (%s)\n", r->error_msg, weft_strerror(r->error));
    print_table(out, &r->table);
    if (r->check_report[0] != '\0')
        fprintf(out, "check report:\n%s\n", r->check_report);
    fprintf(out, "verdict: %s\n", weft_lab_verdict_name(r));
    if (r->notes[0] != '\0')
        print_wrapped(out, "notes: ", r->notes);
}

void weft_lab_print_summary(FILE *out, const struct weft_lab_session *s)
{
    unsigned yes = 0, failed = 0;
    for (unsigned i = 0; i < s->n; i++) {
        yes += s->entries[i].res->reproduced && s->entries[i].res->error == 0;
        failed += s->entries[i].res->error != 0;
    }
    fprintf(out, "\n%u of %u reproduced", yes, s->n);
    if (failed > 0)
        fprintf(out, ", %u could not run", failed);
    fprintf(out, " (%.1f s)\n", s->seconds);
}

/* ---- JSON ------------------------------------------------------------------- */

static void json_str(FILE *out, const char *s)
{
    fputc('"', out);
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(out, "\\%c", *p);
        else if (*p == '\n')
            fputs("\\n", out);
        else if (*p == '\t')
            fputs("\\t", out);
        else if (*p < 0x20)
            fprintf(out, "\\u%04x", *p);
        else
            fputc(*p, out);
    }
    fputc('"', out);
}

static void json_num(FILE *out, double v)
{
    if (!isfinite(v))
        fputs("null", out);
    else if (v == floor(v) && fabs(v) < 9e15)
        fprintf(out, "%.0f", v);
    else
        fprintf(out, "%.6g", v);
}

static void json_machine(FILE *out, const struct weft_lab_machine *m)
{
    fprintf(out, "\"machine\": {\"cpus\": %u, \"cpus_online\": %u, \"cpu_model\": ", m->cpus,
            m->cpus_online);
    json_str(out, m->cpu_model);
    fputs(", \"kernel\": ", out);
    json_str(out, m->kernel);
    fputs(", \"compiler\": ", out);
    json_str(out, m->compiler);
    fputs(", \"build\": ", out);
    json_str(out, m->build);
    fprintf(out, ", \"virtualized\": %s, \"memory_mb\": ", m->virtualized ? "true" : "false");
    json_num(out, m->memory_mb);
    fputs(", \"load_average\": ", out);
    json_num(out, m->load_average);
    fputs("}", out);
}

static void json_table(FILE *out, const struct weft_lab_table *t)
{
    fputs("{\"title\": ", out);
    json_str(out, t->title);
    fputs(", \"columns\": [", out);
    for (unsigned c = 0; c < t->ncols; c++) {
        fputs(c ? ", " : "", out);
        json_str(out, t->col[c]);
    }
    fputs("], \"rows\": [", out);
    for (unsigned r = 0; r < t->nrows; r++) {
        fputs(r ? ", " : "", out);
        fputs("{\"label\": ", out);
        json_str(out, t->row[r]);
        fputs(", \"values\": [", out);
        for (unsigned c = 0; c < t->ncols; c++) {
            fputs(c ? ", " : "", out);
            json_num(out, t->cell[r][c]);
        }
        fputs("]}", out);
    }
    fputs("]}", out);
}

static void json_entry(FILE *out, const struct weft_lab_entry *e)
{
    const struct weft_lab_result *r = e->res;
    fputs("{\"name\": ", out);
    json_str(out, e->exp->name);
    fputs(", \"claim\": ", out);
    json_str(out, e->exp->claim);
    fputs(", \"verdict\": ", out);
    json_str(out, weft_lab_verdict_name(r));
    fputs(", \"metrics\": {", out);
    for (unsigned i = 0; i < r->nmetrics; i++) {
        fputs(i ? ", " : "", out);
        json_str(out, r->metric[i].key);
        fputs(": ", out);
        json_num(out, r->metric[i].value);
    }
    fputs("}, \"notes\": ", out);
    json_str(out, r->notes);
    fputs(", \"seconds\": ", out);
    json_num(out, r->seconds);
    fputs(", \"table\": ", out);
    json_table(out, &r->table);
    fputs(", \"check_report\": ", out);
    json_str(out, r->check_report);
    fputs(", \"error\": ", out);
    if (r->error != 0)
        json_str(out, r->error_msg);
    else
        fputs("null", out);
    fputs("}", out);
}

void weft_lab_print_json(FILE *out, const struct weft_lab_session *s)
{
    fputs("{", out);
    json_machine(out, &s->machine);
    fputs(",\n\"weft_version\": ", out);
    json_str(out, weft_version());
    fprintf(out, ", \"seed\": %llu, \"mode\": \"%s\", \"seconds\": ", (unsigned long long)s->seed,
            weft_lab_mode_name(s->mode));
    json_num(out, s->seconds);
    fputs(",\n\"experiments\": [\n", out);
    for (unsigned i = 0; i < s->n; i++) {
        json_entry(out, &s->entries[i]);
        fputs(i + 1 < s->n ? ",\n" : "\n", out);
    }
    fputs("]}\n", out);
}
