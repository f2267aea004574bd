/*
 * main.c - the weft command: dispatches to one subcommand per file.
 *
 * Usage errors print one line to stderr and exit 2.
 */
#include <stdio.h>
#include <string.h>

#include "weft.h"
#include "cmd.h"

static const struct weft_cmd *const weft_cmds[] = {
    &weft_cmd_check,
    &weft_cmd_lab,
    &weft_cmd_version,
};

static void usage(FILE *to)
{
    fprintf(to, "usage: weft COMMAND [ARGS]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof weft_cmds / sizeof weft_cmds[0]; i++)
        fprintf(to, "  %-10s %s\n", weft_cmds[i]->name, weft_cmds[i]->summary);
    fprintf(to, "  %-10s %s\n", "help", "this text");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "-h") == 0) {
        usage(stdout);
        return 0;
    }
    for (size_t i = 0; i < sizeof weft_cmds / sizeof weft_cmds[0]; i++)
        if (strcmp(argv[1], weft_cmds[i]->name) == 0)
            return weft_cmds[i]->run(argc - 1, argv + 1);
    fprintf(stderr, "weft: unknown command '%s' (try 'weft help')\n", argv[1]);
    return 2;
}
