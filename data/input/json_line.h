// Reading one string field from a JSON line ({"text": "..."}) without building a tree.
// cJSON keeps strings NUL-terminated, which would cut a text at its first \u0000; this reader
// returns the decoded bytes with their length, NULs included. Lone surrogates (\ud800 without
// its pair), which UTF-8 cannot hold, become U+FFFD.
#pragma once
#include <stddef.h>
#include <stdint.h>

// Finds the top-level string field `key` in the JSON object line[0..len) and appends its
// decoded UTF-8 to *out (grown with ct_realloc; *cap its capacity), setting *out_len.
// Returns 0 when found, 1 when the object has no such key (or it is not a string), -1 + error
// ("column N: ...") when the line is not a valid JSON object.
int ct_json_line_string(const char *line, size_t len, const char *key, uint8_t **out, size_t *out_len, size_t *cap);
