/* cmd.h - the subcommands of the weft command, one file each. */
#ifndef WEFT_TOOLS_CMD_H
#define WEFT_TOOLS_CMD_H

struct weft_cmd {
    const char *name;
    const char *summary;
    /* argv[0] is the subcommand's name. Returns the exit status. */
    int (*run)(int argc, char **argv);
};

extern const struct weft_cmd weft_cmd_version;
extern const struct weft_cmd weft_cmd_check;
extern const struct weft_cmd weft_cmd_lab;

#endif
