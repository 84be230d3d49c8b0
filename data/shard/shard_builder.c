#include "data/shard/shard_builder.h"

#include <cJSON.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/rng.h"
#include "core/timer.h"
#include "data/examples/examples.h"
#include "data/shard/shard_encode.h"
#include "data/tokenizer/bpe_parallel.h"

// One batch of raw documents, their bytes copied into one buffer.
typedef struct {
    char *bytes;
    size_t size, cap;
    size_t *offset, *length;
    int *file;
    uint64_t *line;
    int n, cap_docs;
} RawBatch;

// What the writer needs of one encoded document, kept small: a batch holds tens of thousands of
// documents, and a CtShardEncoded each (own id lists, error text) cost more in allocations and
// fresh pages than encoding a short document does. Its ids lie in the arena of the task that
// encoded it (Slot.arenas), main, chosen and rejected back to back.
typedef struct {
    uint32_t arena;  // the task's arena
    uint8_t failed, empty, unusable;
    size_t at, len[3];   // main, chosen, rejected: len[k] ids (and, sft, mask bytes) from `at` on
    char *fields;        // prompts: the fields JSON kept for the rewards (ct_free)
    size_t fields_len;
    size_t prompt_not_prefix;
    double margin;
    char *error;         // failed or unusable: why (ct_free)
    size_t first_chunk, n_chunks;  // a long .txt document encoded in chunks: its work items (0: whole)
    uint8_t split, begun;  // such a document, written in parts: its split, and whether its first tokens are written
} DocResult;

// Room for `more` bytes after the documents already in b.
static void batch_reserve(RawBatch *b, size_t more) {
    if (b->size + more > b->cap) {
        b->cap = (b->size + more) * 2 + (1 << 20);
        b->bytes = ct_realloc(b->bytes, b->cap);
    }
}

// The `len` bytes after the documents already in b become the next document.
static void batch_commit(RawBatch *b, size_t len, int file, uint64_t line) {
    if (b->n == b->cap_docs) {
        b->cap_docs = b->cap_docs ? 2 * b->cap_docs : 1024;
        b->offset = ct_realloc(b->offset, sizeof(size_t) * (size_t)b->cap_docs);
        b->length = ct_realloc(b->length, sizeof(size_t) * (size_t)b->cap_docs);
        b->file = ct_realloc(b->file, sizeof(int) * (size_t)b->cap_docs);
        b->line = ct_realloc(b->line, sizeof(uint64_t) * (size_t)b->cap_docs);
    }
    b->offset[b->n] = b->size;
    b->length[b->n] = len;
    b->file[b->n] = file;
    b->line[b->n] = line;
    b->n++;
    b->size += len;
}

static void batch_add(RawBatch *b, const char *text, size_t len, int file, uint64_t line) {
    batch_reserve(b, len);
    memcpy(b->bytes + b->size, text, len);
    batch_commit(b, len, file, line);
}

static void batch_free(RawBatch *b) {
    ct_free(b->bytes);
    ct_free(b->offset);
    ct_free(b->length);
    ct_free(b->file);
    ct_free(b->line);
}

static int is_blank(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r') return 0;
    return 1;
}

// ---- reading: documents in input order ----

typedef struct {
    const CtInputList *inputs;
    const CtShardJob *job;
    int file;            // the input being read
    CtLineReader reader;
    int reader_open;
    int jsonl;           // the input being read is .jsonl (else .txt)
    uint64_t file_bytes_done;  // bytes of inputs already finished
    size_t pending_len;  // a .txt document being assembled (its bytes, after the batch's documents)
    uint64_t pending_line;
} Reader;

// A .txt document (a file, a paragraph) is assembled in place in the batch, after its documents,
// and not copied once more: read_batch returns only between documents, so it never spans two.
static void pending_append(Reader *r, RawBatch *b, const char *text, size_t len, int newline) {
    batch_reserve(b, r->pending_len + len + 1);
    char *at = b->bytes + b->size + r->pending_len;
    memcpy(at, text, len);
    r->pending_len += len;
    if (newline) {
        at[len] = '\n';
        r->pending_len++;
    }
}

static void flush_pending(Reader *r, RawBatch *b) {
    if (r->pending_len > 0 && !is_blank(b->bytes + b->size, r->pending_len))
        batch_commit(b, r->pending_len, r->file, r->pending_line);
    r->pending_len = 0;
}

// Reads documents into b until it holds about `target` bytes. 1 while input remains, 0 at the
// end of all inputs, -1 + error.
static int read_batch(Reader *r, RawBatch *b, size_t target) {
    b->n = 0;
    b->size = 0;
    while (b->size < target) {
        if (!r->reader_open) {
            if (r->file >= r->inputs->n) return 0;
            if (ct_line_reader_open(&r->reader, r->inputs->paths[r->file]) != 0) return -1;
            r->reader_open = 1;
            r->jsonl = ct_input_is_jsonl(r->inputs->paths[r->file]);
            struct stat st;  // a file that is one document: its room at once (a .zst one's compressed size, at least)
            if (!r->jsonl && r->job->text_split == CT_DOCS_PER_FILE && stat(r->inputs->paths[r->file], &st) == 0 &&
                b->size + (size_t)st.st_size + 1 > b->cap) {
                b->cap = b->size + (size_t)st.st_size + 1;
                b->bytes = ct_realloc(b->bytes, b->cap);
            }
        }
        const char *line;
        size_t len;
        int newline;
        int got = ct_line_reader_next(&r->reader, &line, &len, &newline);
        if (got < 0) return -1;
        const int jsonl = r->jsonl;
        if (got == 0) {
            if (!jsonl) flush_pending(r, b);
            r->file_bytes_done += r->reader.bytes_read;
            ct_line_reader_close(&r->reader);
            r->reader_open = 0;
            r->file++;
            continue;
        }
        if (jsonl) {
            if (!is_blank(line, len)) batch_add(b, line, len, r->file, r->reader.line_no);
            continue;
        }
        switch (r->job->text_split) {
        case CT_DOCS_PER_LINE:
            if (!is_blank(line, len)) batch_add(b, line, len, r->file, r->reader.line_no);
            break;
        case CT_DOCS_PER_PARAGRAPH:
            if (is_blank(line, len)) {
                if (r->pending_len > 0) r->pending_len--;  // the newline before the blank line
                flush_pending(r, b);
            } else {
                if (r->pending_len == 0) r->pending_line = r->reader.line_no;
                pending_append(r, b, line, len, newline);
            }
            break;
        case CT_DOCS_PER_FILE:
            if (r->pending_len == 0) r->pending_line = r->reader.line_no;
            pending_append(r, b, line, len, newline);
            break;
        }
    }
    return 1;
}

// ---- the whole job ----

int ct_shard_dpo_survey(const CtInputList *inputs, CtDpoSurvey *out) {
    memset(out, 0, sizeof *out);
    for (int f = 0; f < inputs->n && !(out->messages && out->margins); f++) {
        CtLineReader reader;
        if (ct_line_reader_open(&reader, inputs->paths[f]) != 0) return -1;
        const char *line;
        size_t len;
        int newline, got = 0;
        while (!(out->messages && out->margins) && (got = ct_line_reader_next(&reader, &line, &len, &newline)) > 0) {
            CtPreference p;
            if (is_blank(line, len) || ct_parse_dpo_example(line, len, &p) != 0) continue;  // the real pass reports it
            out->messages |= p.conversational;
            if (p.has_margin && !out->margins) {
                out->margins = 1;
                snprintf(out->first_margin, sizeof out->first_margin, "%s:%llu", inputs->paths[f],
                         (unsigned long long)reader.line_no);
            }
            ct_preference_free(&p);
        }
        ct_line_reader_close(&reader);
        if (got < 0) return -1;
    }
    return 0;
}

// The seeded hash of a document's number, uniform in [0, 1): below the cut, it is held out.
static double split_hash(const CtShardJob *job, uint64_t doc_number) {
    CtRng rng;
    ct_rng_seed_stream(&rng, job->seed, CT_RNG_STREAM_HOLDOUT + doc_number);
    return ct_rng_uniform(&rng);
}

// A .txt input read as one document (--split file) is one when it holds anything but spaces,
// tabs and carriage returns (a newline counts: the document keeps it), which its first such line
// shows without the rest being read. 1, 0, or -1 + error.
static int file_is_document(const char *path) {
    CtLineReader lr;
    if (ct_line_reader_open(&lr, path) != 0) return -1;
    const char *line;
    size_t len;
    int newline, got;
    while ((got = ct_line_reader_next(&lr, &line, &len, &newline)) > 0)
        if (newline || !is_blank(line, len)) break;
    ct_line_reader_close(&lr);
    return got;
}

// The documents of the inputs as the writer will number them (before encoding: empty or
// skipped ones are counted too), counting stops at `limit`. -1 + error when an input fails.
static int64_t count_documents(const CtShardJob *job, const CtInputList *inputs, uint64_t limit) {
    RawBatch batch = {0};
    uint64_t n = 0;
    int more = 1;
    for (int f = 0; f < inputs->n && n < limit && more >= 0; f++) {
        if (job->text_split == CT_DOCS_PER_FILE && !ct_input_is_jsonl(inputs->paths[f])) {
            more = file_is_document(inputs->paths[f]);
            if (more > 0) n++;
            continue;
        }
        CtInputList one = {.paths = &inputs->paths[f], .n = 1};
        Reader reader = {.inputs = &one, .job = job};
        do {
            more = read_batch(&reader, &batch, (size_t)1 << 20);
            n += (uint64_t)batch.n;
        } while (more > 0 && n < limit);
        if (reader.reader_open) ct_line_reader_close(&reader.reader);
    }
    batch_free(&batch);
    return more < 0 ? -1 : (int64_t)n;
}

// Max-heap sift-down over h[0..n).
static void heap_down(double *h, size_t n, size_t i) {
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, top = i;
        if (l < n && h[l] > h[top]) top = l;
        if (r < n && h[r] > h[top]) top = r;
        if (top == i) return;
        double t = h[i];
        h[i] = h[top];
        h[top] = t;
        i = top;
    }
}

// The hash below which documents are held out (shard_builder.h): val_fraction, or, when that
// holds out fewer than min(N/10, val_min) documents, just above the hash of the one with the
// min(N/10, val_min)-th smallest. 0, or -1 + error.
static int validation_cut(const CtShardJob *job, const CtInputList *inputs, double *cut) {
    *cut = job->val_fraction > 0 ? job->val_fraction : 0;
    // fraction·N < min(N/10, val_min) only when fraction < 0.1 and N < val_min / fraction.
    if (job->val_fraction <= 0 || job->val_fraction >= 0.1 || job->val_min == 0) return 0;
    double limit = ceil((double)job->val_min / job->val_fraction);
    int64_t n = count_documents(job, inputs, limit < 1e18 ? (uint64_t)limit : UINT64_MAX);
    if (n < 0) return -1;
    uint64_t k = (uint64_t)n / 10 < job->val_min ? (uint64_t)n / 10 : job->val_min;
    if (k == 0 || job->val_fraction * (double)n >= (double)k) return 0;
    double *heap = ct_alloc(sizeof(double) * k);  // the k smallest hashes, the largest of them on top
    for (uint64_t d = 0; d < (uint64_t)n; d++) {
        double u = split_hash(job, d);
        if (d < k) {
            heap[d] = u;
            if (d == k - 1)
                for (size_t i = k / 2 + 1; i-- > 0;) heap_down(heap, k, i);
        } else if (u < heap[0]) {
            heap[0] = u;
            heap_down(heap, k, 0);
        }
    }
    *cut = nextafter(heap[0], 1.0);
    ct_free(heap);
    return 0;
}

static char *source_json(const CtShardJob *job, const CtInputList *inputs, const CtShardStats *stats) {
    cJSON *root = cJSON_CreateObject();
    cJSON *list = cJSON_AddArrayToObject(root, "inputs");
    for (int i = 0; i < inputs->n; i++) cJSON_AddItemToArray(list, cJSON_CreateString(inputs->paths[i]));
    cJSON_AddNumberToObject(root, "text_bytes", (double)stats->text_bytes);
    cJSON_AddNumberToObject(root, "file_bytes", (double)stats->file_bytes);
    cJSON_AddNumberToObject(root, "skipped_lines", (double)stats->skipped);
    if (job->kind == CT_SHARD_DPO) cJSON_AddNumberToObject(root, "skipped_pairs", (double)stats->unusable_pairs);
    if (job->kind == CT_SHARD_PROMPTS) cJSON_AddNumberToObject(root, "fields_bytes", (double)stats->fields_bytes);
    cJSON_AddNumberToObject(root, "val_fraction", job->val_fraction);
    cJSON_AddNumberToObject(root, "val_min", (double)job->val_min);
    cJSON_AddNumberToObject(root, "split_seed", (double)job->seed);
    if (job->kind != CT_SHARD_TEXT && job->chat_template) {
        char *tj = ct_chat_template_to_json(job->chat_template);
        cJSON_AddItemToObject(root, "chat_template", cJSON_Parse(tj));
        ct_free(tj);
    }
    char *text = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return text;
}

// ---- the pipeline ----
//
// Two batches are in flight: while the threads encode batch k, one of them (a task like the
// others) writes batch k-1 and then reads batch k+1; with several threads, the chunks it fills
// are compressed by tasks of their own that idle threads take (ct_shard_writer_compress_in_tasks).
// Batches are written in input order by that one task at a time, and a chunk compresses to the
// same bytes on any thread, so the output does not depend on the threads.
// A .txt document longer than SPLIT_DOC_BYTES is cut at the pre-tokenizer's safe places
// (ct_text_chunks_plan) into chunks that any thread encodes; its chunks' ids, joined and framed,
// are the ids of the whole document, so one large file uses every core too. A batch's tasks are
// encoded in parts of about batch_bytes (a batch of many documents is one part; one large
// document, several), and a part is written while the next one is encoded, so the writing of a
// large document overlaps its encoding too (the writer continues the document part by part).
// An encoding task takes about TASK_BYTES of text and keeps the ids of its documents in one
// arena, reused from batch to batch: after the first batches, encoding allocates nothing.

#define SPLIT_DOC_BYTES ((size_t)1 << 20)
#define SPLIT_CHUNK_BYTES ((size_t)1 << 18)
#define TASK_BYTES ((size_t)1 << 16)  // text per encoding task (a document or chunk is never split)

typedef struct {
    int doc;
    int whole;          // 1: the whole document (encode_document); 0: `chunk` of a long .txt document
    CtTextChunk chunk;  // offsets into the document
    CtIds ids;          // the chunk's ids
} WorkItem;

typedef struct {
    RawBatch raw;
    DocResult *results;
    int results_cap;
    WorkItem *items;
    size_t n_items, cap_items;
    CtTextChunks chunks;
    size_t *task_first;   // n_tasks + 1: task k encodes items [task_first[k], task_first[k + 1])
    CtMaskedIds *arenas;  // per task: the ids (sft: and mask) of its documents
    size_t n_tasks, cap_tasks;
    size_t *part_first;   // n_parts + 1: part j is tasks [part_first[j], part_first[j + 1]), one pipeline step
    size_t n_parts, parts_encoded, parts_written;
} Slot;

typedef struct {
    const CtShardJob *job;
    const CtInputList *inputs;
    const uint8_t *jsonl;  // per input: .jsonl (else .txt)
    CtEncoder **encoders;  // one per thread, and the reader's (last): its added-token tables cut documents
    CtShardEncoded *encoded;  // one per thread: the document being encoded, before its ids go to the arena
    uint8_t **scratch;
    size_t *scratch_cap;
    CtIds joined;          // the writer's: a document encoded in chunks, joined and framed
    Reader reader;
    int more;  // input remains to be read
    CtDatasetWriter *writer;
    CtShardStats *stats;
    CtProgress *progress;
    double val_cut;
    uint64_t doc_number;
    size_t batch_bytes;
    char error[CT_ERROR_MAX];  // the I/O task's error
} Pipeline;

// The chunks of a long .txt document among items [from, to) of a part, joined: the first begins
// the document (its number draws its split), the last ends it, and each part of it goes to the
// writer as soon as its part is encoded. The index of the item after them.
static size_t write_chunks(Pipeline *p, Slot *s, DocResult *e, size_t from, size_t to, int *rc) {
    const CtShardJob *job = p->job;
    const size_t last = e->first_chunk + e->n_chunks, end = last < to ? last : to;
    p->joined.len = 0;
    size_t total = 2 * CT_POST_MAX_SIDE + 1;  // the frame
    for (size_t c = from; c < end; c++) total += s->items[c].ids.len;
    ct_ids_grow(&p->joined, total);
    if (from == e->first_chunk) {
        p->stats->text_bytes += s->raw.length[s->items[from].doc];
        e->split = split_hash(job, p->doc_number++) < p->val_cut ? CT_SPLIT_VAL : CT_SPLIT_TRAIN;
        p->stats->documents[e->split]++;
        ct_shard_frame_begin(job, &p->joined);
    }
    for (size_t c = from; c < end; c++) ct_ids_append(&p->joined, s->items[c].ids.data, s->items[c].ids.len);
    if (end == last) ct_shard_frame_end(job, &p->joined);
    const uint32_t *ids = (const uint32_t *)p->joined.data;
    *rc = e->begun ? ct_dataset_continue_document(p->writer, (CtSplit)e->split, ids, p->joined.len)
                   : ct_dataset_write_document(p->writer, (CtSplit)e->split, ids, NULL, p->joined.len);
    e->begun |= p->joined.len > 0;
    p->stats->tokens[e->split] += p->joined.len;
    return end;
}

// Counts the encoded documents of one part of a batch and writes them in order, each to the
// split its number draws. 0, or -1 + error (a bad document, unless skipped; a refused pair; a write).
static int write_documents(Pipeline *p, Slot *s, size_t part) {
    const CtShardJob *job = p->job;
    const RawBatch *batch = &s->raw;
    CtShardStats *stats = p->stats;
    const size_t to = s->task_first[s->part_first[part + 1]];
    for (size_t item = s->task_first[s->part_first[part]]; item < to; item++) {
        const int i = s->items[item].doc;
        DocResult *e = &s->results[i];
        if (!s->items[item].whole) {
            int rc;
            item = write_chunks(p, s, e, item, to, &rc) - 1;
            if (rc != 0) return rc;
            continue;
        }
        const char *path = p->inputs->paths[batch->file[i]];
        const unsigned long long line = (unsigned long long)batch->line[i];
        stats->text_bytes += batch->length[i];
        if (e->failed) {
            if (job->skip_bad) {
                stats->skipped++;
                continue;
            }
            return ct_error_set("%s:%llu: %s", path, line, e->error);
        }
        if (e->unusable) {
            if (job->strict)
                return ct_error_set("%s:%llu: %s: the pair cannot teach a preference (--strict refuses it; without "
                                    "--strict such pairs are skipped and counted)", path, line, e->error);
            if (stats->unusable_pairs++ == 0)
                snprintf(stats->first_unusable, sizeof stats->first_unusable, "%s:%llu: %s", path, line, e->error);
            continue;
        }
        if (e->empty) {
            stats->empty++;
            continue;
        }
        if (e->prompt_not_prefix && stats->prompt_not_prefix++ == 0)
            snprintf(stats->first_not_prefix, sizeof stats->first_not_prefix, "%s:%llu", path, line);
        const uint32_t *ids[3] = {NULL, NULL, NULL};
        size_t n[3] = {e->len[0], e->len[1], e->len[2]};
        const CtMaskedIds *arena = &s->arenas[e->arena];
        ids[0] = (const uint32_t *)arena->ids.data + e->at;
        ids[1] = ids[0] + n[0];
        ids[2] = ids[1] + n[1];
        const uint8_t *mask = job->kind == CT_SHARD_SFT ? arena->mask + e->at : NULL;
        CtSplit split = split_hash(job, p->doc_number++) < p->val_cut ? CT_SPLIT_VAL : CT_SPLIT_TRAIN;
        int rc;
        if (job->kind == CT_SHARD_DPO) {
            rc = ct_dataset_write_dpo(p->writer, split, ids[0], (uint32_t)n[0], ids[1], (uint32_t)n[1], ids[2], (uint32_t)n[2],
                                      e->margin);
        } else if (job->kind == CT_SHARD_PROMPTS) {
            rc = ct_dataset_write_prompt(p->writer, split, ids[0], n[0], e->fields, e->fields_len);
            stats->fields_bytes += e->fields_len;
        } else {
            rc = ct_dataset_write_document(p->writer, split, ids[0], mask, n[0]);
        }
        stats->tokens[split] += n[0] + n[1] + n[2];
        stats->documents[split]++;
        if (rc != 0) return rc;
    }
    return 0;
}

static WorkItem *add_item(Slot *s, int doc, int whole) {
    if (s->n_items == s->cap_items) {
        size_t cap = s->cap_items ? 2 * s->cap_items : 1024;
        s->items = ct_realloc(s->items, cap * sizeof *s->items);
        memset(s->items + s->cap_items, 0, (cap - s->cap_items) * sizeof *s->items);
        s->cap_items = cap;
    }
    WorkItem *w = &s->items[s->n_items++];
    w->doc = doc;
    w->whole = whole;
    w->ids.len = 0;
    return w;
}

static size_t item_bytes(const Slot *s, const WorkItem *w) {
    return w->whole ? s->raw.length[w->doc] : w->chunk.end - w->chunk.start;
}

// The work items of a batch just read (a document each, or the chunks of a long .txt one), and
// the encoding tasks over them, about TASK_BYTES of text each.
static void plan_slot(Pipeline *p, Slot *s) {
    const CtShardJob *job = p->job;
    const RawBatch *b = &s->raw;
    if (b->n > s->results_cap) {
        s->results = ct_realloc(s->results, sizeof(DocResult) * (size_t)b->n);
        memset(s->results + s->results_cap, 0, sizeof(DocResult) * (size_t)(b->n - s->results_cap));
        s->results_cap = b->n;
    }
    s->n_items = 0;
    for (int d = 0; d < b->n; d++) {
        DocResult *e = &s->results[d];
        ct_free(e->error);
        ct_free(e->fields);
        memset(e, 0, sizeof *e);
        if (job->kind != CT_SHARD_TEXT || b->length[d] <= SPLIT_DOC_BYTES || p->jsonl[b->file[d]]) {
            add_item(s, d, 1);
            continue;
        }
        s->chunks.n = 0;
        ct_text_chunks_plan(job->tokenizer, p->encoders[job->threads], (const uint8_t *)b->bytes + b->offset[d],
                            b->length[d], job->allow_special, SPLIT_CHUNK_BYTES, &s->chunks);
        e->first_chunk = s->n_items;
        e->n_chunks = s->chunks.n;
        for (size_t c = 0; c < s->chunks.n; c++) add_item(s, d, 0)->chunk = s->chunks.items[c];
    }
    s->n_tasks = 0;
    s->n_parts = s->parts_encoded = s->parts_written = 0;
    size_t part_bytes = 0;
    for (size_t i = 0; i < s->n_items;) {
        if (s->n_tasks + 1 >= s->cap_tasks) {
            size_t cap = s->cap_tasks ? 2 * s->cap_tasks : 64;
            s->task_first = ct_realloc(s->task_first, cap * sizeof *s->task_first);
            s->part_first = ct_realloc(s->part_first, cap * sizeof *s->part_first);
            s->arenas = ct_realloc(s->arenas, cap * sizeof *s->arenas);
            memset(s->arenas + s->cap_tasks, 0, (cap - s->cap_tasks) * sizeof *s->arenas);
            s->cap_tasks = cap;
        }
        if (s->n_parts == 0 || part_bytes >= p->batch_bytes) {
            s->part_first[s->n_parts++] = s->n_tasks;
            part_bytes = 0;
        }
        s->task_first[s->n_tasks++] = i;
        size_t bytes = 0;
        do bytes += item_bytes(s, &s->items[i++]);
        while (i < s->n_items && bytes < TASK_BYTES);
        part_bytes += bytes;
    }
    if (s->task_first) {
        s->task_first[s->n_tasks] = s->n_items;
        s->part_first[s->n_parts] = s->n_tasks;
    }
}

// Moves an encoded document's ids (and sft mask) into the task's arena, and what the writer
// needs of the rest into its result.
static void keep_result(const CtShardJob *job, CtShardEncoded *e, uint32_t task, CtMaskedIds *arena, DocResult *r) {
    r->arena = task;
    r->failed = (uint8_t)e->failed;
    r->empty = (uint8_t)e->empty;
    r->unusable = (uint8_t)e->unusable;
    r->prompt_not_prefix = e->prompt_not_prefix;
    r->margin = e->margin;
    r->fields = e->fields;
    r->fields_len = e->fields_len;
    e->fields = NULL;
    e->fields_len = 0;
    if (e->failed || e->unusable) {
        r->error = ct_strdup(e->error);
        return;
    }
    r->at = arena->ids.len;
    const CtIds *parts[3] = {&e->main.ids, &e->chosen.ids, &e->rejected.ids};
    for (int k = 0; k < 3; k++) {
        r->len[k] = parts[k]->len;
        if (parts[k]->len) ct_ids_append(&arena->ids, parts[k]->data, parts[k]->len);
    }
    if (job->kind == CT_SHARD_SFT && r->len[0]) {
        if (arena->ids.len > arena->mask_cap) {
            arena->mask_cap = 2 * arena->ids.len;
            arena->mask = ct_realloc(arena->mask, arena->mask_cap);
        }
        memcpy(arena->mask + r->at, e->main.mask, r->len[0]);
    }
}

static void encode_task(Pipeline *p, Slot *s, size_t task) {
    const int t = omp_get_thread_num();
    const RawBatch *b = &s->raw;
    CtMaskedIds arena = s->arenas[task];  // a copy: the arenas of tasks on other threads share its cache lines
    ct_masked_ids_clear(&arena);
    for (size_t i = s->task_first[task]; i < s->task_first[task + 1]; i++) {
        WorkItem *w = &s->items[i];
        const char *doc = b->bytes + b->offset[w->doc];
        if (w->whole) {
            ct_shard_encode_document(p->job, p->encoders[t], doc, b->length[w->doc], p->jsonl[b->file[w->doc]],
                            &p->encoded[t], &p->scratch[t], &p->scratch_cap[t]);
            keep_result(p->job, &p->encoded[t], (uint32_t)task, &arena, &s->results[w->doc]);
        } else {
            CtIds ids = w->ids;  // a copy, as the arena
            ct_text_chunk_encode(p->job->tokenizer, p->encoders[t], (const uint8_t *)doc, &w->chunk, p->job->allow_special,
                                 &ids);
            w->ids = ids;
        }
    }
    s->arenas[task] = arena;
}

// One thread's share of a step: write part `part` of ws (when ws), then read the next batch into
// rs (when rs; when input remains). 0, or -1 + error. The chunks it fills are compressed by tasks
// of its own, which the taskgroup sees finished before the step ends (the next step writes them).
static int io_step(Pipeline *p, Slot *ws, size_t part, Slot *rs) {
    if (ws) {
        int rc;
#pragma omp taskgroup
        rc = write_documents(p, ws, part);
        if (rc != 0) return -1;
        ws->parts_written++;
        if (p->progress)
            ct_progress_update(p->progress, p->reader.file_bytes_done + (p->reader.reader_open ? p->reader.reader.bytes_read : 0));
    }
    if (rs) {
        rs->raw.n = 0;
        rs->raw.size = 0;
        rs->n_tasks = rs->n_parts = rs->parts_encoded = rs->parts_written = 0;
        if (p->more > 0) {
            p->more = read_batch(&p->reader, &rs->raw, p->batch_bytes);
            if (p->more < 0) return -1;
            plan_slot(p, rs);
        }
    }
    return 0;
}

static void free_slot(Slot *s) {
    for (int i = 0; i < s->results_cap; i++) {
        ct_free(s->results[i].error);
        ct_free(s->results[i].fields);
    }
    ct_free(s->results);
    for (size_t i = 0; i < s->cap_items; i++) ct_ids_free(&s->items[i].ids);
    ct_free(s->items);
    for (size_t k = 0; k < s->cap_tasks; k++) ct_masked_ids_free(&s->arenas[k]);
    ct_free(s->arenas);
    ct_free(s->task_first);
    ct_free(s->part_first);
    ct_text_chunks_free(&s->chunks);
    batch_free(&s->raw);
}

// Each step encodes one part of a batch while one task writes the part encoded before it and,
// once the other batch is all written, reads the next batch into it. A batch of many documents
// is one part; a long document's chunks are several, so its writing overlaps its encoding.
static int run_pipeline(Pipeline *p, int threads) {
    Slot slots[2];
    memset(slots, 0, sizeof slots);
    int rc = io_step(p, NULL, 0, &slots[0]), cur = 0;
    Slot *written = NULL;  // the slot of the part encoded in the step before, to write
    size_t written_part = 0;
    p->error[0] = 0;
#pragma omp parallel num_threads(threads)
#pragma omp single
    while (rc == 0) {
        if (slots[cur].parts_encoded == slots[cur].n_parts) cur ^= 1;  // on to the batch read after it
        Slot *enc = &slots[cur], *other = &slots[cur ^ 1];
        const int encode = enc->parts_encoded < enc->n_parts;
        if (!encode && !written) break;
        // the other batch is read into once it is all written (this step's part included)
        Slot *read = other->parts_written + (written == other) == other->n_parts && p->more > 0 ? other : NULL;
        int io_rc = 0;
#pragma omp task shared(io_rc)
        {
            // errors are per thread: the message goes back to the thread that returns it
            if ((io_rc = io_step(p, written, written_part, read)) != 0) snprintf(p->error, sizeof p->error, "%s", ct_error_message());
        }
        if (encode)
            for (size_t k = enc->part_first[enc->parts_encoded]; k < enc->part_first[enc->parts_encoded + 1]; k++) {
#pragma omp task firstprivate(k)
                encode_task(p, enc, k);
            }
#pragma omp taskwait
        rc = io_rc;
        written = encode ? enc : NULL;
        written_part = encode ? enc->parts_encoded++ : 0;
    }
    free_slot(&slots[0]);
    free_slot(&slots[1]);
    if (rc != 0 && p->error[0]) ct_error_set("%s", p->error);
    return rc;
}

int ct_shard_build(const CtShardJob *job, const CtInputList *inputs, const char *out_dir, CtShardStats *stats,
                   CtProgress *progress) {
    memset(stats, 0, sizeof *stats);
    double start = ct_time_now();
    for (int i = 0; i < inputs->n; i++) {
        struct stat st;
        if (stat(inputs->paths[i], &st) == 0) stats->file_bytes += (uint64_t)st.st_size;
    }
    CtDatasetSpec spec;
    memset(&spec, 0, sizeof spec);
    int32_t vocab = ct_tokenizer_vocab_size(job->tokenizer);
    spec.shard = (CtShardSpec){job->kind, vocab <= 65536 ? 2u : 4u, (uint32_t)vocab, job->tokenizer_hash,
                               job->chunk_tokens, job->zstd_level, job->kind == CT_SHARD_DPO && job->dpo_margins};
    spec.eot_token = job->eot;
    spec.shard_tokens = job->shard_tokens;
    double val_cut;
    if (validation_cut(job, inputs, &val_cut) != 0) return -1;
    CtDatasetWriter writer;
    if (ct_dataset_writer_open(&writer, out_dir, &spec) != 0) return -1;
    if (job->threads > 1) ct_dataset_writer_compress_in_tasks(&writer, 2 * job->threads);  // overlapping the encoding

    CtShardJob threaded = *job;
    threaded.threads = job->threads > 0 ? job->threads : 1;
    const int threads = threaded.threads;
    Pipeline p = {.job = &threaded, .inputs = inputs, .more = 1, .writer = &writer, .stats = stats,
                  .progress = progress, .val_cut = val_cut};
    p.reader = (Reader){.inputs = inputs, .job = &threaded};
    p.encoders = ct_calloc((size_t)threads + 1, sizeof(CtEncoder *));
    p.scratch = ct_calloc((size_t)threads, sizeof(uint8_t *));
    p.scratch_cap = ct_calloc((size_t)threads, sizeof(size_t));
    p.encoded = ct_calloc((size_t)threads, sizeof(CtShardEncoded));
    uint8_t *jsonl = ct_alloc((size_t)inputs->n + 1);
    for (int i = 0; i < inputs->n; i++) jsonl[i] = (uint8_t)ct_input_is_jsonl(inputs->paths[i]);
    p.jsonl = jsonl;
    for (int t = 0; t <= threads; t++) p.encoders[t] = ct_encoder_new(job->tokenizer);
    p.batch_bytes = (size_t)threads << 22;  // 4 MiB of text per thread
    int rc = run_pipeline(&p, threads);
    if (p.reader.reader_open) ct_line_reader_close(&p.reader.reader);
    for (int t = 0; t <= threads; t++) ct_encoder_free(p.encoders[t]);
    for (int t = 0; t < threads; t++) {
        ct_free(p.scratch[t]);
        ct_shard_encoded_free(&p.encoded[t]);
    }
    ct_free(p.encoded);
    ct_free(jsonl);
    ct_ids_free(&p.joined);
    ct_free(p.encoders);
    ct_free(p.scratch);
    ct_free(p.scratch_cap);
    if (rc == 0 && stats->documents[CT_SPLIT_TRAIN] == 0)
        rc = ct_error_set("%s: no documents in the input (all empty%s)", inputs->paths[0], stats->skipped ? " or skipped" : "");
    if (rc != 0) {
        ct_dataset_writer_abort(&writer);
        return -1;
    }
    char *source = source_json(job, inputs, stats);
    rc = ct_dataset_writer_finish(&writer, source);
    free(source);
    stats->seconds = ct_time_now() - start;
    return rc;
}
