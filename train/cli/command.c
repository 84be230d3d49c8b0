// A command's spec: --help, usage errors and argument parsing. See train/cli/command.h.
#include "train/cli/command.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/error.h"

void ct_cli_print_command_help(const CtCommand *cmd, FILE *out) {
    fprintf(out, "usage: %s\n", cmd->usage);
    if (cmd->description) fprintf(out, "\n%s\n", cmd->description);
    if (cmd->n_options) {
        fprintf(out, "\noptions:\n");
        ct_args_print_options(out, cmd->options, cmd->n_options);
    }
    fprintf(out, "  %-28s %s\n", "--help", "show this help");
    if (cmd->allow_overrides)
        fprintf(out, "  %-28s %s\n", "--SECTION.KEY=VALUE", "override a config key (ctrain config --keys lists them)");
}

int ct_cli_usage_error(const CtCommand *cmd, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "ctrain %s: %s\nusage: %s\n(ctrain %s --help for the options)\n", cmd->name, msg, cmd->usage,
            cmd->name);
    return 2;
}

int ct_cli_fail(void) {
    fflush(stdout);
    fprintf(stderr, "ctrain: %s\n", ct_error_message());
    return 1;
}

int ct_cli_parse(const CtCommand *cmd, int argc, char **argv, CtArgs *args) {
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0) break;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            ct_cli_print_command_help(cmd, stdout);
            return -1;
        }
    }
    if (ct_args_parse(args, cmd->options, cmd->n_options, argc, argv, cmd->allow_overrides) != 0)
        return ct_cli_usage_error(cmd, "%s", ct_error_message());
    if (args->n_positionals < cmd->min_positionals)
        return ct_cli_usage_error(cmd, "missing argument%s", cmd->min_positionals - args->n_positionals > 1 ? "s" : "");
    if (cmd->max_positionals >= 0 && args->n_positionals > cmd->max_positionals)
        return ct_cli_usage_error(cmd, "unexpected argument '%s'", args->positionals[cmd->max_positionals]);
    return 0;
}
