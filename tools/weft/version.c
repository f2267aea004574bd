/* version.c - `weft version`: the library version this command was built with. */
#include <stdio.h>

#include "weft.h"
#include "cmd.h"

static int run(int argc, char **argv)
{
    (void)argv;
    if (argc > 1) {
        fprintf(stderr, "weft version: takes no arguments\n");
        return 2;
    }
    printf("weft %s\n", weft_version());
    return 0;
}

const struct weft_cmd weft_cmd_version = {"version", "print the version", run};
