#include "data/shard/shard.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cJSON.h>
#include <zstd.h>

#include "core/alloc.h"
#include "core/checksum.h"
#include "core/error.h"

static const char MAGIC[8] = {'C', 'T', 'S', 'H', 'A', 'R', 'D', 0};

static void *new_cctx(int level) {
    ZSTD_CCtx *c = ZSTD_createCCtx();
    CT_CHECK(c, "out of memory creating a zstd context");
    ZSTD_CCtx_setParameter(c, ZSTD_c_compressionLevel, level);
    ZSTD_CCtx_setParameter(c, ZSTD_c_checksumFlag, 1);
    ZSTD_CCtx_setParameter(c, ZSTD_c_contentSizeFlag, 1);
    return c;
}

static void free_job(CtShardChunkJob *j) {
    if (j->cctx) ZSTD_freeCCtx(j->cctx);
    ct_free(j->buf);
    memset(j, 0, sizeof *j);
}

// ---- little-endian encoding ----

static void put_u32(unsigned char *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static void put_u64(unsigned char *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static uint32_t get_u32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t get_u64(const unsigned char *p) { return (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32; }
// IEEE 754 binary64, little-endian (dpo margins).
static void put_f64(unsigned char *p, double v) {
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    put_u64(p, bits);
}
static double get_f64(const unsigned char *p) {
    uint64_t bits = get_u64(p);
    double v;
    memcpy(&v, &bits, sizeof v);
    return v;
}

const char *ct_shard_kind_name(CtShardKind kind) {
    return kind == CT_SHARD_TEXT      ? "text"
           : kind == CT_SHARD_SFT     ? "sft"
           : kind == CT_SHARD_DPO     ? "dpo"
           : kind == CT_SHARD_PROMPTS ? "prompts"
                                      : "?";
}

// ---- writing ----

int ct_shard_writer_open(CtShardWriter *w, const char *path, const CtShardSpec *spec, uint32_t shard_index) {
    memset(w, 0, sizeof *w);
    CT_CHECK(spec->token_bytes == 2 || spec->token_bytes == 4, "token bytes are 2 or 4");
    CT_CHECK(spec->chunk_tokens > 0, "chunks hold at least one token");
    w->spec = *spec;
    w->shard_index = shard_index;
    if (ct_atomic_open(&w->file, path) != 0) return -1;
    unsigned char zero[CT_SHARD_HEADER_BYTES] = {0};  // the header is written last, over this
    if (fwrite(zero, 1, sizeof zero, w->file.fp) != sizeof zero) {
        ct_error_errno("%s: cannot write", path);
        ct_atomic_abort(&w->file);
        return -1;
    }
    w->offset = CT_SHARD_HEADER_BYTES;
    w->pending_tokens = ct_alloc(sizeof(uint32_t) * spec->chunk_tokens);
    w->pending_mask = ct_alloc(spec->chunk_tokens);
    w->cctx = new_cctx(spec->zstd_level);
    w->compressed_cap = ZSTD_compressBound((size_t)spec->chunk_tokens * (spec->token_bytes + 1));
    w->max_jobs = 1;
    w->jobs = ct_calloc(1, sizeof *w->jobs);
    return 0;
}

void ct_shard_writer_compress_in_tasks(CtShardWriter *w, int jobs) {
    CT_CHECK(w->n_jobs == 0, "set before the first chunk");
    if (jobs < 1) jobs = 1;
    for (int k = jobs; k < w->max_jobs; k++) free_job(&w->jobs[k]);
    w->jobs = ct_realloc(w->jobs, sizeof *w->jobs * (size_t)jobs);
    if (jobs > w->max_jobs) memset(w->jobs + w->max_jobs, 0, sizeof *w->jobs * (size_t)(jobs - w->max_jobs));
    w->max_jobs = jobs;
}

static void release_writer(CtShardWriter *w) {
    ct_free(w->pending_tokens);
    ct_free(w->pending_mask);
    ct_free(w->chunk_offsets);
    ct_free(w->chunk_sizes);
    ct_free(w->chunk_token_counts);
    ct_free(w->doc_starts);
    ct_free(w->dpo_lengths);
    ct_free(w->margins);
    ct_free(w->field_lengths);
    ct_free(w->pending_fields);
    for (uint32_t f = 0; f < w->n_field_frames; f++) ct_free(w->field_frames[f]);
    ct_free(w->field_frames);
    ct_free(w->field_frame_sizes);
    ct_free(w->field_frame_examples);
    for (int k = 0; k < w->max_jobs; k++) free_job(&w->jobs[k]);
    ct_free(w->jobs);
    if (w->cctx) ZSTD_freeCCtx(w->cctx);
    memset(w, 0, sizeof *w);
}

void ct_shard_writer_abort(CtShardWriter *w) {
#pragma omp taskwait
    if (w->file.tmp_path) ct_atomic_abort(&w->file);
    release_writer(w);
}

// Waits for the chunks in flight and writes them, in order, into the file and the index.
// 0, or -1 + error.
static int write_chunks(CtShardWriter *w) {
#pragma omp taskwait
    int rc = 0;
    for (int k = 0; k < w->n_jobs && rc == 0; k++) {
        const CtShardChunkJob *j = &w->jobs[k];
        if (ZSTD_isError(j->size)) {
            rc = ct_error_set("%s: zstd compression failed: %s", w->file.final_path, ZSTD_getErrorName(j->size));
            break;
        }
        if (fwrite(j->buf, 1, j->size, w->file.fp) != j->size) {
            rc = ct_error_errno("%s: cannot write (disk full?)", w->file.final_path);
            break;
        }
        if (w->n_chunks == w->cap_chunks) {
            w->cap_chunks = w->cap_chunks ? 2 * w->cap_chunks : 64;
            w->chunk_offsets = ct_realloc(w->chunk_offsets, sizeof(uint64_t) * w->cap_chunks);
            w->chunk_sizes = ct_realloc(w->chunk_sizes, sizeof(uint32_t) * w->cap_chunks);
            w->chunk_token_counts = ct_realloc(w->chunk_token_counts, sizeof(uint32_t) * w->cap_chunks);
        }
        w->chunk_offsets[w->n_chunks] = w->offset;
        w->chunk_sizes[w->n_chunks] = (uint32_t)j->size;
        w->chunk_token_counts[w->n_chunks] = j->n;
        w->n_chunks++;
        w->offset += j->size;
    }
    w->n_jobs = 0;
    return rc;
}

// The chunk being filled, as bytes, goes to a job and is compressed there (a task when jobs run
// in parallel), then written in turn.
static int flush_chunk(CtShardWriter *w) {
    if (w->pending == 0) return 0;
    if (w->n_jobs == w->max_jobs && write_chunks(w) != 0) return -1;
    uint32_t n = w->pending, tb = w->spec.token_bytes;
    int with_mask = w->spec.kind == CT_SHARD_SFT;
    CtShardChunkJob *job = &w->jobs[w->n_jobs++];
    if (!job->buf) {  // kept from chunk to chunk: a fresh 128 KiB each time had its pages faulted in and zeroed again
        job->cctx = new_cctx(w->spec.zstd_level);
        job->buf = ct_alloc(w->compressed_cap + (size_t)w->spec.chunk_tokens * (tb + 1));
    }
    unsigned char *raw = job->buf + w->compressed_cap;
    const uint32_t *tokens = w->pending_tokens;
    if (tb == 2)  // little-endian, written byte by byte (any host); two loops the compiler vectorizes
        for (uint32_t i = 0; i < n; i++) {
            raw[2 * (size_t)i] = (unsigned char)tokens[i];
            raw[2 * (size_t)i + 1] = (unsigned char)(tokens[i] >> 8);
        }
    else
        for (uint32_t i = 0; i < n; i++) put_u32(raw + 4 * (size_t)i, tokens[i]);
    if (with_mask) memcpy(raw + (size_t)n * tb, w->pending_mask, n);
    job->raw_size = (size_t)n * tb + (with_mask ? n : 0);
    job->n = n;
    w->pending = 0;
    const size_t cap = w->compressed_cap;
#pragma omp task firstprivate(job) if (w->max_jobs > 1)
    job->size = ZSTD_compress2(job->cctx, job->buf, cap, job->buf + cap, job->raw_size);
    return 0;
}

static void grow_docs(CtShardWriter *w) {
    if (w->n_docs < w->cap_docs) return;
    w->cap_docs = w->cap_docs ? 2 * w->cap_docs : 1024;
    w->doc_starts = ct_realloc(w->doc_starts, sizeof(uint64_t) * w->cap_docs);
    if (w->spec.kind == CT_SHARD_DPO) w->dpo_lengths = ct_realloc(w->dpo_lengths, 3 * sizeof(uint32_t) * w->cap_docs);
    if (w->spec.kind == CT_SHARD_DPO && w->spec.dpo_margins)
        w->margins = ct_realloc(w->margins, sizeof(double) * w->cap_docs);
    if (w->spec.kind == CT_SHARD_PROMPTS) w->field_lengths = ct_realloc(w->field_lengths, sizeof(uint32_t) * w->cap_docs);
}

int ct_shard_writer_begin_document(CtShardWriter *w) {
    CT_CHECK(w->spec.kind != CT_SHARD_DPO && w->spec.kind != CT_SHARD_PROMPTS,
             "dpo and prompts examples are added with their own ct_shard_writer_append_*");
    if (w->n_docs > 0 && w->doc_starts[w->n_docs - 1] == w->n_tokens) return 0;  // an empty document
    grow_docs(w);
    w->doc_starts[w->n_docs++] = w->n_tokens;
    return 0;
}

int ct_shard_writer_append(CtShardWriter *w, const uint32_t *tokens, const uint8_t *mask, size_t n) {
    const uint32_t vocab = w->spec.vocab_size;
    uint32_t top = 0;  // the largest token, checked once (a loop the compiler vectorizes)
    for (size_t i = 0; i < n; i++) top = tokens[i] > top ? tokens[i] : top;
    if (n && top >= vocab)
        for (size_t i = 0; i < n; i++)
            if (tokens[i] >= vocab)
                return ct_error_set("%s: token %u is outside the vocabulary (%u tokens)", w->file.final_path, tokens[i],
                                    vocab);
    const int with_mask = w->spec.kind == CT_SHARD_SFT;  // the mask is stored (flush_chunk) in sft shards only
    for (size_t done = 0; done < n;) {
        size_t take = w->spec.chunk_tokens - w->pending;
        if (take > n - done) take = n - done;
        memcpy(w->pending_tokens + w->pending, tokens + done, take * sizeof *tokens);
        if (with_mask)
            for (size_t i = 0; i < take; i++) w->pending_mask[w->pending + i] = mask ? (mask[done + i] != 0) : 0;
        w->pending += (uint32_t)take;
        done += take;
        if (w->pending == w->spec.chunk_tokens && flush_chunk(w) != 0) return -1;
    }
    w->n_tokens += n;
    return 0;
}

int ct_shard_writer_append_dpo(CtShardWriter *w, const uint32_t *prompt, uint32_t n_prompt, const uint32_t *chosen,
                               uint32_t n_chosen, const uint32_t *rejected, uint32_t n_rejected, double margin) {
    CT_CHECK(w->spec.kind == CT_SHARD_DPO, "only dpo shards hold dpo examples");
    CT_CHECK(w->spec.dpo_margins || margin == 0, "a margin goes into a dpo shard with margins");
    if (!isfinite(margin))
        return ct_error_set("%s: margin %g of example %llu is not a finite number", w->file.final_path, margin,
                            (unsigned long long)w->n_docs);
    grow_docs(w);
    w->doc_starts[w->n_docs] = w->n_tokens;
    if (w->spec.dpo_margins) w->margins[w->n_docs] = margin;
    w->dpo_lengths[3 * w->n_docs] = n_prompt;
    w->dpo_lengths[3 * w->n_docs + 1] = n_chosen;
    w->dpo_lengths[3 * w->n_docs + 2] = n_rejected;
    w->n_docs++;
    if (ct_shard_writer_append(w, prompt, NULL, n_prompt) != 0 || ct_shard_writer_append(w, chosen, NULL, n_chosen) != 0 ||
        ct_shard_writer_append(w, rejected, NULL, n_rejected) != 0)
        return -1;
    return 0;
}

// Compresses the gathered fields JSON into one frame, kept in memory until the shard closes.
static int flush_fields_frame(CtShardWriter *w) {
    if (w->pending_field_examples == 0) return 0;
    size_t cap = ZSTD_compressBound(w->pending_fields_len);
    unsigned char *frame = ct_alloc(cap);
    size_t size = ZSTD_compress2(w->cctx, frame, cap, w->pending_fields, w->pending_fields_len);
    if (ZSTD_isError(size)) {
        ct_free(frame);
        return ct_error_set("%s: zstd compression failed: %s", w->file.final_path, ZSTD_getErrorName(size));
    }
    if (w->n_field_frames == w->cap_field_frames) {
        w->cap_field_frames = w->cap_field_frames ? 2 * w->cap_field_frames : 16;
        w->field_frames = ct_realloc(w->field_frames, sizeof(unsigned char *) * w->cap_field_frames);
        w->field_frame_sizes = ct_realloc(w->field_frame_sizes, sizeof(uint32_t) * w->cap_field_frames);
        w->field_frame_examples = ct_realloc(w->field_frame_examples, sizeof(uint32_t) * w->cap_field_frames);
    }
    w->field_frames[w->n_field_frames] = frame;
    w->field_frame_sizes[w->n_field_frames] = (uint32_t)size;
    w->field_frame_examples[w->n_field_frames] = w->pending_field_examples;
    w->n_field_frames++;
    w->pending_fields_len = 0;
    w->pending_field_examples = 0;
    return 0;
}

int ct_shard_writer_append_prompt(CtShardWriter *w, const uint32_t *tokens, size_t n, const char *fields,
                                  size_t fields_len) {
    CT_CHECK(w->spec.kind == CT_SHARD_PROMPTS, "only prompts shards hold prompts");
    CT_CHECK(n > 0 && fields_len >= 2, "a prompt has tokens and a fields object");
    if (fields_len > (size_t)CT_SHARD_FIELDS_FRAME_BYTES * 64)
        return ct_error_set("%s: a prompt's fields of %zu bytes, more than the 64 MiB a prompt may carry",
                            w->file.final_path, fields_len);
    grow_docs(w);
    w->doc_starts[w->n_docs] = w->n_tokens;
    w->field_lengths[w->n_docs] = (uint32_t)fields_len;
    w->n_docs++;
    if (ct_shard_writer_append(w, tokens, NULL, n) != 0) return -1;
    if (w->pending_fields_len + fields_len > w->pending_fields_cap) {
        w->pending_fields_cap = 2 * (w->pending_fields_len + fields_len);
        w->pending_fields = ct_realloc(w->pending_fields, w->pending_fields_cap);
    }
    memcpy(w->pending_fields + w->pending_fields_len, fields, fields_len);
    w->pending_fields_len += fields_len;
    w->pending_field_examples++;
    return w->pending_fields_len >= CT_SHARD_FIELDS_FRAME_BYTES ? flush_fields_frame(w) : 0;
}

// prompts: the fields frames go after the token chunks. Their offsets in *offsets (ct_free).
static int write_fields_frames(CtShardWriter *w, uint64_t **offsets) {
    if (flush_fields_frame(w) != 0) return -1;
    *offsets = ct_alloc(sizeof(uint64_t) * (w->n_field_frames + 1));
    for (uint32_t f = 0; f < w->n_field_frames; f++) {
        (*offsets)[f] = w->offset;
        if (fwrite(w->field_frames[f], 1, w->field_frame_sizes[f], w->file.fp) != w->field_frame_sizes[f])
            return ct_error_errno("%s: cannot write (disk full?)", w->file.final_path);
        w->offset += w->field_frame_sizes[f];
    }
    return 0;
}

int ct_shard_writer_close(CtShardWriter *w, uint64_t *bytes_out) {
    uint64_t *frame_offsets = NULL;
    if (flush_chunk(w) != 0 || write_chunks(w) != 0) goto fail;
    int dpo = w->spec.kind == CT_SHARD_DPO, prompts = w->spec.kind == CT_SHARD_PROMPTS;
    int margins = dpo && w->spec.dpo_margins;
    if (prompts && write_fields_frames(w, &frame_offsets) != 0) goto fail;
    size_t index_size = 16 * (size_t)w->n_chunks + 8 * w->n_docs + (dpo ? 12 * w->n_docs : 0) + (margins ? 8 * w->n_docs : 0) +
                        (prompts ? 16 * (size_t)w->n_field_frames + 4 * w->n_docs : 0) + 4;
    unsigned char *index = ct_alloc(index_size), *p = index;
    for (uint32_t c = 0; c < w->n_chunks; c++, p += 16) {
        put_u64(p, w->chunk_offsets[c]);
        put_u32(p + 8, w->chunk_sizes[c]);
        put_u32(p + 12, w->chunk_token_counts[c]);
    }
    for (uint64_t d = 0; d < w->n_docs; d++, p += 8) put_u64(p, w->doc_starts[d]);
    if (dpo)
        for (uint64_t i = 0; i < 3 * w->n_docs; i++, p += 4) put_u32(p, w->dpo_lengths[i]);
    if (margins)
        for (uint64_t d = 0; d < w->n_docs; d++, p += 8) put_f64(p, w->margins[d]);
    if (prompts) {
        for (uint32_t f = 0; f < w->n_field_frames; f++, p += 16) {
            put_u64(p, frame_offsets[f]);
            put_u32(p + 8, w->field_frame_sizes[f]);
            put_u32(p + 12, w->field_frame_examples[f]);
        }
        for (uint64_t d = 0; d < w->n_docs; d++, p += 4) put_u32(p, w->field_lengths[d]);
    }
    ct_free(frame_offsets);
    frame_offsets = NULL;
    put_u32(p, ct_crc32(index, index_size - 4));
    size_t wrote = fwrite(index, 1, index_size, w->file.fp);
    ct_free(index);
    if (wrote != index_size) {
        ct_error_errno("%s: cannot write (disk full?)", w->file.final_path);
        goto fail;
    }
    unsigned char header[CT_SHARD_HEADER_BYTES] = {0};
    memcpy(header, MAGIC, 8);
    put_u32(header + 8, (uint32_t)ct_shard_write_version(w->spec.kind, margins));
    put_u32(header + 12, (uint32_t)w->spec.kind);
    put_u32(header + 16, w->spec.token_bytes);
    put_u32(header + 20, w->n_chunks);
    put_u64(header + 24, w->n_tokens);
    put_u64(header + 32, w->n_docs);
    put_u64(header + 40, w->offset);
    put_u64(header + 48, index_size);
    put_u64(header + 56, w->spec.tokenizer_hash);
    put_u32(header + 64, w->spec.vocab_size);
    put_u32(header + 68, w->shard_index);
    put_u32(header + 72, prompts ? w->n_field_frames : (uint32_t)margins);
    put_u32(header + 124, ct_crc32(header, 124));
    if (fseek(w->file.fp, 0, SEEK_SET) != 0 || fwrite(header, 1, sizeof header, w->file.fp) != sizeof header) {
        ct_error_errno("%s: cannot write the header", w->file.final_path);
        goto fail;
    }
    if (bytes_out) *bytes_out = w->offset + index_size;
    if (ct_atomic_commit(&w->file) != 0) goto fail;
    release_writer(w);
    return 0;
fail:
    ct_free(frame_offsets);
    ct_shard_writer_abort(w);
    return -1;
}

// ---- reading ----

static int read_exact(int fd, void *buf, size_t n, uint64_t offset) {
    size_t done = 0;
    while (done < n) {
        ssize_t got = pread(fd, (char *)buf + done, n - done, (off_t)(offset + done));
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) return -1;
        done += (size_t)got;
    }
    return 0;
}

void ct_shard_close(CtShard *s) {
    if (s->fd > 0) close(s->fd);
    ct_free(s->path);
    ct_free(s->chunk_offsets);
    ct_free(s->chunk_sizes);
    ct_free(s->chunk_token_counts);
    ct_free(s->chunk_first_token);
    ct_free(s->doc_starts);
    ct_free(s->dpo_lengths);
    ct_free(s->margins);
    ct_free(s->field_frame_offsets);
    ct_free(s->field_frame_sizes);
    ct_free(s->field_frame_first);
    ct_free(s->field_frame_raw);
    ct_free(s->field_lengths);
    memset(s, 0, sizeof *s);
    s->fd = -1;
}

// prompts: the fields frames, which lie back to back from the end of the chunks to the index,
// and each example's bytes in them.
static int parse_fields_index(CtShard *s, const unsigned char *p, uint64_t chunks_end, uint64_t index_offset) {
    const char *path = s->path;
    const uint32_t F = s->n_field_frames;
    s->field_frame_offsets = ct_alloc(sizeof(uint64_t) * (F + 1));
    s->field_frame_sizes = ct_alloc(sizeof(uint32_t) * (F + 1));
    s->field_frame_first = ct_alloc(sizeof(uint64_t) * (F + 1));
    s->field_frame_raw = ct_alloc(sizeof(uint64_t) * (F + 1));
    s->field_lengths = ct_alloc(sizeof(uint32_t) * (s->n_docs + 1));
    const unsigned char *lengths = p + 16 * (size_t)F;
    for (uint64_t d = 0; d < s->n_docs; d++) {
        s->field_lengths[d] = get_u32(lengths + 4 * d);
        if (s->field_lengths[d] < 2)  // "{}" at least
            return ct_error_set("%s: example %llu has %u bytes of fields, too few for a JSON object (corrupt index)",
                                path, (unsigned long long)d, s->field_lengths[d]);
    }
    uint64_t expect_offset = chunks_end, examples = 0;
    for (uint32_t f = 0; f < F; f++, p += 16) {
        s->field_frame_offsets[f] = get_u64(p);
        s->field_frame_sizes[f] = get_u32(p + 8);
        uint32_t n = get_u32(p + 12);
        if (s->field_frame_offsets[f] != expect_offset || s->field_frame_sizes[f] == 0 ||
            s->field_frame_offsets[f] + s->field_frame_sizes[f] > index_offset)
            return ct_error_set("%s: fields frame %u lies outside its place in the file (corrupt index)", path, f);
        if (n == 0 || n > s->n_docs - examples)
            return ct_error_set("%s: fields frame %u claims %u examples (corrupt index)", path, f, n);
        s->field_frame_first[f] = examples;
        uint64_t raw = 0;
        for (uint64_t e = examples; e < examples + n; e++) raw += s->field_lengths[e];
        if (raw > (1ull << 31))
            return ct_error_set("%s: fields frame %u claims %llu bytes (corrupt index)", path, f, (unsigned long long)raw);
        s->field_frame_raw[f] = raw;
        if (raw > s->max_field_frame_raw) s->max_field_frame_raw = raw;
        examples += n;
        expect_offset += s->field_frame_sizes[f];
    }
    s->field_frame_first[F] = examples;
    if (examples != s->n_docs)
        return ct_error_set("%s: the fields frames hold %llu examples but the header says %llu (corrupt index)", path,
                            (unsigned long long)examples, (unsigned long long)s->n_docs);
    if (expect_offset != index_offset)
        return ct_error_set("%s: the chunks and fields frames do not end where the index starts (corrupt index)", path);
    return 0;
}

static int parse_index(CtShard *s, const unsigned char *index, uint64_t index_offset) {
    const char *path = s->path;
    const unsigned char *p = index;
    s->chunk_offsets = ct_alloc(sizeof(uint64_t) * (s->n_chunks + 1));
    s->chunk_sizes = ct_alloc(sizeof(uint32_t) * (s->n_chunks + 1));
    s->chunk_token_counts = ct_alloc(sizeof(uint32_t) * (s->n_chunks + 1));
    s->chunk_first_token = ct_alloc(sizeof(uint64_t) * (s->n_chunks + 1));
    uint64_t expect_offset = CT_SHARD_HEADER_BYTES, tokens = 0;
    for (uint32_t c = 0; c < s->n_chunks; c++, p += 16) {
        s->chunk_offsets[c] = get_u64(p);
        s->chunk_sizes[c] = get_u32(p + 8);
        s->chunk_token_counts[c] = get_u32(p + 12);
        if (s->chunk_offsets[c] != expect_offset || s->chunk_sizes[c] == 0 ||
            s->chunk_offsets[c] + s->chunk_sizes[c] > index_offset)
            return ct_error_set("%s: chunk %u lies outside its place in the file (corrupt index)", path, c);
        if (s->chunk_token_counts[c] == 0 || s->chunk_token_counts[c] > (1u << 28))
            return ct_error_set("%s: chunk %u claims %u tokens (corrupt index)", path, c, s->chunk_token_counts[c]);
        s->chunk_first_token[c] = tokens;
        tokens += s->chunk_token_counts[c];
        expect_offset += s->chunk_sizes[c];
        if (s->chunk_token_counts[c] > s->max_chunk_tokens) s->max_chunk_tokens = s->chunk_token_counts[c];
    }
    s->chunk_first_token[s->n_chunks] = tokens;
    if (s->kind != CT_SHARD_PROMPTS && expect_offset != index_offset)
        return ct_error_set("%s: the chunks do not end where the index starts (corrupt index)", path);
    if (tokens != s->n_tokens)
        return ct_error_set("%s: the chunks hold %llu tokens but the header says %llu", path, (unsigned long long)tokens,
                            (unsigned long long)s->n_tokens);
    s->doc_starts = ct_alloc(sizeof(uint64_t) * (s->n_docs + 1));
    for (uint64_t d = 0; d < s->n_docs; d++, p += 8) {
        s->doc_starts[d] = get_u64(p);
        if (s->doc_starts[d] >= s->n_tokens || (d > 0 && s->doc_starts[d] <= s->doc_starts[d - 1]))
            return ct_error_set("%s: document %llu starts at %llu, out of order or past the end (corrupt index)", path,
                                (unsigned long long)d, (unsigned long long)s->doc_starts[d]);
    }
    if (s->kind != CT_SHARD_TEXT && s->n_docs > 0 && s->doc_starts[0] != 0)
        return ct_error_set("%s: the first example does not start at token 0 (corrupt index)", path);
    if (s->kind == CT_SHARD_DPO) {
        s->dpo_lengths = ct_alloc(3 * sizeof(uint32_t) * (s->n_docs + 1));
        uint64_t at = 0;
        for (uint64_t d = 0; d < s->n_docs; d++) {
            for (int k = 0; k < 3; k++, p += 4) s->dpo_lengths[3 * d + k] = get_u32(p);
            if (s->doc_starts[d] != at)
                return ct_error_set("%s: dpo example %llu does not start where the previous one ends (corrupt index)",
                                    path, (unsigned long long)d);
            at += (uint64_t)s->dpo_lengths[3 * d] + s->dpo_lengths[3 * d + 1] + s->dpo_lengths[3 * d + 2];
        }
        if (at != s->n_tokens) return ct_error_set("%s: dpo example lengths do not add up to the tokens (corrupt index)", path);
        if (s->dpo_margins) {
            s->margins = ct_alloc(sizeof(double) * (s->n_docs + 1));
            for (uint64_t d = 0; d < s->n_docs; d++, p += 8) {
                s->margins[d] = get_f64(p);
                if (!isfinite(s->margins[d]))
                    return ct_error_set("%s: dpo example %llu has margin %g, not a finite number (corrupt index)", path,
                                        (unsigned long long)d, s->margins[d]);
            }
        }
    }
    if (s->kind == CT_SHARD_PROMPTS) return parse_fields_index(s, p, expect_offset, index_offset);
    return 0;
}

int ct_shard_open(CtShard *s, const char *path) {
    memset(s, 0, sizeof *s);
    s->fd = -1;
    s->path = ct_strdup(path);
    s->fd = open(path, O_RDONLY);
    if (s->fd < 0) {
        ct_error_errno("%s: cannot open shard", path);
        goto fail;
    }
    struct stat st;
    if (fstat(s->fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        ct_error_set("%s: not a regular file", path);
        goto fail;
    }
    s->file_size = (uint64_t)st.st_size;
    unsigned char h[CT_SHARD_HEADER_BYTES];
    if (s->file_size < CT_SHARD_HEADER_BYTES || read_exact(s->fd, h, sizeof h, 0) != 0) {
        ct_error_set("%s: truncated: %llu bytes, shorter than a shard header", path, (unsigned long long)s->file_size);
        goto fail;
    }
    if (memcmp(h, MAGIC, 8) != 0) {
        ct_error_set("%s: not a ctrain shard (bad magic)", path);
        goto fail;
    }
    uint32_t version = get_u32(h + 8);
    if (version < CT_SHARD_VERSION || version > CT_SHARD_VERSION_MAX) {
        ct_error_set("%s: shard format version %u; this ctrain reads versions %d to %d", path, version,
                     CT_SHARD_VERSION, CT_SHARD_VERSION_MAX);
        goto fail;
    }
    if (get_u32(h + 124) != ct_crc32(h, 124)) {
        ct_error_set("%s: header checksum mismatch (the file is corrupt)", path);
        goto fail;
    }
    uint32_t kind = get_u32(h + 12);
    s->kind = (CtShardKind)kind;
    s->token_bytes = get_u32(h + 16);
    s->n_chunks = get_u32(h + 20);
    s->n_tokens = get_u64(h + 24);
    s->n_docs = get_u64(h + 32);
    uint64_t index_offset = get_u64(h + 40), index_size = get_u64(h + 48);
    s->tokenizer_hash = get_u64(h + 56);
    s->vocab_size = get_u32(h + 64);
    s->shard_index = get_u32(h + 68);
    s->n_field_frames = kind == CT_SHARD_PROMPTS ? get_u32(h + 72) : 0;
    const uint32_t margins_flag = kind == CT_SHARD_DPO ? get_u32(h + 72) : 0;
    s->dpo_margins = margins_flag == 1;
    if (kind < CT_SHARD_TEXT || kind > CT_SHARD_PROMPTS || (int)version < ct_shard_kind_version(s->kind) ||
        (s->token_bytes != 2 && s->token_bytes != 4) || s->vocab_size == 0 ||
        (s->token_bytes == 2 && s->vocab_size > 65536)) {
        ct_error_set("%s: header has an unknown kind, token size or vocabulary size (corrupt)", path);
        goto fail;
    }
    if (margins_flag > 1 || (s->dpo_margins && version < CT_SHARD_VERSION_DPO_MARGINS)) {
        ct_error_set("%s: the header's dpo margins flag is %u in a version %u shard (margins came with version %d, flag 1; "
                     "the file is corrupt)", path, margins_flag, version, CT_SHARD_VERSION_DPO_MARGINS);
        goto fail;
    }
    if (index_offset < CT_SHARD_HEADER_BYTES || index_offset > s->file_size || index_size > s->file_size - index_offset) {
        ct_error_set("%s: truncated: %llu bytes, but the index ends at byte %llu", path, (unsigned long long)s->file_size,
                     (unsigned long long)(index_offset + index_size));
        goto fail;
    }
    if (index_offset + index_size != s->file_size) {
        ct_error_set("%s: %llu bytes of trailing data after the index (corrupt)", path,
                     (unsigned long long)(s->file_size - index_offset - index_size));
        goto fail;
    }
    uint64_t expect = 16 * (uint64_t)s->n_chunks + 4;
    if (s->n_docs > index_size || s->n_field_frames > index_size) {  // each takes at least 8 bytes of the index
        ct_error_set("%s: header claims %llu documents and %u fields frames, more than the index can hold (corrupt)",
                     path, (unsigned long long)s->n_docs, s->n_field_frames);
        goto fail;
    }
    expect += 8 * s->n_docs + (s->kind == CT_SHARD_DPO ? 12 * s->n_docs : 0) + (s->dpo_margins ? 8 * s->n_docs : 0) +
              (s->kind == CT_SHARD_PROMPTS ? 16 * (uint64_t)s->n_field_frames + 4 * s->n_docs : 0);
    if (index_size != expect) {
        ct_error_set("%s: index is %llu bytes, expected %llu for its chunks and documents (corrupt)", path,
                     (unsigned long long)index_size, (unsigned long long)expect);
        goto fail;
    }
    unsigned char *index = ct_alloc(index_size);
    if (read_exact(s->fd, index, index_size, index_offset) != 0) {
        ct_free(index);
        ct_error_errno("%s: cannot read the index", path);
        goto fail;
    }
    if (get_u32(index + index_size - 4) != ct_crc32(index, index_size - 4)) {
        ct_free(index);
        ct_error_set("%s: index checksum mismatch (the file is corrupt)", path);
        goto fail;
    }
    int rc = parse_index(s, index, index_offset);
    ct_free(index);
    if (rc != 0) goto fail;
    return 0;
fail:
    ct_shard_close(s);
    return -1;
}

void *ct_shard_dctx_new(void) {
    ZSTD_DCtx *d = ZSTD_createDCtx();
    CT_CHECK(d, "out of memory creating a zstd context");
    return d;
}

void ct_shard_dctx_free(void *dctx) { ZSTD_freeDCtx(dctx); }

uint32_t ct_shard_chunk_of(const CtShard *s, uint64_t position) {
    uint32_t lo = 0, hi = s->n_chunks;  // the last chunk whose first token is <= position
    while (hi - lo > 1) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (s->chunk_first_token[mid] <= position)
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}

long ct_shard_read_chunk(const CtShard *s, uint32_t c, void *dctx, int32_t *tokens, uint8_t *mask) {
    CT_CHECK(c < s->n_chunks, "chunk index in range");
    uint32_t n = s->chunk_token_counts[c], tb = s->token_bytes;
    int with_mask = s->kind == CT_SHARD_SFT;
    size_t raw_size = (size_t)n * tb + (with_mask ? n : 0);
    unsigned char *compressed = ct_alloc(s->chunk_sizes[c]);
    unsigned char *raw = ct_alloc(raw_size);
    long rc = -1;
    // The place named in errors: the chunk and its bytes in the file.
    const unsigned long long from = s->chunk_offsets[c], to = from + s->chunk_sizes[c];
    if (read_exact(s->fd, compressed, s->chunk_sizes[c], s->chunk_offsets[c]) != 0) {
        ct_error_errno("%s: chunk %u (bytes %llu-%llu): cannot read", s->path, c, from, to);
        goto done;
    }
    size_t got = ZSTD_decompressDCtx(dctx, raw, raw_size, compressed, s->chunk_sizes[c]);
    if (ZSTD_isError(got)) {
        ct_error_set("%s: chunk %u (bytes %llu-%llu): %s (the file is corrupt; shard the data again)", s->path, c, from,
                     to, ZSTD_getErrorName(got));
        goto done;
    }
    if (got != raw_size) {
        ct_error_set("%s: chunk %u (bytes %llu-%llu): decompressed to %zu bytes, expected %zu (the file is corrupt; "
                     "shard the data again)", s->path, c, from, to, got, raw_size);
        goto done;
    }
    for (uint32_t i = 0; i < n; i++) {
        const unsigned char *p = raw + (size_t)i * tb;
        uint32_t t = tb == 2 ? (uint32_t)p[0] | (uint32_t)p[1] << 8 : get_u32(p);
        if (t >= s->vocab_size) {
            ct_error_set("%s: chunk %u (bytes %llu-%llu): token %u at position %llu is outside the vocabulary of %u "
                         "(the file is corrupt; shard the data again)", s->path, c, from, to, t,
                         (unsigned long long)(s->chunk_first_token[c] + i), s->vocab_size);
            goto done;
        }
        tokens[i] = (int32_t)t;
    }
    const unsigned char *raw_mask = raw + (size_t)n * tb;
    for (uint32_t i = 0; with_mask && i < n; i++)  // the writer stores 0 or 1
        if (raw_mask[i] > 1) {
            ct_error_set("%s: chunk %u (bytes %llu-%llu): loss-mask byte %u at position %llu is neither 0 nor 1 (the "
                         "file is corrupt; shard the data again)", s->path, c, from, to, raw_mask[i],
                         (unsigned long long)(s->chunk_first_token[c] + i));
            goto done;
        }
    if (mask) {
        if (with_mask)
            memcpy(mask, raw_mask, n);
        else
            memset(mask, 1, n);
    }
    rc = n;
done:
    ct_free(compressed);
    ct_free(raw);
    return rc;
}

long ct_shard_read_fields_frame(const CtShard *s, uint32_t f, void *dctx, char *out) {
    CT_CHECK(f < s->n_field_frames, "fields frame index in range");
    const size_t raw = (size_t)s->field_frame_raw[f];
    unsigned char *compressed = ct_alloc(s->field_frame_sizes[f]);
    long rc = -1;
    const unsigned long long from = s->field_frame_offsets[f], to = from + s->field_frame_sizes[f];
    if (read_exact(s->fd, compressed, s->field_frame_sizes[f], s->field_frame_offsets[f]) != 0) {
        ct_error_errno("%s: fields frame %u (bytes %llu-%llu): cannot read", s->path, f, from, to);
        goto done;
    }
    size_t got = ZSTD_decompressDCtx(dctx, out, raw, compressed, s->field_frame_sizes[f]);
    if (ZSTD_isError(got) || got != raw) {
        ct_error_set("%s: fields frame %u (bytes %llu-%llu): %s (the file is corrupt; shard the data again)", s->path, f,
                     from, to, ZSTD_isError(got) ? ZSTD_getErrorName(got) : "decompressed to the wrong size");
        goto done;
    }
    size_t at = 0;
    for (uint64_t e = s->field_frame_first[f]; e < s->field_frame_first[f + 1]; e++) {
        const char *end = NULL;
        cJSON *obj = cJSON_ParseWithLengthOpts(out + at, s->field_lengths[e], &end, 0);
        int ok = cJSON_IsObject(obj) && end == out + at + s->field_lengths[e];
        cJSON_Delete(obj);
        if (!ok) {
            ct_error_set("%s: fields frame %u (bytes %llu-%llu): the fields of example %llu are not one JSON object "
                         "(the file is corrupt; shard the data again)", s->path, f, from, to, (unsigned long long)e);
            goto done;
        }
        at += s->field_lengths[e];
    }
    rc = (long)raw;
done:
    ct_free(compressed);
    return rc;
}

int ct_shard_read_range(const CtShard *s, uint64_t first, uint64_t n, void *dctx, int32_t *tokens, uint8_t *mask) {
    if (n == 0) return 0;
    CT_CHECK(first + n <= s->n_tokens, "token range inside the shard");
    int32_t *chunk_tokens = ct_alloc(sizeof(int32_t) * s->max_chunk_tokens);
    uint8_t *chunk_mask = mask ? ct_alloc(s->max_chunk_tokens) : NULL;
    int rc = 0;
    uint64_t done = 0;
    for (uint32_t c = ct_shard_chunk_of(s, first); done < n; c++) {
        if (ct_shard_read_chunk(s, c, dctx, chunk_tokens, chunk_mask) < 0) {
            rc = -1;
            break;
        }
        uint64_t from = first + done - s->chunk_first_token[c];
        uint64_t take = s->chunk_token_counts[c] - from;
        if (take > n - done) take = n - done;
        memcpy(tokens + done, chunk_tokens + from, sizeof(int32_t) * take);
        if (mask) memcpy(mask + done, chunk_mask + from, take);
        done += take;
    }
    ct_free(chunk_tokens);
    ct_free(chunk_mask);
    return rc;
}
