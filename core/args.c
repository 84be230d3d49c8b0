#include "core/args.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

int ct_parse_long(const char *s, long *out) {
    if (!s || !*s) return -1;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || *end != '\0') return -1;
    *out = v;
    return 0;
}

int ct_parse_double(const char *s, double *out) {
    if (!s || !*s) return -1;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno != 0 || *end != '\0' || !isfinite(v)) return -1;
    *out = v;
    return 0;
}

static int find_option(const CtOption *options, int n, const char *name, size_t len) {
    for (int i = 0; i < n; i++)
        if (strlen(options[i].name) == len && strncmp(options[i].name, name, len) == 0) return i;
    return -1;
}

static int add_value(CtArgs *args, int option, const char *value) {
    if (args->n_values >= CT_ARGS_MAX) return ct_error_set("too many option values (at most %d)", CT_ARGS_MAX);
    args->values[args->n_values] = value;
    args->value_option[args->n_values++] = option;
    return 0;
}

int ct_args_parse(CtArgs *args, const CtOption *options, int n_options, int argc, char **argv,
                  int allow_overrides) {
    memset(args, 0, sizeof *args);
    args->options = options;
    args->n_options = n_options;
    if (n_options > 64) return ct_error_set("internal: too many options for one command");
    int only_positionals = 0;
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];
        if (only_positionals || strncmp(arg, "--", 2) != 0 || strcmp(arg, "-") == 0) {
            if (arg[0] == '-' && arg[1] && !only_positionals && strcmp(arg, "-") != 0)
                return ct_error_set("unknown option '%s' (options start with two dashes)", arg);
            if (args->n_positionals >= CT_ARGS_MAX) return ct_error_set("too many arguments");
            args->positionals[args->n_positionals++] = arg;
            continue;
        }
        if (arg[2] == '\0') {
            only_positionals = 1;
            continue;
        }
        const char *name = arg + 2;
        const char *eq = strchr(name, '=');
        size_t name_len = eq ? (size_t)(eq - name) : strlen(name);
        int opt = find_option(options, n_options, name, name_len);
        if (opt < 0) {
            int dotted = memchr(name, '.', name_len) != NULL;
            if (dotted && allow_overrides) {
                const char *value = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
                if (!value) return ct_error_set("option '--%.*s' needs a value", (int)name_len, name);
                if (name_len >= sizeof args->key_storage[0])
                    return ct_error_set("option '--%.*s' is too long", (int)name_len, name);
                if (args->n_overrides >= CT_ARGS_MAX) return ct_error_set("too many config overrides");
                memcpy(args->key_storage[args->n_overrides], name, name_len);
                args->key_storage[args->n_overrides][name_len] = '\0';
                args->override_keys[args->n_overrides] = args->key_storage[args->n_overrides];
                args->override_values[args->n_overrides++] = value;
                continue;
            }
            return ct_error_set("unknown option '--%.*s'%s", (int)name_len, name,
                                dotted ? " (this command takes no config overrides)" : "");
        }
        const CtOption *o = &options[opt];
        args->flag_count[opt]++;
        if (!o->metavar) {
            if (eq) return ct_error_set("option '--%s' takes no value", o->name);
            continue;
        }
        if (eq) {
            if (add_value(args, opt, eq + 1) != 0) return -1;
        } else {
            if (i + 1 >= argc || (strncmp(argv[i + 1], "--", 2) == 0 && argv[i + 1][2] != '\0'))
                return ct_error_set("option '--%s' needs a value (%s)", o->name, o->metavar);
            if (add_value(args, opt, argv[++i]) != 0) return -1;
        }
        if (o->multi)
            while (i + 1 < argc && strncmp(argv[i + 1], "--", 2) != 0)
                if (add_value(args, opt, argv[++i]) != 0) return -1;
    }
    return 0;
}

static int option_index(const CtArgs *args, const char *name) {
    int opt = find_option(args->options, args->n_options, name, strlen(name));
    CT_CHECK(opt >= 0, "a command asked for an option it does not declare; this is a bug in ctrain");
    return opt;
}

int ct_args_has(const CtArgs *args, const char *name) { return args->flag_count[option_index(args, name)] > 0; }

const char *ct_args_get(const CtArgs *args, const char *name) {
    int opt = option_index(args, name);
    for (int i = args->n_values - 1; i >= 0; i--)
        if (args->value_option[i] == opt) return args->values[i];
    return NULL;
}

int ct_args_get_all(const CtArgs *args, const char *name, const char **out, int max_out) {
    int opt = option_index(args, name), n = 0;
    for (int i = 0; i < args->n_values; i++)
        if (args->value_option[i] == opt && n < max_out) out[n++] = args->values[i];
    return n;
}

int ct_args_get_long(const CtArgs *args, const char *name, long def, long *out) {
    const char *v = ct_args_get(args, name);
    if (!v) {
        *out = def;
        return 0;
    }
    if (ct_parse_long(v, out) != 0) return ct_error_set("option '--%s' expects an integer, got '%s'", name, v);
    return 0;
}

int ct_args_get_double(const CtArgs *args, const char *name, double def, double *out) {
    const char *v = ct_args_get(args, name);
    if (!v) {
        *out = def;
        return 0;
    }
    if (ct_parse_double(v, out) != 0) return ct_error_set("option '--%s' expects a number, got '%s'", name, v);
    return 0;
}

void ct_args_print_options(FILE *out, const CtOption *options, int n_options) {
    for (int i = 0; i < n_options; i++) {
        char left[96];
        snprintf(left, sizeof left, "--%s%s%s%s", options[i].name, options[i].metavar ? " " : "",
                 options[i].metavar ? options[i].metavar : "", options[i].multi ? "..." : "");
        fprintf(out, "  %-28s %s\n", left, options[i].help);
    }
}
