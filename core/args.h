// Command-line options, the same way for every command:
//   --name VALUE, --name=VALUE, --flag, and for "multi" options --name V1 V2 ... (until the
//   next argument that starts with "--"). Arguments that are not options are positionals.
//   "--" ends options. Where a command allows it, --section.key=value is collected as a
//   config override (see core/config.h).
// A malformed command line is a usage error: ct_args_parse returns -1 with a one-line message
// ("unknown option '--foo'"), and the CLI prints it with the command's usage and exits 2.
#pragma once
#include <stdio.h>

typedef struct {
    const char *name;     // without dashes: "tokenizer", "allow-special"
    const char *metavar;  // "PATH"; NULL for a flag that takes no value
    const char *help;
    int multi;            // takes one or more values
} CtOption;

#define CT_ARGS_MAX 256

typedef struct {
    const CtOption *options;
    int n_options;
    const char *values[CT_ARGS_MAX];  // every value seen, in order
    int value_option[CT_ARGS_MAX];    // which option each value belongs to
    int n_values;
    int flag_count[64];               // per option: times given
    const char *positionals[CT_ARGS_MAX];
    int n_positionals;
    const char *override_keys[CT_ARGS_MAX];  // "optim.lr"
    const char *override_values[CT_ARGS_MAX];
    int n_overrides;
    char key_storage[CT_ARGS_MAX][128];
} CtArgs;

// allow_overrides: accept --section.key=value (any option name containing a dot).
int ct_args_parse(CtArgs *args, const CtOption *options, int n_options, int argc, char **argv,
                  int allow_overrides);

int ct_args_has(const CtArgs *args, const char *name);          // given at least once
const char *ct_args_get(const CtArgs *args, const char *name);  // the last value, or NULL
int ct_args_get_all(const CtArgs *args, const char *name, const char **out, int max_out);
// Typed getters: the default when absent; -1 + error for a malformed number.
int ct_args_get_long(const CtArgs *args, const char *name, long def, long *out);
int ct_args_get_double(const CtArgs *args, const char *name, double def, double *out);

// "  --tokenizer PATH      help text" lines, aligned.
void ct_args_print_options(FILE *out, const CtOption *options, int n_options);

// Strict number parsing of a whole string: 0, or -1 when s is not entirely a number.
int ct_parse_long(const char *s, long *out);
int ct_parse_double(const char *s, double *out);
