// Documents for the tokenizer trainer, read through data/input/input_reader.h (which the sharder
// uses too): documents from
//   *.txt (or any other name)   the whole file is one document
//   *.jsonl                     one document per line: the line's "text" string
//   *.jsonl.zst, *.txt.zst      the same, zstd-compressed (streamed)
// Blank lines in JSON lines are skipped. A line that is not a JSON object, or has no string
// "text", is an error naming the file and the line.
#pragma once
#include <stddef.h>
#include <stdint.h>

// Called once per document; returns 0 to go on, or -1 + error to stop.
typedef int (*CtDocumentFn)(void *ctx, const uint8_t *text, size_t len);

// Reads every document of `path` in order. 0, or -1 + error.
int ct_read_documents(const char *path, CtDocumentFn fn, void *ctx);
