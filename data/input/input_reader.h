// Input files for the sharder and the tokenizer trainer: .txt, .jsonl, and both compressed as
// .zst (streamed through libzstd, never held whole in memory).
#pragma once
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

// ---- which files ----

typedef struct {
    char **paths;
    int n, cap;
} CtInputList;

// Expands files and folders (walked recursively, hidden entries skipped) into the input files,
// each folder's files sorted by name so the order never depends on the file system. In folders
// only .txt, .jsonl, .json, .txt.zst, .jsonl.zst and .json.zst files are taken; a file named
// directly is taken whatever its name. 0, or -1 + error (a missing path, a folder with no input).
int ct_input_list_collect(CtInputList *list, const char *const *paths, int n_paths);
void ct_input_list_free(CtInputList *list);
int ct_input_is_jsonl(const char *path);  // .jsonl / .json (compressed or not)
int ct_input_is_zst(const char *path);

// ---- reading lines ----

typedef struct {
    char *path;
    FILE *file;
    int zst;
    void *dstream;          // ZSTD_DStream
    unsigned char *in;      // compressed bytes read, not yet decompressed
    size_t in_size, in_pos, in_cap;
    size_t frame_left;      // the last ZSTD_decompressStream result: 0 when a frame just ended
    char *data;             // decompressed bytes not yet returned
    size_t data_start, data_end, data_cap;
    int file_eof;
    uint64_t line_no;       // of the line last returned (1-based)
    uint64_t bytes_read;    // file bytes consumed (compressed when .zst)
    uint64_t bytes_out;     // text bytes returned (with the newlines)
} CtLineReader;

int ct_line_reader_open(CtLineReader *r, const char *path);
// The next line, without its '\n'. Returns 1 with *line (valid until the next call) and *len,
// and *had_newline (may be NULL) saying whether a '\n' ended it; 0 at the end of the file;
// -1 + error for a read failure or damaged compressed data ("PATH: truncated zstd stream").
int ct_line_reader_next(CtLineReader *r, const char **line, size_t *len, int *had_newline);
void ct_line_reader_close(CtLineReader *r);
