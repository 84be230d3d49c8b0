// Typed configuration from JSON, driven by a schema.
//
// A config file is a JSON object of sections, each an object of keys:
//     {"run": {"seed": 7}, "optim": {"lr": 3e-4}}
// Every key is declared once in a schema (type, default, range, documentation) and lands in
// a field of a plain C struct. Loading fills defaults, then applies the file, then command-line
// overrides (--section.key=value). Anything unknown, of the wrong type or out of range is an
// error that names the file (or "command line"), the key and what is allowed; nothing is
// silently ignored. The schema also prints the effective config and the key reference.
#pragma once
#include <stddef.h>
#include <stdio.h>

typedef enum {
    CT_CFG_INT,     // JSON integer -> int or int64_t field (by field size), range [min, max]
    CT_CFG_FLOAT,   // JSON number  -> float or double field, range [min, max]
    CT_CFG_BOOL,    // JSON true/false -> int field (0/1)
    CT_CFG_STRING,  // JSON string  -> char[N] field (at most N-1 bytes)
    CT_CFG_ENUM,    // JSON string, one of choices "a|b|c" -> int field holding the index
    CT_CFG_LIST,    // JSON array of strings (or one string) -> char[N] field, comma-separated
    CT_CFG_NUMBERS, // JSON array of numbers -> char[N] field, comma-separated, each as text that reads back exactly
} CtConfigType;

typedef struct {
    const char *key;      // "section.name"
    CtConfigType type;
    size_t offset;        // of the field in the config struct
    size_t size;          // of the field
    const char *def;      // the default, written as on the command line ("3e-4", "true", "auto")
    double min, max;      // INT and FLOAT: allowed range, inclusive
    const char *choices;  // ENUM: "cpu|cuda|auto" (the field holds the index)
    const char *doc;      // one sentence for the key reference
} CtConfigKey;

typedef struct {
    const char *section;
    const char *doc;
} CtConfigSection;

typedef struct {
    const CtConfigSection *sections;
    int n_sections;
    const CtConfigKey *keys;
    int n_keys;
} CtConfigSchema;

#define CT_FIELD(type, field) offsetof(type, field), sizeof(((type *)0)->field)
#define CT_CFG_KEY_INT(type, field, key, def, lo, hi, doc) {key, CT_CFG_INT, CT_FIELD(type, field), def, lo, hi, NULL, doc}
#define CT_CFG_KEY_FLOAT(type, field, key, def, lo, hi, doc) {key, CT_CFG_FLOAT, CT_FIELD(type, field), def, lo, hi, NULL, doc}
#define CT_CFG_KEY_BOOL(type, field, key, def, doc) {key, CT_CFG_BOOL, CT_FIELD(type, field), def, 0, 1, NULL, doc}
#define CT_CFG_KEY_STRING(type, field, key, def, doc) {key, CT_CFG_STRING, CT_FIELD(type, field), def, 0, 0, NULL, doc}
#define CT_CFG_KEY_LIST(type, field, key, def, doc) {key, CT_CFG_LIST, CT_FIELD(type, field), def, 0, 0, NULL, doc}
#define CT_CFG_KEY_NUMBERS(type, field, key, def, doc) {key, CT_CFG_NUMBERS, CT_FIELD(type, field), def, 0, 0, NULL, doc}
#define CT_CFG_KEY_ENUM(type, field, key, def, choices, doc) {key, CT_CFG_ENUM, CT_FIELD(type, field), def, 0, 0, choices, doc}

// Checks the schema itself (defaults parse and lie in range, keys are unique and belong to a
// declared section). Failing it is a bug in ctrain, so it is fatal.
void ct_config_validate_schema(const CtConfigSchema *schema);

void ct_config_set_defaults(const CtConfigSchema *schema, void *cfg);
// Applies a JSON file on top of what cfg holds. Returns 0, or -1 + error.
int ct_config_apply_file(const CtConfigSchema *schema, void *cfg, const char *path);
// Applies JSON text; `source` names it in errors (usually the file path).
int ct_config_apply_text(const CtConfigSchema *schema, void *cfg, const char *text, const char *source);
// Applies one --section.key=value override. Returns 0, or -1 + error.
int ct_config_apply_override(const CtConfigSchema *schema, void *cfg, const char *key, const char *value);

// The effective config as pretty JSON (every key, defaults included); caller frees with free().
char *ct_config_to_json(const CtConfigSchema *schema, const void *cfg);
// The key reference: one line per key with type, default, allowed values and doc; as a
// Markdown table when markdown != 0 (docs/config.md is this output).
void ct_config_print_reference(const CtConfigSchema *schema, FILE *out, int markdown);

const CtConfigKey *ct_config_find_key(const CtConfigSchema *schema, const char *key);
