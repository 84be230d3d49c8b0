// CRC-32s of a checkpoint's root attributes (format 1.1). HDF5 checksums datasets (Fletcher-32)
// but not attribute values, so an edited model_config or tokenizer would load without a word.
// The table is itself a root attribute, "attribute_crc32", one text line per attribute:
//   "%08x NAME\n"   CRC-32 of NAME, a 0 byte, then the value's bytes as stored (the file's own type)
// sorted by name, and a last line "%08x\n": the CRC-32 of the lines above it, so a damaged table
// is told apart from a damaged attribute. Used by checkpoints/checkpoint.c; files are hid_t.
#pragma once
#include <stdint.h>

#define CT_CKPT_ATTRIBUTE_CRC32 "attribute_crc32"

// The table over every root attribute of `file` but itself (free with ct_free), or NULL + error.
char *ct_attribute_checksums_compute(int64_t file, const char *path);
// Checks every root attribute of `file` against the table: each listed one present and equal,
// none unlisted. Sets *n_checked. 0, or -1 + error naming `path` and the attribute.
int ct_attribute_checksums_verify(int64_t file, const char *path, int *n_checked);
