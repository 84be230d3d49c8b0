// A ctrain command: its spec, which the shared parser uses for --help, usage errors (exit 2) and
// config overrides, and the helpers every command reports through. The table of commands is in
// train/cli/cli.c, each command's spec in its train/cli/cmd_*.c.
#pragma once
#include <stdio.h>

#include "core/args.h"

typedef struct {
    const char *name;         // "config", or two words for a group: "tokenizer train"
    const char *summary;      // one line for `ctrain --help`
    const char *usage;        // "ctrain config [--print] [CONFIG] [--section.key=value...]"
    const char *description;  // a paragraph for `ctrain <command> --help` (may be NULL)
    const CtOption *options;
    int n_options;
    int allow_overrides;      // accepts --section.key=value
    int min_positionals, max_positionals;
    int (*run)(const CtArgs *args);  // returns the exit status
} CtCommand;

// Parses argv for `cmd`. Returns 0 to run it; -1 when --help was printed (exit 0); 2 after a
// usage error (one line, then the usage, on stderr).
int ct_cli_parse(const CtCommand *cmd, int argc, char **argv, CtArgs *args);
// Prints "ctrain: <message>" for the current error (core/error.h) and returns 1.
int ct_cli_fail(void);
// Prints a usage error for `cmd` and returns 2.
int ct_cli_usage_error(const CtCommand *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

// Prints `ctrain <command> --help`: the usage, the description and the options.
void ct_cli_print_command_help(const CtCommand *cmd, FILE *out);
