// safetensors: round trip of every dtype with metadata, 16-bit conversions, and hand-built
// corrupt files, each refused with its own one-line message naming the file.
#include <math.h>
#include <stdint.h>

#include "checkpoints/dtype_convert.h"
#include "checkpoints/safetensors.h"
#include "core/alloc.h"
#include "core/error.h"
#include "tests/test.h"

// A file made of a header length (as given, so it may lie), the header text and `data_len`
// bytes of data.
static const char *write_raw(const char *name, uint64_t header_len, const char *header, size_t data_len) {
    const char *path = ct_test_path(name);
    FILE *fp = fopen(path, "wb");
    for (int i = 0; i < 8; i++) fputc((int)((header_len >> (8 * i)) & 0xff), fp);
    fputs(header, fp);
    for (size_t i = 0; i < data_len; i++) fputc((int)(i * 7 + 1) & 0xff, fp);
    fclose(fp);
    return path;
}

static const char *write_file(const char *name, const char *header, size_t data_len) {
    return write_raw(name, strlen(header), header, data_len);
}

// Opens `path` expecting failure; returns the message (or NULL when it opened).
static const char *refused(const char *path) {
    CtSafetensors f;
    if (ct_st_open(&f, path) == 0) {
        ct_st_close(&f);
        return NULL;
    }
    return ct_error_message();
}

#define CHECK_REFUSED(path, needle)                                        \
    do {                                                                   \
        const char *msg_ = refused(path);                                  \
        CHECK_MSG(msg_ != NULL, "%s was accepted", path);                  \
        CHECK_CONTAINS(msg_, path);                                        \
        CHECK_CONTAINS(msg_, needle);                                      \
        CHECK_MSG(strchr(msg_, '\n') == NULL, "not one line: %s", msg_); \
    } while (0)

TEST(safetensors, round_trip_keeps_every_bit_and_the_metadata) {
    float a[6];
    uint16_t h[5], b[3];
    int32_t ids[2] = {-7, 1 << 30};
    for (int i = 0; i < 6; i++) a[i] = (float)i * 0.37f - 1;
    uint32_t nan_bits = 0x7fc01234u;
    memcpy(&a[5], &nan_bits, 4);
    for (int i = 0; i < 5; i++) h[i] = (uint16_t)(0x3c00 + i * 17);
    for (int i = 0; i < 3; i++) b[i] = (uint16_t)(0xbf80 - i);
    CtNamedTensor t[4] = {
        {"model.layers.0.self_attn.q_proj.weight", 2, {2, 3}, CT_DTYPE_F32, a},
        {"h \"quoted\" \\ name", 1, {5}, CT_DTYPE_F16, h},
        {"bf", 3, {1, 3, 1}, CT_DTYPE_BF16, b},
        {"ids", 1, {2}, CT_DTYPE_I32, ids},
    };
    CtStMetaEntry meta[2] = {{"format", "pt"}, {"note", "line\nbreak"}};
    const char *path = ct_test_path("m.safetensors");
    CHECK_MSG(ct_st_write(path, t, 4, meta, 2) == 0, "%s", ct_error_message());
    CtSafetensors f;
    CHECK_MSG(ct_st_open(&f, path) == 0, "%s", ct_error_message());
    CHECK_EQ_INT(f.n_tensors, 4);
    CHECK_STR_EQ(ct_st_meta(&f, "format"), "pt");
    CHECK_STR_EQ(ct_st_meta(&f, "note"), "line\nbreak");
    CHECK(ct_st_meta(&f, "absent") == NULL);
    const CtStTensor *q = ct_st_find(&f, t[0].name);
    CHECK(q && q->dtype == CT_ST_F32 && q->ndim == 2 && q->shape[0] == 2 && q->shape[1] == 3);
    CHECK(((uintptr_t)q->data) % 4 == 0);  // the data buffer is aligned
    CHECK(memcmp(q->data, a, sizeof a) == 0);
    const CtStTensor *x = ct_st_find(&f, t[1].name);
    CHECK(x && x->dtype == CT_ST_F16 && memcmp(x->data, h, sizeof h) == 0);
    x = ct_st_find(&f, "bf");
    CHECK(x && x->dtype == CT_ST_BF16 && x->ndim == 3 && memcmp(x->data, b, sizeof b) == 0);
    x = ct_st_find(&f, "ids");
    CHECK(x && x->dtype == CT_ST_I32 && memcmp(x->data, ids, sizeof ids) == 0);
    float back[5];
    CHECK(ct_st_read_f32(&f, ct_st_find(&f, "bf"), back) == 0);
    CHECK(back[0] == -1.0f);
    CHECK(ct_st_read_f32(&f, ct_st_find(&f, t[1].name), back) == 0);
    CHECK(back[0] == 1.0f);
    CHECK(ct_st_read_f32(&f, ct_st_find(&f, "ids"), back) == -1);
    CHECK_CONTAINS(ct_error_message(), "dtype I32");
    ct_st_close(&f);
}

TEST(safetensors, empty_file_and_zero_size_tensors) {
    const char *path = ct_test_path("empty.safetensors");
    CHECK(ct_st_write(path, NULL, 0, NULL, 0) == 0);
    CtSafetensors f;
    CHECK_MSG(ct_st_open(&f, path) == 0, "%s", ct_error_message());
    CHECK_EQ_INT(f.n_tensors, 0);
    ct_st_close(&f);
    path = write_file("zero.safetensors",
                      "{\"a\":{\"dtype\":\"F32\",\"shape\":[0,4],\"data_offsets\":[0,0]},"
                      "\"b\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]}}   ",
                      2);
    CHECK_MSG(ct_st_open(&f, path) == 0, "%s", ct_error_message());
    CHECK_EQ_INT(f.n_tensors, 2);
    ct_st_close(&f);
}

TEST(safetensors, sixteen_bit_conversions_round_to_nearest_even) {
    CHECK(ct_f32_to_f16(1.0f) == 0x3c00);
    CHECK(ct_f32_to_f16(65504.0f) == 0x7bff);
    CHECK(ct_f32_to_f16(65520.0f) == 0x7c00);        // rounds up to infinity
    CHECK(ct_f32_to_f16(65519.0f) == 0x7bff);
    CHECK(ct_f32_to_f16(-0.0f) == 0x8000);
    CHECK(ct_f32_to_f16(0x1p-24f) == 0x0001);        // smallest subnormal
    CHECK(ct_f32_to_f16(0x1p-25f) == 0x0000);        // halfway: to even (zero)
    CHECK(ct_f32_to_f16(0x1.8p-24f) == 0x0002);      // 1.5 ulp: to even (2)
    CHECK(ct_f32_to_f16(1.0f + 0x1p-11f) == 0x3c00);  // halfway between 1 and 1+2^-10: even
    CHECK(ct_f32_to_f16(1.0f + 0x1.8p-10f) == 0x3c02);
    CHECK(ct_f32_to_f16(INFINITY) == 0x7c00);
    CHECK(isnan(ct_f16_to_f32(ct_f32_to_f16(NAN))));
    CHECK(ct_f32_to_bf16(1.0f) == 0x3f80);
    CHECK(ct_f32_to_bf16(1.0f + 0x1p-8f) == 0x3f80);  // halfway: even
    CHECK(ct_f32_to_bf16(1.0f + 0x1.8p-7f) == 0x3f82);  // 1.5 ulp: even (2)
    CHECK(ct_f32_to_bf16(1.0f + 0x1.8p-8f) == 0x3f81);  // 0.75 ulp: up
    CHECK(isnan(ct_bf16_to_f32(ct_f32_to_bf16(NAN))));
    // every half value survives f16 -> f32 -> f16
    for (uint32_t h = 0; h < 0x10000; h++) {
        if ((h & 0x7c00) == 0x7c00 && (h & 0x3ff)) continue;  // NaNs: payload quietened
        CHECK_MSG(ct_f32_to_f16(ct_f16_to_f32((uint16_t)h)) == h, "half 0x%04x", h);
    }
    for (uint32_t b = 0; b < 0x10000; b++) {
        if ((b & 0x7f80) == 0x7f80 && (b & 0x7f)) continue;
        CHECK_MSG(ct_f32_to_bf16(ct_bf16_to_f32((uint16_t)b)) == b, "bf16 0x%04x", b);
    }
}

static const char *GOOD = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                          "\"b\":{\"dtype\":\"F16\",\"shape\":[2,2],\"data_offsets\":[8,16]}}";

TEST(safetensors, hand_built_good_file_opens) {
    const char *path = write_file("good.safetensors", GOOD, 16);
    CtSafetensors f;
    CHECK_MSG(ct_st_open(&f, path) == 0, "%s", ct_error_message());
    CHECK_EQ_INT(f.n_tensors, 2);
    CHECK_EQ_INT(ct_st_find(&f, "b")->nbytes, 8);
    ct_st_close(&f);
}

TEST(safetensors, refuses_header_too_long) {
    CHECK_REFUSED(write_raw("long.safetensors", 200000000ull, GOOD, 16), "above the limit");
    CHECK_REFUSED(write_raw("huge.safetensors", UINT64_MAX, GOOD, 16), "above the limit");
}

TEST(safetensors, refuses_truncated_files) {
    CHECK_REFUSED(write_raw("past_end.safetensors", strlen(GOOD) + 100, GOOD, 16), "truncated");
    const char *tiny = ct_test_path("tiny.safetensors");
    FILE *fp = fopen(tiny, "wb");
    fputs("\x05\x00\x00", fp);
    fclose(fp);
    CHECK_REFUSED(tiny, "truncated");
    CHECK_REFUSED(write_file("short_data.safetensors", GOOD, 12), "outside the data buffer");
    // a real file with its last bytes cut off
    float v[4] = {1, 2, 3, 4};
    CtNamedTensor t = {"v", 1, {4}, CT_DTYPE_F32, v};
    const char *cut = ct_test_path("cut.safetensors");
    CHECK(ct_st_write(cut, &t, 1, NULL, 0) == 0);
    size_t size;
    char *bytes = ct_test_read(cut, &size);
    fp = fopen(cut, "wb");
    fwrite(bytes, 1, size - 3, fp);
    fclose(fp);
    free(bytes);
    CHECK_REFUSED(cut, "truncated file?");
}

TEST(safetensors, refuses_offsets_out_of_range) {
    CHECK_REFUSED(write_file("range.safetensors",
                             "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                             "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[1000000,1000008]}}",
                             16),
                  "outside the data buffer");
    CHECK_REFUSED(write_file("backwards.safetensors", "{\"a\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[8,0]}}", 8),
                  "end before they begin");
    CHECK_REFUSED(write_file("negative.safetensors", "{\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[-2,0]}}", 8),
                  "data_offsets is not two non-negative integers");
}

TEST(safetensors, refuses_overlap_and_gaps) {
    CHECK_REFUSED(write_file("overlap.safetensors",
                             "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                             "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
                             12),
                  "overlap");
    CHECK_REFUSED(write_file("gap.safetensors",
                             "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                             "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}",
                             12),
                  "bytes 4..8 of the data buffer belong to no tensor");
    CHECK_REFUSED(write_file("tail.safetensors", GOOD, 20), "at the end of the file belong to no tensor");
}

TEST(safetensors, refuses_wrong_dtypes_and_shapes) {
    CHECK_REFUSED(write_file("dtype.safetensors", "{\"a\":{\"dtype\":\"F33\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8),
                  "unknown dtype 'F33'");
    CHECK_REFUSED(write_file("nodtype.safetensors", "{\"a\":{\"dtype\":7,\"shape\":[2],\"data_offsets\":[0,8]}}", 8),
                  "no dtype");
    CHECK_REFUSED(write_file("size.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8),
                  "takes 12 bytes but data_offsets span 8");
    CHECK_REFUSED(write_file("bf.safetensors", "{\"a\":{\"dtype\":\"BF16\",\"shape\":[2,2],\"data_offsets\":[0,16]}}", 16),
                  "takes 8 bytes but data_offsets span 16");
    CHECK_REFUSED(write_file("frac.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,8]}}", 8),
                  "shape entry 0");
    CHECK_REFUSED(write_file("dims.safetensors",
                             "{\"a\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,1]}}", 1),
                  "9 dimensions");
    CHECK_REFUSED(write_file("overflow.safetensors",
                             "{\"a\":{\"dtype\":\"F64\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,1]}}", 1),
                  "too large");
}

TEST(safetensors, refuses_malformed_headers) {
    CHECK_REFUSED(write_file("json.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],", 8), "not well-formed JSON");
    CHECK_REFUSED(write_file("start.safetensors", "[1,2]", 0), "does not start with '{'");
    CHECK_REFUSED(write_file("after.safetensors", "{} x", 0), "data after its JSON object");
    CHECK_REFUSED(write_file("dup.safetensors",
                             "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
                             "\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}",
                             2),
                  "'a' appears twice");
    CHECK_REFUSED(write_file("meta.safetensors", "{\"__metadata__\":{\"format\":1}}", 0), "is not a string");
    CHECK_REFUSED(write_file("utf8.safetensors", "{\"\xff\":{}}", 0), "not valid UTF-8");
    CHECK_REFUSED(write_file("entry.safetensors", "{\"a\":[]}", 0), "not an object");
    CHECK_REFUSED(write_file("newline.safetensors", "{\"a\\nb\":[]}", 0), "tensor 'a?b'");  // one line still
    CHECK_REFUSED(ct_test_path("missing.safetensors"), "cannot open");
}
