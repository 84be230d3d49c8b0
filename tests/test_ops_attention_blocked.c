// The BLAS attention engine's tiles of query rows (ct_cpu_set_attention_tile; issue 28): each
// tile's products cover only the keys its rows can see, so causal attention skips the tiles
// above the diagonal. Gradients against finite differences in double with tile boundaries
// crossed (T not a multiple of the tile, T below the tile, T several tiles), and, at T 256,
// tiles of 64 against one tile (the whole T×T matrix, the engine as it was) to float rounding:
// forward, saved probabilities and gradients, causal and bidirectional, with documents,
// padding, dropout, a window and a soft cap.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/rng.h"
#include "kernels/cpu/cpu_ops.h"
#include "kernels/ops.h"
#include "tests/attention_gradcheck.h"
#include "tests/gradcheck.h"
#include "tests/test.h"

#define OPS (ct_ops_cpu())

// One gradient check of the BLAS engine with tiles of `tile` rows over B = 2 sequences of T
// positions; doc (may be NULL) holds 2·T ids.
static void tiled_gradient_case(const char *label, int tile, int T, int NH, int NKV, const int32_t *doc,
                                float dropout, const CtAttentionOptions *opt) {
    ct_cpu_set_attention_blas_min_seq(1);
    ct_cpu_set_attention_tile(tile);
    CtRng rng;
    ct_rng_seed(&rng, 17);
    AttentionGradCtx a = {.B = 2, .T = T, .NH = NH, .NKV = NKV, .HD = 4, .p = dropout, .seed = 99, .doc = doc, .opt = opt};
    a.att = ct_alloc(sizeof(double) * a.B * NH * T * T);
    a.attf = ct_alloc(sizeof(float) * a.B * NH * T * T);
    size_t n_in = (size_t)a.B * T * (NH + 2 * NKV) * a.HD;
    GradCase c = {.label = label, .n_inputs = 1, .x = {gc_random(&rng, n_in, 1)}, .n = {n_in},
                  .n_out = (size_t)a.B * T * NH * a.HD, .ctx = &a,
                  .forward64 = attention_grad_f64, .backward64 = attention_grad_b64, .forward32 = attention_grad_f32,
                  .backward32 = attention_grad_b32};
    CHECK_GRADS(c);
    ct_free(a.att);
    ct_free(a.attf);
}

// Ids of two sequences of 13 positions for tiles of 4: row 0 packs documents that start inside
// tiles and one that spans two tiles; row 1 ends in padding (an id of its own, -1).
static const int32_t docs13[26] = {0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2,  //
                                   3, 3, 3, 3, 3, 3, 3, 3, 3, -1, -1, -1, -1};
// The same id in two separate runs (row 0: 0 … 1 … 0): no document narrowing of the key span,
// the mask alone keeps documents apart.
static const int32_t docs13_split[26] = {0, 0, 0, 0, 1, 1, 1, 1, 1, 0, 0, 0, 0,  //
                                         2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2};

TEST(ops, attention_tiled_gradient_causal) {
    // T 13 over tiles of 4 (the last one short), T 3 under a tile of 4, T 12 = 3 tiles of 4
    tiled_gradient_case("causal MHA, T 13, tile 4", 4, 13, 3, 3, NULL, 0, NULL);
    tiled_gradient_case("causal GQA 4/2, T 3, tile 4", 4, 3, 4, 2, NULL, 0, NULL);
    tiled_gradient_case("causal MQA 3/1, T 12, tile 4", 4, 12, 3, 1, NULL, 0, NULL);
    tiled_gradient_case("causal GQA, T 13, tile 1", 1, 13, 4, 2, NULL, 0, NULL);
}

TEST(ops, attention_tiled_gradient_documents_and_dropout) {
    tiled_gradient_case("causal GQA + documents, T 13, tile 4", 4, 13, 4, 2, docs13, 0, NULL);
    tiled_gradient_case("causal GQA + split documents, T 13, tile 4", 4, 13, 4, 2, docs13_split, 0, NULL);
    tiled_gradient_case("causal MQA + documents + dropout, T 13, tile 5", 5, 13, 3, 1, docs13, 0.3f, NULL);
}

TEST(ops, attention_tiled_gradient_options) {
    const CtAttentionOptions window = {.window = 5}, all = {.scale = 0.7f, .softcap = 2.0f, .window = 6};
    tiled_gradient_case("causal window 5, T 13, tile 4", 4, 13, 4, 2, NULL, 0, &window);
    tiled_gradient_case("causal window + cap + scale + documents + dropout, T 13, tile 3", 3, 13, 4, 2, docs13, 0.3f,
                        &all);
}

TEST(ops, attention_tiled_gradient_bidirectional) {
    const CtAttentionOptions bi = {.bidirectional = 1}, bi_all = {.bidirectional = 1, .softcap = 1.5f, .window = 4};
    tiled_gradient_case("bidirectional GQA, T 13, tile 4", 4, 13, 4, 2, NULL, 0, &bi);
    tiled_gradient_case("bidirectional GQA + padding and documents, T 13, tile 4", 4, 13, 4, 2, docs13, 0, &bi);
    tiled_gradient_case("bidirectional + split documents + dropout, T 13, tile 4", 4, 13, 3, 1, docs13_split, 0.3f,
                        &bi);
    tiled_gradient_case("bidirectional window + cap + padding, T 13, tile 4", 4, 13, 4, 2, docs13, 0, &bi_all);
}

// ---- tiles of 64 against the whole matrix at T 256 ----

// max |a − b| / max |b| over n floats.
static double max_rel_diff(const float *a, const float *b, size_t n) {
    double err = 0, ref = 0;
    for (size_t i = 0; i < n; i++) {
        err = fmax(err, fabs((double)a[i] - b[i]));
        ref = fmax(ref, fabs((double)b[i]));
    }
    return ref > 0 ? err / ref : err;
}

// Forward, probabilities and gradients with tiles of 64 and with one tile of T, in float; the
// probabilities outside every row's visible keys are exactly 0 in both.
static void tiles_match_whole(const char *label, const int32_t *doc, float dropout, const CtAttentionOptions *opt) {
    const int B = 2, T = 256, NH = 4, NKV = 2, HD = 16, row = (NH + 2 * NKV) * HD;
    ct_cpu_set_attention_blas_min_seq(1);
    CtRng rng;
    ct_rng_seed(&rng, 23);
    const size_t n_in = (size_t)B * T * row, n_out = (size_t)B * T * NH * HD, n_att = (size_t)B * NH * T * T;
    float *qkv = ct_alloc(sizeof(float) * n_in), *dout = ct_alloc(sizeof(float) * n_out);
    ct_rng_fill_normal(&rng, qkv, n_in, 0, 1);
    ct_rng_fill_normal(&rng, dout, n_out, 0, 1);
    float *out[2], *att[2], *dqkv[2];
    const int tiles[2] = {64, 0};
    for (int e = 0; e < 2; e++) {
        ct_cpu_set_attention_tile(tiles[e]);
        out[e] = ct_alloc(sizeof(float) * n_out);
        att[e] = ct_alloc(sizeof(float) * n_att);
        dqkv[e] = ct_alloc(sizeof(float) * n_in);
        for (size_t i = 0; i < n_att; i++) att[e][i] = NAN;  // every entry must be written
        memset(dqkv[e], 0, sizeof(float) * n_in);
        OPS->attention_forward(out[e], att[e], qkv, doc, dropout, 5, B, T, NH, NKV, HD, opt);
        OPS->attention_backward(dqkv[e], dout, qkv, att[e], dropout, 5, B, T, NH, NKV, HD, opt);
    }
    double e_out = max_rel_diff(out[0], out[1], n_out), e_att = max_rel_diff(att[0], att[1], n_att);
    double e_grad = max_rel_diff(dqkv[0], dqkv[1], n_in);
    CHECK_MSG(e_out < 1e-5, "%s: output, tiles vs whole: %.3g", label, e_out);
    CHECK_MSG(e_att < 1e-5, "%s: probabilities, tiles vs whole: %.3g", label, e_att);
    CHECK_MSG(e_grad < 1e-5, "%s: gradients, tiles vs whole: %.3g", label, e_grad);
    const int window = opt ? opt->window : 0, bidirectional = opt && opt->bidirectional;
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++)
            for (int t = 0; t < T; t++)
                for (int t2 = 0; t2 < T; t2++) {
                    int visible = (bidirectional || t2 <= t) && (window <= 0 || abs(t - t2) < window) &&
                                  (!doc || doc[b * T + t2] == doc[b * T + t]);
                    if (visible) continue;
                    const size_t i = (((size_t)b * NH + h) * T + t) * T + t2;
                    CHECK_MSG(att[0][i] == 0 && att[1][i] == 0, "%s: P[%d,%d] of head %d = %g (tiles), %g (whole)",
                              label, t, t2, h, att[0][i], att[1][i]);
                }
    for (int e = 0; e < 2; e++) {
        ct_free(out[e]);
        ct_free(att[e]);
        ct_free(dqkv[e]);
    }
    ct_free(qkv);
    ct_free(dout);
}

// Row 0: documents of 50, 100, 30 and 76 positions (boundaries inside tiles); row 1: 200 tokens
// and 56 pads.
static void packed_docs_256(int32_t *doc) {
    for (int t = 0; t < 256; t++) {
        doc[t] = t < 50 ? 0 : t < 150 ? 1 : t < 180 ? 2 : 3;
        doc[256 + t] = t < 200 ? 7 : -1;
    }
}

TEST(ops, attention_tiles_match_whole_matrix_causal) {
    int32_t doc[512];
    packed_docs_256(doc);
    const CtAttentionOptions all = {.scale = 0.2f, .softcap = 3.0f, .window = 100};
    tiles_match_whole("causal", NULL, 0, NULL);
    tiles_match_whole("causal + documents + dropout", doc, 0.2f, NULL);
    tiles_match_whole("causal window + cap + scale + documents", doc, 0, &all);
}

TEST(ops, attention_tiles_match_whole_matrix_bidirectional) {
    int32_t doc[512];
    packed_docs_256(doc);
    const CtAttentionOptions bi = {.bidirectional = 1}, bi_window = {.bidirectional = 1, .window = 70};
    tiles_match_whole("bidirectional + padding and documents", doc, 0, &bi);
    tiles_match_whole("bidirectional window + dropout", NULL, 0.2f, &bi_window);
}
