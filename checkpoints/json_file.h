// The small JSON files of the formats here (PEFT's adapter_config.json, a safetensors index).
#pragma once

// The file's text, NUL-terminated (at most about 16 MiB of it are read; free with ct_free), or
// NULL + error naming the file.
char *ct_json_file_read(const char *path);
