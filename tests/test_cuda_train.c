// The model on the GPU against the model on the CPU (suite "cuda"): one training step (loss,
// per-token log-probabilities, every gradient, the AdamW update) for GPT-2 and LLaMA with GQA,
// packed documents and loss weights, LoRA, DPO; bf16 products with GPT-2's GELU fused into its
// MLP products (and unfused where LoRA adapts the MLP); 20 steps whose losses track the CPU's; and
// pretraining through the binary with run.device = cuda, resumed to the bit (fp32 and bf16). Without a usable
// GPU every test skips with the reason (they also run on the CPU emulation of CUDA,
// tests/test_cuda_emu/run.sh).
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "kernels/device.h"
#include "kernels/ops.h"
#include "optim/adamw.h"
#include "optim/clip.h"
#include "tests/cuda_fixture.h"
#include "tests/hf_fixture.h"
#include "tests/model_fixture.h"
#include "tests/test.h"
#include "tests/train_fixture.h"
#include "train/interop/checkpoint_io.h"
#include "train/objectives/dpo.h"
#include "train/model/generate.h"
#include "train/model/lora.h"
#include "train/objectives/step_batches.h"

// fp32 on both sides; the sums run in other orders (cuBLASLt, block reductions), so a few ulps
// of the largest value per result, far below what a wrong index or a missed term gives.
#define TOL 1e-5



static float *download(const CtOps *ops, const float *dev, size_t n) {
    float *h = ct_alloc(n * sizeof(float) + 1);
    ops->download(h, dev, n * sizeof(float));
    return h;
}

#define CHECK_ARRAYS(ops, dev, host, n, what)                                                  \
    do {                                                                                       \
        float *got_ = download(ops, dev, n);                                                   \
        double r_ = hf_fixture_relative_error(got_, host, n);                                  \
        CHECK_MSG(r_ < TOL, "%s: GPU differs from CPU by %.3g (relative to the largest)", what, r_); \
        ct_free(got_);                                                                         \
    } while (0)

// Two copies of one model: `cpu` stays on the CPU, `gpu` is moved to the GPU.
static void twin_models(CtModel *cpu, CtModel *gpu, const CtModelConfig *c, const CtOps *ops, int B, int T, int flags,
                        uint64_t seed) {
    CHECK_EQ_INT(ct_model_create(cpu, c, ct_ops_cpu(), B, T, flags), 0);
    CHECK_EQ_INT(ct_model_create(gpu, c, ct_ops_cpu(), B, T, flags), 0);
    tiny_randomize_params(cpu, seed);
    memcpy(gpu->params, cpu->params, cpu->n_params * sizeof(float));
    ct_model_to_backend(gpu, ops);
}

static void step_case_cfg(const CtOps *ops, CtModelConfig c, int packed, int recompute) {
    const int B = 3, T = 16;
    CtModel cpu, gpu;
    twin_models(&cpu, &gpu, &c, ops, B, T, recompute ? CT_MODEL_RECOMPUTE : 0, 5);
    CtRng rng;
    ct_rng_seed(&rng, 17);
    TinyBatch tb;
    tiny_batch(&tb, &rng, B, T, c.vocab_size, packed);
    float loss_cpu = ct_model_forward(&cpu, &tb.batch), loss_gpu = ct_model_forward(&gpu, &tb.batch);
    CHECK_MSG(fabsf(loss_gpu - loss_cpu) <= TOL * fabsf(loss_cpu), "loss %.9g on the GPU, %.9g on the CPU", loss_gpu,
              loss_cpu);
    CHECK(gpu.loss_count == cpu.loss_count);
    CHECK_MSG(hf_fixture_relative_error(gpu.logprobs, cpu.logprobs, (size_t)B * T) < TOL,
              "per-token log-probabilities differ");
    ct_model_backward(&cpu);
    ct_model_backward(&gpu);
    CHECK_ARRAYS(ops, gpu.dev_grads, cpu.grads, cpu.n_params, "gradients");
    CtAdamW oc, og;
    ct_adamw_init(&oc, cpu.n_params, 1e-2, 0.9, 0.95, 1e-8, 0.1);
    ct_adamw_init(&og, gpu.n_params, 1e-2, 0.9, 0.95, 1e-8, 0.1);
    ct_adamw_move_to(&og, ops);
    double nc = ct_clip_grad_norm_on(ct_ops_cpu(), cpu.train_grads, cpu.n_train, 0.5);
    double ng = ct_clip_grad_norm_on(ops, gpu.train_grads, gpu.n_train, 0.5);
    CHECK_MSG(fabs(ng - nc) <= 1e-6 * nc, "gradient norm %.12g on the GPU, %.12g on the CPU", ng, nc);
    // AdamW's first step moves each weight by about lr·sign(g): where g is rounding noise its sign
    // is too, so the update is checked from the same gradients (the CPU's, uploaded)
    ops->upload(gpu.train_grads, cpu.train_grads, cpu.n_train * sizeof(float));
    ct_adamw_step(&oc, cpu.train_params, cpu.train_grads);
    ct_adamw_step(&og, gpu.train_params, gpu.train_grads);
    CHECK_ARRAYS(ops, gpu.dev_params, cpu.params, cpu.n_params, "parameters after AdamW");
    // the host mirror follows on request
    ct_model_sync_to_host(&gpu);
    CHECK(hf_fixture_relative_error(gpu.params, cpu.params, cpu.n_params) < TOL);
    ct_adamw_free(&oc);
    ct_adamw_free(&og);
    ct_model_free(&cpu);
    ct_model_free(&gpu);
}

static void step_case(const CtOps *ops, CtArch arch, int packed, int recompute) {
    step_case_cfg(ops, tiny_config(arch), packed, recompute);
}

TEST(cuda, model_step_matches_cpu) {
    const CtOps *ops = cuda_fixture_ops_or_skip();
    step_case(ops, CT_ARCH_GPT2, 0, 0);
    if (!ct_test_failed()) step_case(ops, CT_ARCH_LLAMA, 1, 0);  // GQA, RoPE, packed documents, loss weights
    if (!ct_test_failed()) step_case(ops, CT_ARCH_LLAMA, 1, 1);  // with recompute
    if (!ct_test_failed()) step_case(ops, CT_ARCH_GPT2, 1, 1);
}

// Every llama variant (tests/model_fixture.h): windows, soft-caps, query scale, q/k norms,
// GeGLU, post-norms, embedding scale, RoPE tables, on the GPU's kernels in fp32.
TEST(cuda, model_step_llama_variants_match_cpu) {
    const CtOps *ops = cuda_fixture_ops_or_skip();
    for (int i = 0; tiny_variant_names[i] && !ct_test_failed(); i++) {
        printf("    %s\n", tiny_variant_names[i]);
        step_case_cfg(ops, tiny_variant_config(tiny_variant_names[i]), 1, strcmp(tiny_variant_names[i], "gemma2") == 0);
    }
}

// Generation with the key/value cache on the GPU gives the CPU's logits for every variant (the
// window and the caps in attention_decode, the q/k norms and post-norms on one row).
TEST(cuda, generation_llama_variants_match_cpu) {
    const CtOps *ops = cuda_fixture_ops_or_skip();
    for (int i = 0; tiny_variant_names[i] && !ct_test_failed(); i++) {
        CtModelConfig c = tiny_variant_config(tiny_variant_names[i]);
        CtModel cpu, gpu;
        twin_models(&cpu, &gpu, &c, ops, 1, 12, 0, 41);
        CtGenerator gc, gg;
        ct_generator_init(&gc, &cpu, 12);
        ct_generator_init(&gg, &gpu, 12);
        double worst = 0;
        for (int t = 0; t < 12; t++) {
            const int32_t token = (int32_t)((t * 7 + 3) % c.vocab_size);
            const float *lc = ct_generator_feed(&gc, token), *lg = ct_generator_feed(&gg, token);
            worst = fmax(worst, hf_fixture_relative_error(lg, lc, (size_t)c.vocab_size));
        }
        printf("    %s: cached logits on the GPU within %.2g of the CPU's\n", tiny_variant_names[i], worst);
        CHECK_MSG(worst < TOL, "%s: the GPU's cached logits differ from the CPU's by %g", tiny_variant_names[i], worst);
        ct_generator_free(&gc);
        ct_generator_free(&gg);
        ct_model_free(&cpu);
        ct_model_free(&gpu);
    }
}

// Several tokens in one pass on the GPU (a speculative decoder's verification: row t attends to
// the cache and rows 0..t) give the CPU's one-token-at-a-time logits, windows included.
TEST(cuda, generation_feed_many_matches_cpu_single_feeds) {
    const CtOps *ops = cuda_fixture_ops_or_skip();
    const char *names[] = {"mistral", "gemma2", "qwen3"};
    for (int i = 0; i < 3 && !ct_test_failed(); i++) {
        CtModelConfig c = tiny_variant_config(names[i]);
        CtModel cpu, gpu;
        twin_models(&cpu, &gpu, &c, ops, 1, 12, 0, 41);
        CtGenerator gc, gg;
        ct_generator_init(&gc, &cpu, 12);
        ct_generator_init(&gg, &gpu, 12);
        int32_t tokens[12];
        for (int t = 0; t < 12; t++) tokens[t] = (int32_t)((t * 7 + 3) % c.vocab_size);
        ct_generator_feed(&gg, tokens[0]);  // then passes of 5 and 6 rows
        const size_t V = (size_t)c.vocab_size;
        float *many = malloc(sizeof(float) * 12 * V);
        memcpy(many + 1 * V, ct_generator_feed_many(&gg, tokens + 1, 5), sizeof(float) * 5 * V);
        memcpy(many + 6 * V, ct_generator_feed_many(&gg, tokens + 6, 6), sizeof(float) * 6 * V);
        double worst = 0;
        for (int t = 0; t < 12; t++) {
            const float *lc = ct_generator_feed(&gc, tokens[t]);
            if (t > 0) worst = fmax(worst, hf_fixture_relative_error(many + (size_t)t * V, lc, V));
        }
        printf("    %s: logits of passes over several rows on the GPU within %.2g of the CPU's\n", names[i], worst);
        CHECK_MSG(worst < TOL, "%s: the GPU's feed_many logits differ from the CPU's by %g", names[i], worst);
        free(many);
        ct_generator_free(&gc);
        ct_generator_free(&gg);
        ct_model_free(&cpu);
        ct_model_free(&gpu);
    }
}

TEST(cuda, lora_step_matches_cpu) {
    const CtOps *ops = cuda_fixture_ops_or_skip();
    CtModelConfig c = tiny_config(CT_ARCH_LLAMA);
    c.dropout = 0.1f;  // the dropout masks are the same function of the seed on both
    const int B = 2, T = 16;
    CtModel cpu, gpu;
    twin_models(&cpu, &gpu, &c, ops, B, T, CT_MODEL_FROZEN, 9);
    CtLoraSpec spec = {.r = 4, .alpha = 8, .dropout = 0.1f};
    snprintf(spec.targets, sizeof spec.targets, "all-linear");
    CHECK_EQ_INT(ct_lora_attach(&cpu, &spec), 0);
    CHECK_EQ_INT(ct_lora_attach(&gpu, &spec), 0);  // attached on the device
    ct_lora_init(&cpu, 3);
    ct_lora_init(&gpu, 3);
    for (size_t i = 0; i < cpu.lora->n_params; i++) cpu.lora->params[i] += 0.01f * (float)((i * 7919) % 13) - 0.06f;
    memcpy(gpu.lora->params, cpu.lora->params, cpu.lora->n_params * sizeof(float));
    ct_lora_sync(&gpu, 1);
    CtRng rng;
    ct_rng_seed(&rng, 4);
    TinyBatch tb;
    tiny_batch(&tb, &rng, B, T, c.vocab_size, 1);
    ct_model_set_dropout(&cpu, 1, 77);
    ct_model_set_dropout(&gpu, 1, 77);
    float lc = ct_model_forward(&cpu, &tb.batch), lg = ct_model_forward(&gpu, &tb.batch);
    CHECK_MSG(fabsf(lg - lc) <= TOL * fabsf(lc), "LoRA loss %.9g on the GPU, %.9g on the CPU", lg, lc);
    ct_model_backward(&cpu);
    ct_model_backward(&gpu);
    CHECK(gpu.grads == NULL && gpu.dev_grads == NULL);  // the frozen base has no gradient anywhere
    CHECK_ARRAYS(ops, gpu.lora->dev_grads, cpu.lora->grads, cpu.lora->n_params, "adapter gradients");
    // merging on a device model folds the adapters into the base on both sides
    ct_lora_merge(&cpu);
    ct_lora_merge(&gpu);
    CHECK_ARRAYS(ops, gpu.dev_params, cpu.params, cpu.n_params, "merged weights");
    ct_model_free(&cpu);
    ct_model_free(&gpu);
}

// The training loop attaches the adapters on the host and moves the model afterwards: what
// trains on the device is then the adapters, all of them (zeroed each step, clipped, summed
// over ranks by n_train), not the frozen base's nothing.
TEST(cuda, lora_attached_on_the_host_trains_every_adapter_on_the_device) {
    const CtOps *ops = cuda_fixture_ops_or_skip();
    CtModelConfig c = tiny_config(CT_ARCH_LLAMA);
    const int B = 2, T = 16;
    CtModel cpu, gpu;
    CHECK_EQ_INT(ct_model_create(&cpu, &c, ct_ops_cpu(), B, T, CT_MODEL_FROZEN), 0);
    CHECK_EQ_INT(ct_model_create(&gpu, &c, ct_ops_cpu(), B, T, CT_MODEL_FROZEN), 0);
    ct_model_init(&cpu, 9);
    memcpy(gpu.params, cpu.params, cpu.n_params * sizeof(float));
    CtLoraSpec spec = {.r = 4, .alpha = 8};
    snprintf(spec.targets, sizeof spec.targets, "all-linear");
    CHECK_EQ_INT(ct_lora_attach(&cpu, &spec), 0);
    CHECK_EQ_INT(ct_lora_attach(&gpu, &spec), 0);  // on the host, then moved
    ct_lora_init(&cpu, 3);
    ct_lora_init(&gpu, 3);
    for (size_t i = 0; i < cpu.lora->n_params; i++) cpu.lora->params[i] += 0.01f * (float)((i * 7919) % 13) - 0.06f;
    memcpy(gpu.lora->params, cpu.lora->params, cpu.lora->n_params * sizeof(float));
    ct_model_to_backend(&gpu, ops);
    CHECK(gpu.train_params == gpu.lora->dev_params && gpu.train_grads == gpu.lora->dev_grads);
    CHECK_EQ_INT(gpu.n_train, gpu.lora->n_params);
    CtRng rng;
    ct_rng_seed(&rng, 4);
    TinyBatch tb;
    tiny_batch(&tb, &rng, B, T, c.vocab_size, 1);
    for (int step = 0; step < 2; step++) {  // the second step's gradients are its own, not a sum
        ct_model_zero_grad(&gpu);
        ct_model_forward(&gpu, &tb.batch);
        ct_model_backward(&gpu);
    }
    ct_model_zero_grad(&cpu);
    ct_model_forward(&cpu, &tb.batch);
    ct_model_backward(&cpu);
    CHECK_ARRAYS(ops, gpu.lora->dev_grads, cpu.lora->grads, cpu.lora->n_params, "adapter gradients");
    const double norm = ct_grad_norm_on(ops, gpu.train_grads, gpu.n_train);
    CHECK_MSG(norm > 0 && fabs(norm - ct_grad_norm(cpu.lora->grads, cpu.lora->n_params)) <= 1e-4 * norm,
              "the adapters' gradient norm %.9g on the device", norm);
    ct_model_free(&cpu);
    ct_model_free(&gpu);
}

// Two pairs (4 rows): prompt of 3 tokens, completions of 2-4, loss mask on the completions.
// GRPO's log-probabilities at the sampling temperature (model.logit_temperature: the logits
// scaled by 1/τ before the cross-entropy, and its gradient by 1/τ after) on the GPU and the CPU.
TEST(cuda, logprobs_at_a_temperature_and_their_gradients_match_cpu) {
    const CtOps *ops = cuda_fixture_ops_or_skip();
    const CtModelConfig c = tiny_config(CT_ARCH_LLAMA);
    const int B = 3, T = 16;
    CtModel cpu, gpu;
    twin_models(&cpu, &gpu, &c, ops, B, T, 0, 9);
    cpu.logit_temperature = gpu.logit_temperature = 0.7f;
    CtRng rng;
    ct_rng_seed(&rng, 23);
    TinyBatch tb;
    tiny_batch(&tb, &rng, B, T, c.vocab_size, 0);
    float loss_cpu = ct_model_forward(&cpu, &tb.batch), loss_gpu = ct_model_forward(&gpu, &tb.batch);
    CHECK_MSG(fabsf(loss_gpu - loss_cpu) <= TOL * fabsf(loss_cpu), "loss %.9g on the GPU, %.9g on the CPU", loss_gpu,
              loss_cpu);
    CHECK_MSG(hf_fixture_relative_error(gpu.logprobs, cpu.logprobs, (size_t)B * T) < TOL,
              "per-token log-probabilities at temperature 0.7 differ");
    ct_model_backward(&cpu);
    ct_model_backward(&gpu);
    CHECK_ARRAYS(ops, gpu.dev_grads, cpu.grads, cpu.n_params, "gradients at temperature 0.7");
    ct_model_free(&cpu);
    ct_model_free(&gpu);
}

static void make_pairs(CtStepBatches *s, int V) {
    CtRng rng;
    ct_rng_seed(&rng, 21);
    for (int r = 0; r < s->rows; r++) {
        int completion = 2 + r % 3;
        for (int t = 0; t < s->T; t++) {
            size_t k = (size_t)r * s->T + t;
            s->tokens[k] = (int32_t)ct_rng_below(&rng, (uint32_t)V);
            s->targets[k] = t < 3 + completion - 1 ? (int32_t)ct_rng_below(&rng, (uint32_t)V) : -1;
            s->loss_mask[k] = t >= 2 && t < 3 + completion - 1;
            s->positions[k] = t;
            s->doc_ids[k] = 0;
        }
        s->example_ids[r] = r / 2;
    }
}

TEST(cuda, dpo_step_matches_cpu) {
    const CtOps *ops = cuda_fixture_ops_or_skip();
    CtModelConfig c = tiny_config(CT_ARCH_GPT2);
    CtModel cpu, gpu;
    twin_models(&cpu, &gpu, &c, ops, 4, 8, 0, 11);
    CtStepBatches s;
    ct_step_batches_init(&s, 1, 4, 8);
    make_pairs(&s, c.vocab_size);
    CtDpo dc, dg;
    CHECK_EQ_INT(ct_dpo_init(&dc, CT_DPO_SIGMOID, 0.5, 0, &cpu, NULL, 4, 8), 0);
    CHECK_EQ_INT(ct_dpo_init(&dg, CT_DPO_SIGMOID, 0.5, 0, &gpu, NULL, 4, 8), 0);  // its reference moves to the GPU
    CHECK(!dg.ref.ops->host_memory);
    // move the policies away from their references, so the loss is not ln 2 and has a gradient
    for (size_t i = 0; i < cpu.n_params; i++) cpu.params[i] *= 1.05f;
    memcpy(gpu.params, cpu.params, cpu.n_params * sizeof(float));
    ct_model_sync_to_device(&gpu);
    CtDpoStats sc, sg;
    memset(&sc, 0, sizeof sc);
    memset(&sg, 0, sizeof sg);
    ct_model_zero_grad(&cpu);
    ct_model_zero_grad(&gpu);
    ct_dpo_micro_step(&dc, &cpu, &s, 0, 2, CT_SPLIT_TRAIN, 1, &sc);
    ct_dpo_micro_step(&dg, &gpu, &s, 0, 2, CT_SPLIT_TRAIN, 1, &sg);
    CHECK_MSG(fabs(sg.loss - sc.loss) <= TOL * fabs(sc.loss), "DPO loss %.9g on the GPU, %.9g on the CPU", sg.loss,
              sc.loss);
    CHECK(fabs(sc.loss - log(2.0)) > 1e-4);
    CHECK_ARRAYS(ops, gpu.dev_grads, cpu.grads, cpu.n_params, "DPO gradients");
    ct_dpo_free(&dc);
    ct_dpo_free(&dg);
    ct_step_batches_free(&s);
    ct_model_free(&cpu);
    ct_model_free(&gpu);
}

// bf16 products (the GPU's default): each rounds its operands to 8 bits, so a step is checked
// against the fp32 CPU at 1e-2 for the loss and 5e-2 of the largest for gradients (the errors of
// several products add up through the layers). GPT-2 runs its MLP through the fused GELU ops.
static void bf16_step_case_tol(const CtOps *bf16, CtModelConfig c, int recompute, double tol) {
    CtModel cpu, gpu;
    twin_models(&cpu, &gpu, &c, bf16, 3, 16, recompute ? CT_MODEL_RECOMPUTE : 0, 31);
    CtRng rng;
    ct_rng_seed(&rng, 32);
    TinyBatch tb;
    tiny_batch(&tb, &rng, 3, 16, c.vocab_size, 1);
    float lc = ct_model_forward(&cpu, &tb.batch), lg = ct_model_forward(&gpu, &tb.batch);
    CHECK_MSG(fabsf(lg - lc) <= 1e-2f * lc, "loss %.6f with bf16 products, %.6f in fp32", lg, lc);
    ct_model_backward(&cpu);
    ct_model_backward(&gpu);
    float *g = download(bf16, gpu.dev_grads, cpu.n_params);
    double r = hf_fixture_relative_error(g, cpu.grads, cpu.n_params);
    printf("    bf16 gradients within %.3g of the largest\n", r);
    CHECK_MSG(r < tol, "gradients with bf16 products differ from fp32 by %.3g of the largest", r);
    CHECK_MSG(r > 0, "bf16 products gave exactly the fp32 gradients: the bf16 path did not run");
    ct_free(g);
    ct_model_free(&cpu);
    ct_model_free(&gpu);
}

static void bf16_step_case(const CtOps *bf16, CtArch arch, int recompute) {
    bf16_step_case_tol(bf16, tiny_config(arch), recompute, 5e-2);
}

// The bf16 table with its fused GELU ops counted: which layers the model fuses.
static const CtOps *counted_table;
static int fused_forwards, fused_backwards;
static void counted_gelu_forward(CtAct *out, CtAct *pre, const CtAct *inp, const float *weight, const float *bias,
                                 int N, int C, int OC) {
    fused_forwards++;
    counted_table->matmul_bias_gelu_forward(out, pre, inp, weight, bias, N, C, OC);
}
static void counted_dgelu_backward(CtAct *dpre, float *dweight, float *dbias, const CtAct *dout, const CtAct *inp,
                                   const CtAct *pre, const float *weight, int N, int C, int OC) {
    fused_backwards++;
    counted_table->matmul_backward_dgelu(dpre, dweight, dbias, dout, inp, pre, weight, N, C, OC);
}
static CtOps counting_table(const CtOps *bf16) {
    CtOps t = *bf16;
    counted_table = bf16;
    fused_forwards = fused_backwards = 0;
    t.matmul_bias_gelu_forward = counted_gelu_forward;
    t.matmul_backward_dgelu = counted_dgelu_backward;
    return t;
}

// The variants round more activations to bf16 (q/k norms, branch outputs before their norms, the
// capped logits): measured 2.5e-2 (mistral) to 5.8e-2 (gemma3) of the largest
// gradient, against 3.9e-2 for the plain llama, so the bound is 8e-2 (a wrong kernel is off by O(1)).
TEST(cuda, bf16_step_llama_variants_close_to_fp32) {
    const CtOps *ops = cuda_fixture_ops_or_skip();
    const CtOps *bf16 = ct_ops_with_precision(ops, "bf16");
    CHECK(bf16 && ct_ops_products_bf16(bf16));
    const char *names[] = {"qwen2", "qwen3", "mistral", "gemma2", "gemma3"};
    for (int i = 0; i < 5 && !ct_test_failed(); i++) {
        printf("    %s\n", names[i]);
        bf16_step_case_tol(bf16, tiny_variant_config(names[i]), i == 3, 8e-2);
    }
}

TEST(cuda, bf16_step_is_close_to_fp32) {
    const CtOps *ops = cuda_fixture_ops_or_skip();
    const CtOps *bf16 = ct_ops_with_precision(ops, "bf16");
    CHECK(bf16 && ct_ops_products_bf16(bf16));
    CHECK(bf16->matmul_bias_gelu_forward && bf16->matmul_backward_dgelu);
    if (ct_test_failed()) return;
    bf16_step_case(bf16, CT_ARCH_LLAMA, 0);
    const CtOps counting = counting_table(bf16);
    for (int recompute = 0; recompute < 2 && !ct_test_failed(); recompute++) {
        fused_forwards = fused_backwards = 0;
        bf16_step_case(&counting, CT_ARCH_GPT2, recompute);
        CHECK_MSG(fused_forwards == 2 && fused_backwards == 2,
                  "GPT-2's 2 layers ran %d fused GELU forwards and %d backwards (recompute %d), 2 each expected",
                  fused_forwards, fused_backwards, recompute);
    }
}

// The fused GELU ops against the same bf16 products unfused: they differ only by the GELU's
// rounding (cuBLASLt's tanh is approximate) and what that moves in the next product's bf16 operand.
TEST(cuda, bf16_fused_gelu_step_matches_unfused) {
    const CtOps *ops = cuda_fixture_ops_or_skip();
    const CtOps *bf16 = ct_ops_with_precision(ops, "bf16");
    CtOps unfused = *bf16;
    unfused.matmul_bias_gelu_forward = NULL;
    unfused.matmul_backward_dgelu = NULL;
    CtModelConfig c = tiny_config(CT_ARCH_GPT2);
    c.dropout = 0.1f;  // the residual dropout after c_proj runs in both
    CtModel a, b;
    twin_models(&a, &b, &c, bf16, 3, 16, 0, 41);
    ct_model_to_backend(&a, &unfused);
    CtRng rng;
    ct_rng_seed(&rng, 42);
    TinyBatch tb;
    tiny_batch(&tb, &rng, 3, 16, c.vocab_size, 1);
    ct_model_set_dropout(&a, 1, 5);
    ct_model_set_dropout(&b, 1, 5);
    float lu = ct_model_forward(&a, &tb.batch), lf = ct_model_forward(&b, &tb.batch);
    CHECK_MSG(fabsf(lf - lu) <= 1e-3f * lu, "loss %.7f fused, %.7f unfused", lf, lu);
    ct_model_backward(&a);
    ct_model_backward(&b);
    float *ga = download(bf16, a.dev_grads, a.n_params), *gb = download(bf16, b.dev_grads, b.n_params);
    double r = hf_fixture_relative_error(gb, ga, a.n_params);
    CHECK_MSG(r < 1e-2, "gradients with the fused GELU differ from unfused by %.3g of the largest", r);
    ct_free(ga);
    ct_free(gb);
    ct_model_free(&a);
    ct_model_free(&b);
}

// LoRA on the MLP: an adapter on c_fc adds into the pre-activation (the forward runs unfused),
// one on c_proj into the GELU output's gradient (the backward runs unfused); adapters elsewhere
// (GPT-2's default, c_attn) keep the MLP fused.
static void bf16_lora_case(const CtOps *counting, const char *targets, int fused_forward, int fused_backward) {
    CtModelConfig c = tiny_config(CT_ARCH_GPT2);
    const int B = 2, T = 16;
    CtModel cpu, gpu;
    twin_models(&cpu, &gpu, &c, counting, B, T, CT_MODEL_FROZEN, 13);
    CtLoraSpec spec = {.r = 4, .alpha = 8};
    snprintf(spec.targets, sizeof spec.targets, "%s", targets);
    CHECK_EQ_INT(ct_lora_attach(&cpu, &spec), 0);
    CHECK_EQ_INT(ct_lora_attach(&gpu, &spec), 0);
    ct_lora_init(&cpu, 3);
    for (size_t i = 0; i < cpu.lora->n_params; i++) cpu.lora->params[i] += 0.02f * (float)((i * 7919) % 13) - 0.12f;
    memcpy(gpu.lora->params, cpu.lora->params, cpu.lora->n_params * sizeof(float));
    ct_lora_sync(&gpu, 1);
    CtRng rng;
    ct_rng_seed(&rng, 14);
    TinyBatch tb;
    tiny_batch(&tb, &rng, B, T, c.vocab_size, 1);
    fused_forwards = fused_backwards = 0;
    float lc = ct_model_forward(&cpu, &tb.batch), lg = ct_model_forward(&gpu, &tb.batch);
    CHECK_MSG(fabsf(lg - lc) <= 1e-2f * lc, "LoRA (%s) loss %.6f with bf16 products, %.6f in fp32", targets, lg, lc);
    ct_model_backward(&cpu);
    ct_model_backward(&gpu);
    float *g = download(counting, gpu.lora->dev_grads, cpu.lora->n_params);
    double r = hf_fixture_relative_error(g, cpu.lora->grads, cpu.lora->n_params);
    CHECK_MSG(r < 5e-2, "LoRA (%s) adapter gradients with bf16 products differ from fp32 by %.3g", targets, r);
    CHECK_MSG(fused_forwards == fused_forward * c.n_layer && fused_backwards == fused_backward * c.n_layer,
              "LoRA on %s: %d fused GELU forwards and %d backwards, %d and %d expected", targets, fused_forwards,
              fused_backwards, fused_forward * c.n_layer, fused_backward * c.n_layer);
    ct_free(g);
    ct_model_free(&cpu);
    ct_model_free(&gpu);
}

TEST(cuda, bf16_lora_on_the_mlp_runs_it_unfused) {
    const CtOps *ops = cuda_fixture_ops_or_skip();
    const CtOps counting = counting_table(ct_ops_with_precision(ops, "bf16"));
    bf16_lora_case(&counting, "c_attn", 1, 1);
    if (!ct_test_failed()) bf16_lora_case(&counting, "mlp.c_fc", 0, 1);
    if (!ct_test_failed()) bf16_lora_case(&counting, "mlp.c_proj", 1, 0);
    if (!ct_test_failed()) bf16_lora_case(&counting, "all-linear", 0, 0);
}

TEST(cuda, twenty_steps_track_the_cpu) {
    const CtOps *ops = cuda_fixture_ops_or_skip();
    CtModelConfig c = tiny_config(CT_ARCH_LLAMA);
    const int B = 4, T = 16;
    CtModel cpu, gpu;
    twin_models(&cpu, &gpu, &c, ops, B, T, 0, 23);
    CtAdamW oc, og;
    ct_adamw_init(&oc, cpu.n_params, 3e-3, 0.9, 0.95, 1e-8, 0.1);
    ct_adamw_init(&og, gpu.n_params, 3e-3, 0.9, 0.95, 1e-8, 0.1);
    ct_adamw_move_to(&og, ops);
    // a learnable stream: token t+1 = (token t · 3 + 1) mod V
    int32_t tokens[64], targets[64];
    float first = 0, last = 0, worst = 0;
    for (int step = 0; step < 20; step++) {
        for (int b = 0; b < B; b++) {
            int32_t x = (int32_t)((step * 7 + b * 13) % c.vocab_size);
            for (int t = 0; t < T; t++) {
                tokens[b * T + t] = x;
                x = (x * 3 + 1) % c.vocab_size;
                targets[b * T + t] = x;
            }
        }
        CtBatch batch = {.tokens = tokens, .targets = targets, .B = B, .T = T};
        ct_model_zero_grad(&cpu);
        ct_model_zero_grad(&gpu);
        float lc = ct_model_forward(&cpu, &batch), lg = ct_model_forward(&gpu, &batch);
        ct_model_backward(&cpu);
        ct_model_backward(&gpu);
        ct_clip_grad_norm_on(ct_ops_cpu(), cpu.train_grads, cpu.n_train, 1.0);
        ct_clip_grad_norm_on(ops, gpu.train_grads, gpu.n_train, 1.0);
        ct_adamw_step(&oc, cpu.train_params, cpu.train_grads);
        ct_adamw_step(&og, gpu.train_params, gpu.train_grads);
        float d = fabsf(lg - lc) / lc;
        if (d > worst) worst = d;
        if (step == 0) first = lc;
        last = lc;
    }
    // rounding differences grow through 20 updates; 1e-4 of the loss is still far below a bug
    CHECK_MSG(worst < 1e-4f, "the GPU's loss left the CPU's by %.3g (relative) within 20 steps", worst);
    CHECK_MSG(last < 0.8f * first, "the loss did not fall: %.4f -> %.4f", first, last);
    CHECK_ARRAYS(ops, gpu.dev_params, cpu.params, cpu.n_params, "parameters after 20 steps (1e-5 of the largest)");
    ct_adamw_free(&oc);
    ct_adamw_free(&og);
    ct_model_free(&cpu);
    ct_model_free(&gpu);
}

// ---- through the binary: pretrain with run.device = cuda, resumed; and against the CPU ----

static const char *CONFIG =
    "{\"model\": {\"preset\": \"llama-tiny\", \"n_layer\": 1, \"d_model\": 32, \"n_head\": 2, \"n_kv_head\": 1,"
    " \"d_ff\": 64, \"max_seq_len\": 32},"
    " \"train\": {\"batch_size\": 4, \"seq_len\": 32, \"max_steps\": 8, \"eval_every\": 4, \"eval_batches\": 2,"
    " \"save_every\": 4, \"keep_last\": 3, \"n_samples\": 1, \"sample_tokens\": 8},"
    " \"optim\": {\"lr\": 3e-3, \"warmup_steps\": 2}}";

static int run_ctrain(const char *extra, char **out) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' pretrain run.json --data.path=data --run.threads=1 %s", ct_test_tmpdir(),
             ct_test_bin(), extra);
    return ct_test_run(cmd, out);
}

static int load(const char *run_dir, CtModel *m, CtAdamW *opt) {
    return train_fixture_load_checkpoint(run_dir, "ckpt-step00000008.h5", m, opt);
}

TEST(cuda, pretrain_on_the_gpu_resumes_to_the_bit_and_tracks_the_cpu) {
    cuda_fixture_ops_or_skip();
    if (train_fixture_stories(200) != 0) return;
    ct_test_write("run.json", CONFIG);
    char *out;
    CHECK_EQ_INT(run_ctrain("--run.device=cuda --run.precision=fp32 --run.out_dir=a", &out), 0);
    CHECK_CONTAINS(out, "training on cuda");
    CHECK_CONTAINS(out, "done: 8 steps");
    free(out);
    CHECK_EQ_INT(run_ctrain("--run.device=cuda --run.precision=fp32 --run.out_dir=b --stop-after 4", &out), 0);
    free(out);
    CHECK_EQ_INT(run_ctrain("--run.device=cuda --run.precision=fp32 --run.out_dir=b --resume b", &out), 0);
    CHECK_CONTAINS(out, "resumed from b/ckpt-step00000004.h5 at step 4");
    free(out);
    CHECK_EQ_INT(run_ctrain("--run.device=cpu --run.out_dir=c", &out), 0);
    free(out);
    // the default precision on a GPU: bf16 products; it trains to about the same loss
    CHECK_EQ_INT(run_ctrain("--run.device=cuda --run.out_dir=d", &out), 0);
    CHECK_CONTAINS(out, "training on cuda-bf16");
    free(out);
    // bf16 resumed: the weights' bf16 copy (stochastically rounded by each step) is re-created as
    // the interrupted run's step 4 left it, so the run continues to the bit
    CHECK_EQ_INT(run_ctrain("--run.device=cuda --run.out_dir=e --stop-after 4", &out), 0);
    free(out);
    CHECK_EQ_INT(run_ctrain("--run.device=cuda --run.out_dir=e --resume e", &out), 0);
    CHECK_CONTAINS(out, "resumed from e/ckpt-step00000004.h5 at step 4");
    free(out);
    char *a = train_fixture_metric_lines("a", 5), *b = train_fixture_metric_lines("b", 5);
    CHECK(a && b && strlen(a) > 50);
    CHECK_MSG(a && b && strcmp(a, b) == 0, "losses after resuming on the GPU differ:\n%s\nvs\n%s", a, b);
    free(a);
    free(b);
    char *d = train_fixture_metric_lines("d", 5), *e = train_fixture_metric_lines("e", 5);
    CHECK(d && e && strlen(d) > 50);
    CHECK_MSG(d && e && strcmp(d, e) == 0, "losses after resuming with bf16 products differ:\n%s\nvs\n%s", d, e);
    free(d);
    free(e);
    CtModel ma, mb, mc, md, me;
    CtAdamW oa, ob, oc, od, oe;
    CHECK_EQ_INT(load("a", &ma, &oa), 0);
    CHECK_EQ_INT(load("b", &mb, &ob), 0);
    CHECK_EQ_INT(load("c", &mc, &oc), 0);
    CHECK_EQ_INT(load("d", &md, &od), 0);
    CHECK_EQ_INT(load("e", &me, &oe), 0);
    if (ct_test_failed()) return;
    CHECK(memcmp(ma.params, mb.params, ma.n_params * sizeof(float)) == 0);
    CHECK(memcmp(oa.m, ob.m, ma.n_params * sizeof(float)) == 0 && memcmp(oa.v, ob.v, ma.n_params * sizeof(float)) == 0);
    CHECK_MSG(memcmp(md.params, me.params, md.n_params * sizeof(float)) == 0,
              "bf16: the parameters after resuming differ from the uninterrupted run's");
    CHECK(memcmp(od.m, oe.m, md.n_params * sizeof(float)) == 0 && memcmp(od.v, oe.v, md.n_params * sizeof(float)) == 0);
    CHECK_EQ_INT(oa.step, 8);
    double r = hf_fixture_relative_error(ma.params, mc.params, ma.n_params);
    CHECK_MSG(r < 1e-4, "after 8 steps the GPU's parameters differ from the CPU's by %.3g of the largest", r);
    CtCheckpointMeta mfp, mbf;
    char path[1200];
    snprintf(path, sizeof path, "%s/a/ckpt-step00000008.h5", ct_test_tmpdir());
    CtModelConfig cfg_fp, cfg_bf;
    CHECK_EQ_INT(ct_checkpoint_read_meta(path, &cfg_fp, &mfp), 0);
    snprintf(path, sizeof path, "%s/d/ckpt-step00000008.h5", ct_test_tmpdir());
    CHECK_EQ_INT(ct_checkpoint_read_meta(path, &cfg_bf, &mbf), 0);
    CHECK_MSG(fabs(mbf.val_loss - mfp.val_loss) < 0.02 * mfp.val_loss, "validation loss %.4f with bf16 products, %.4f in fp32",
              mbf.val_loss, mfp.val_loss);
    ct_checkpoint_meta_free(&mfp);
    ct_checkpoint_meta_free(&mbf);
    ct_model_free(&ma);
    ct_model_free(&mb);
    ct_model_free(&mc);
    ct_model_free(&md);
    ct_model_free(&me);
    ct_adamw_free(&oa);
    ct_adamw_free(&ob);
    ct_adamw_free(&oc);
    ct_adamw_free(&od);
    ct_adamw_free(&oe);
}
