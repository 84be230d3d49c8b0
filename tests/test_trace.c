// The trace recorder (issue 21): 20 optimizer steps of each objective through the ctrain binary —
// pretraining a GPT-2 and a LLaMA, SFT from the LLaMA, DPO from the SFT model, LoRA SFT over the
// LLaMA, ZeRO-1 pretraining under mpirun -np 2 — and four generations (two greedy, two seeded
// samples) from their checkpoints, recorded value by value and compared with the golden trace
// tests/trace/golden.txt. It runs the binary only (no library call), so it holds across any
// reshape of the code: a refactor that is meant to change nothing must leave every value equal.
//
// Recorded, per leg and step: every number of the step's lines in metrics.jsonl (loss, lr,
// grad_norm and tokens; DPO's rewards and log-probabilities; val_loss, val_ppl, exact_match at
// evaluations), as metrics.jsonl prints them (9 significant digits); and from the checkpoint of
// every step (train.save_every 1): train_loss, val_loss and best_val_loss as exact doubles (%a),
// the integer attributes (step, optim_step, tokens_seen, rng, loader, tokenizer_hash,
// lora_base_hash) and, per tensor group (model, lora, optim/m, optim/v), an FNV-1a hash of every
// tensor's name, shape and bytes: the parameters and AdamW moments to the bit. Then each
// generation's prompt and generated token ids.
//
// Bits depend on the machine (OpenBLAS's kernels for the CPU, -march=native, threads), so the
// golden file starts with a fingerprint: the CPU model, ctrain --version's blas, compute (CPU
// features, OpenBLAS core, threads) and mpi lines, and the compiler and flags the binary was
// built with (the DWARF producer of its C units). Where the fingerprint matches, every value
// must be equal as text, i.e. to the bit. Elsewhere the integers must still be equal, losses,
// learning rates and gradient norms agree within 1e-3 (relative), hashes, token ids and the DPO
// rewards are not compared, and the test says so in a NOTE line. CTRAIN_TRACE_EXACT=1 refuses a
// fingerprint that differs (for checking a refactor on the machine that recorded the trace).
// Without MPI the ZeRO-1 leg is left out with a NOTE.
//
// Re-record (after a change that is meant to change numbers, or on a new machine):
//   CTRAIN_TRACE_RECORD=1 make test TESTS=trace      writes tests/trace/golden.txt (needs MPI)
// and commit it saying why the numbers changed.
#include <cJSON.h>
#include <hdf5.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/checksum.h"
#include "tests/test.h"

#define STEPS 20
#define MAX_DIFFERENCES_SHOWN 12

// What every leg shares; each adds its command, data, model and objective on the command line.
static const char *CONFIG =
    "{\"model\": {\"n_layer\": 2, \"d_model\": 32, \"n_head\": 2, \"d_ff\": 64, \"max_seq_len\": 32},"
    " \"train\": {\"batch_size\": 4, \"seq_len\": 32, \"max_steps\": 20, \"eval_every\": 10, \"eval_batches\": 2,"
    " \"save_every\": 1, \"keep_last\": 20, \"n_samples\": 0, \"eval_exact_match\": 0},"
    " \"optim\": {\"lr\": 3e-3, \"warmup_steps\": 4}, \"run\": {\"threads\": 2, \"device\": \"cpu\"}}";

typedef struct {
    const char *name, *args;
    int mpi;  // under mpirun -np 2
} Leg;

// In order: later legs start from earlier ones' last checkpoints.
static const Leg LEGS[] = {
    {"gpt2", "pretrain trace.json --data.path=text --model.preset=gpt2-tiny --model.dropout=0.1 --train.grad_accum=2", 0},
    {"llama", "pretrain trace.json --data.path=text --model.preset=llama-tiny --model.n_kv_head=1 --model.recompute=true "
              "--data.doc_masking=true", 0},
    {"sft", "sft trace.json --data.path=qa --train.init_from=llama/ckpt-step00000020.h5 --optim.lr=1e-3 "
            "--train.eval_exact_match=4", 0},
    {"dpo", "dpo trace.json --data.path=pairs --train.init_from=sft/ckpt-step00000020.h5 --train.batch_size=2 "
            "--optim.lr=1e-3", 0},
    {"lora", "sft trace.json --data.path=qa --train.init_from=llama/ckpt-step00000020.h5 --optim.lr=1e-2 --lora.r=4 "
             "--lora.alpha=8 --lora.dropout=0.1 --lora.targets=q_proj,v_proj,down_proj", 0},
    {"zero", "pretrain trace.json --data.path=text --model.preset=llama-tiny --model.n_kv_head=1 --train.batch_size=2 "
             "--optim.zero=1 --run.threads=1", 1},
};

typedef struct {
    const char *name, *args;
} Generation;

static const Generation GENERATIONS[] = {
    {"greedy_llama", "--checkpoint llama/ckpt-step00000020.h5 --prompt 'The film was' --temperature 0"},
    {"greedy_sft", "--checkpoint sft/ckpt-step00000020.h5 --prompt 'add: 12 + 34' --temperature 0"},
    {"sampled_lora", "--checkpoint lora/ckpt-step00000020.h5 --prompt 'add: 12 + 34' --temperature 1 --seed 8"},
    {"sampled_dpo", "--checkpoint dpo/ckpt-step00000020.h5 --prompt 'List: pear plum apple' --temperature 0.8 "
                    "--top-k 40 --seed 7"},
};

// ---- the trace: "LEG STEP NAME" keys ('-' for no step) with their values as text ----

typedef struct {
    char *key, *value;
} Record;

typedef struct {
    Record *records;
    int n, cap;
} Trace;

static int trace_find(const Trace *t, const char *key) {
    for (int i = 0; i < t->n; i++)
        if (strcmp(t->records[i].key, key) == 0) return i;
    return -1;
}

static void trace_add(Trace *t, const char *leg, const char *step, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static void trace_add(Trace *t, const char *leg, const char *step, const char *name, const char *fmt, ...) {
    char key[256], value[4096];
    snprintf(key, sizeof key, "%s %s %s", leg, step, name);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(value, sizeof value, fmt, ap);
    va_end(ap);
    int at = trace_find(t, key);
    if (at >= 0 && strcmp(t->records[at].value, value) == 0) return;  // "tokens" of a step's second metrics line
    if (at >= 0) strncat(key, "+", sizeof key - strlen(key) - 1);
    if (t->n == t->cap) t->records = realloc(t->records, sizeof(Record) * (size_t)(t->cap = t->cap ? 2 * t->cap : 1024));
    t->records[t->n++] = (Record){strdup(key), strdup(value)};
}

static void trace_free(Trace *t) {
    for (int i = 0; i < t->n; i++) {
        free(t->records[i].key);
        free(t->records[i].value);
    }
    free(t->records);
    memset(t, 0, sizeof *t);
}

// Reads a trace written by trace_write ('#' lines are comments). -1 when the file is unreadable.
static int trace_read(Trace *t, const char *path) {
    char *text = ct_test_read(path, NULL);
    if (!text) return -1;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        if (line[0] == '#') continue;
        char leg[128] = "", step[32] = "", name[128] = "";
        int used = 0;
        if (sscanf(line, "%127s %31s %127s%n", leg, step, name, &used) < 3) continue;
        trace_add(t, leg, step, name, "%s", line[used] == ' ' ? line + used + 1 : "");
    }
    free(text);
    return 0;
}

static int trace_write(const Trace *t, const char *path) {
    char tmp[1200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) return -1;
    fprintf(f, "# The golden trace of tests/test_trace.c (re-record: CTRAIN_TRACE_RECORD=1 make test TESTS=trace).\n"
               "# One value a line: LEG STEP NAME VALUE ('-': no step). metrics.jsonl's numbers as it prints them\n"
               "# (9 significant digits), checkpoint doubles exact (C's %%a), tensor groups as FNV-1a 64 hashes of\n"
               "# names, shapes and bytes. The fingerprint lines say what made these bits.\n");
    for (int i = 0; i < t->n; i++)
        fprintf(f, "%s%s%s\n", t->records[i].key, t->records[i].value[0] ? " " : "", t->records[i].value);
    int ok = fflush(f) == 0 && fsync(fileno(f)) == 0;
    ok = fclose(f) == 0 && ok;
    return ok && rename(tmp, path) == 0 ? 0 : -1;
}

// ---- the fingerprint: what makes the bits ----

// The value after "  NAME:" in ctrain --version's output ("?" when absent).
static void version_line(Trace *t, const char *version, const char *name) {
    char label[64];
    snprintf(label, sizeof label, "\n  %s:", name);
    const char *at = strstr(version, label);
    if (!at) {
        trace_add(t, "fingerprint", "-", name, "?");
        return;
    }
    at += strlen(label);
    while (*at == ' ') at++;
    trace_add(t, "fingerprint", "-", name, "%.*s", (int)strcspn(at, "\n"), at);
}

static void fingerprint(Trace *t) {
    char cmd[2048], *out = NULL;
    ct_test_run("grep -m1 '^model name' /proc/cpuinfo | sed 's/^[^:]*: *//'", &out);
    trace_add(t, "fingerprint", "-", "cpu", "%.*s", out ? (int)strcspn(out, "\n") : 0, out ? out : "");
    free(out);
    snprintf(cmd, sizeof cmd, "OMP_NUM_THREADS=2 '%s' --version", ct_test_bin());
    ct_test_run(cmd, &out);
    char *version = NULL;
    if (out && asprintf(&version, "\n%s", out) < 0) version = NULL;
    free(out);
    static const char *const lines[] = {"blas", "compute", "mpi"};
    for (int i = 0; i < 3; i++) version_line(t, version ? version : "", lines[i]);
    free(version);
    // ctrain's own units ("GNU C11 12.2.0 -march=... -O3 ..."), not a sanitizer runtime's (GNU C++14)
    snprintf(cmd, sizeof cmd,
             "readelf --debug-dump=info '%s' 2>/dev/null | grep -m1 -E 'DW_AT_producer.*GNU C[0-9]+ ' | sed 's/.*): //'",
             ct_test_bin());
    ct_test_run(cmd, &out);
    int len = out ? (int)strcspn(out, "\n") : 0;
    trace_add(t, "fingerprint", "-", "compiler", "%.*s", len ? len : 1, len ? out : "?");
    free(out);
}

// ---- what a leg leaves behind ----

static int timing_field(const char *key) {
    return strcmp(key, "tokens_per_s") == 0 || strcmp(key, "mfu") == 0 || strcmp(key, "elapsed_s") == 0;
}

// Every number of LEG/metrics.jsonl's lines of step `at` but the timings, named KIND.KEY.
static int trace_metrics(Trace *t, const char *leg, int at_step) {
    char path[1200];
    snprintf(path, sizeof path, "%s/metrics.jsonl", leg);
    char *text = ct_test_read(ct_test_path(path), NULL);
    if (!text) return -1;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        cJSON *o = cJSON_Parse(line);
        const cJSON *kind = cJSON_GetObjectItem(o, "kind"), *step = cJSON_GetObjectItem(o, "step");
        if (!cJSON_IsString(kind) || !cJSON_IsNumber(step) || step->valueint != at_step) {
            cJSON_Delete(o);
            continue;
        }
        char at[32], name[160];
        snprintf(at, sizeof at, "%d", step->valueint);
        for (const cJSON *v = o->child; v; v = v->next) {
            if (strcmp(v->string, "kind") == 0 || strcmp(v->string, "step") == 0 || timing_field(v->string)) continue;
            snprintf(name, sizeof name, "%s.%s", kind->valuestring, v->string);
            if (cJSON_IsNumber(v))
                trace_add(t, leg, at, name, "%.9g", v->valuedouble);
            else
                trace_add(t, leg, at, name, "%s", cJSON_IsNull(v) ? "null" : "?");
        }
        cJSON_Delete(o);
    }
    free(text);
    return 0;
}

// The numbers among a checkpoint's root attributes (the strings hold configs, paths and versions).
static const char *const ATTRIBUTES[] = {"step",     "optim_step",     "tokens_seen", "rng",      "loader",
                                         "tokenizer_hash", "lora_base_hash", "train_loss", "val_loss", "best_val_loss"};

static void trace_attribute(Trace *t, const char *leg, const char *step, hid_t file, const char *name) {
    if (H5Aexists(file, name) <= 0) return;
    hid_t a = H5Aopen(file, name, H5P_DEFAULT), type = H5Aget_type(a), space = H5Aget_space(a);
    const hssize_t n = H5Sget_simple_extent_npoints(space);
    const int is_float = H5Tget_class(type) == H5T_FLOAT, is_int = H5Tget_class(type) == H5T_INTEGER;
    const int is_unsigned = is_int && H5Tget_sign(type) == H5T_SGN_NONE;
    union {
        double f[8];
        long long i[8];
        unsigned long long u[8];
    } v;
    hid_t as = is_float ? H5T_NATIVE_DOUBLE : is_unsigned ? H5T_NATIVE_ULLONG : H5T_NATIVE_LLONG;
    char value[512] = "?";
    size_t len = 0;
    if (n >= 1 && n <= 8 && (is_float || is_int) && H5Aread(a, as, &v) >= 0)
        for (hssize_t i = 0; i < n && len < sizeof value; i++) {
            const char *sep = i ? "," : "";
            if (is_float)
                len += (size_t)snprintf(value + len, sizeof value - len, "%s%a", sep, v.f[i]);
            else if (is_unsigned)
                len += (size_t)snprintf(value + len, sizeof value - len, "%s%llu", sep, v.u[i]);
            else
                len += (size_t)snprintf(value + len, sizeof value - len, "%s%lld", sep, v.i[i]);
        }
    trace_add(t, leg, step, name, "%s", value);
    H5Sclose(space);
    H5Tclose(type);
    H5Aclose(a);
}

typedef struct {
    char group[64];
    uint64_t hash;
    long long tensors;
} GroupHash;

typedef struct {
    GroupHash groups[8];
    int n, failed;
} Hashes;

// Adds one tensor (its name, shape and bytes as stored) to its group's hash.
static herr_t hash_tensor(hid_t obj, const char *name, const H5O_info_t *info, void *data) {
    if (info->type != H5O_TYPE_DATASET) return 0;
    Hashes *h = data;
    const char *slash = strrchr(name, '/');
    char group[64];
    snprintf(group, sizeof group, "%.*s", slash ? (int)(slash - name) : 0, name);
    int g = 0;
    while (g < h->n && strcmp(h->groups[g].group, group) != 0) g++;
    if (g == 8) return h->failed = 1, 0;
    if (g == h->n) h->groups[h->n++] = (GroupHash){.hash = CT_FNV1A64_INIT};
    GroupHash *gh = &h->groups[g];
    snprintf(gh->group, sizeof gh->group, "%s", group);
    hid_t ds = H5Dopen2(obj, name, H5P_DEFAULT), space = H5Dget_space(ds), type = H5Dget_type(ds);
    hid_t native = H5Tget_native_type(type, H5T_DIR_ASCEND);
    hsize_t dims[8] = {0};
    int ndim = H5Sget_simple_extent_ndims(space);
    hssize_t n = H5Sget_simple_extent_npoints(space);
    size_t bytes = (size_t)(n > 0 ? n : 0) * H5Tget_size(native);
    void *buf = malloc(bytes ? bytes : 1);
    if (ndim < 0 || ndim > 8 || H5Sget_simple_extent_dims(space, dims, NULL) < 0 ||
        H5Dread(ds, native, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0)
        h->failed = 1;
    gh->hash = ct_fnv1a64_update(gh->hash, name, strlen(name) + 1);
    gh->hash = ct_fnv1a64_update(gh->hash, dims, sizeof dims);
    gh->hash = ct_fnv1a64_update(gh->hash, buf, bytes);
    gh->tensors++;
    free(buf);
    H5Tclose(native);
    H5Tclose(type);
    H5Sclose(space);
    H5Dclose(ds);
    return 0;
}

// LEG/ckpt-stepNNNNNNNN.h5: its number attributes and tensor groups. -1 when unreadable.
static int trace_checkpoint(Trace *t, const char *leg, int step) {
    char rel[256], at[32];
    snprintf(rel, sizeof rel, "%s/ckpt-step%08d.h5", leg, step);
    snprintf(at, sizeof at, "%d", step);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    hid_t file = H5Fopen(ct_test_path(rel), H5F_ACC_RDONLY, H5P_DEFAULT);
    if (file < 0) return -1;
    for (size_t i = 0; i < sizeof ATTRIBUTES / sizeof *ATTRIBUTES; i++) trace_attribute(t, leg, at, file, ATTRIBUTES[i]);
    Hashes h = {.n = 0};
    int rc = H5Ovisit(file, H5_INDEX_NAME, H5_ITER_INC, hash_tensor, &h) < 0 || h.failed ? -1 : 0;
    for (int g = 0; g < h.n; g++) {
        char name[96];
        snprintf(name, sizeof name, "%s.tensors", h.groups[g].group);
        trace_add(t, leg, at, name, "%lld", h.groups[g].tensors);
        snprintf(name, sizeof name, "%s.hash", h.groups[g].group);
        trace_add(t, leg, at, name, "%016llx", (unsigned long long)h.groups[g].hash);
    }
    H5Fclose(file);
    return rc;
}

// ---- running the legs ----

// A corpus with a validation split, 300 sums for SFT and 300 preference pairs, on a 512-token
// tokenizer trained on the corpus (small on purpose: the trace is about bits, not quality).
static int prepare_data(void) {
    const char *bin = ct_test_bin(), *dir = ct_test_tmpdir(), *shared = ct_test_shared_data();
    static const char *fruit[10] = {"apple", "banana", "cherry", "grape", "lemon",
                                    "mango", "orange", "peach", "pear", "plum"};
    FILE *f = fopen(ct_test_path("pairs.jsonl"), "w");
    if (!f) return -1;
    for (int i = 0; i < 300; i++) {
        const char *a = fruit[i % 10], *b = fruit[(3 * i + 1) % 10], *c = fruit[(7 * i + 2) % 10];
        fprintf(f, "{\"prompt\": \"List: %s %s %s\\nReversed:\", \"chosen\": \" %s %s %s\", \"rejected\": \" %s %s %s\"}\n",
                a, b, c, c, b, a, a, b, c);
    }
    fclose(f);
    ct_test_write("trace.json", CONFIG);
    char cmd[8192], *out;
    snprintf(cmd, sizeof cmd,
             "cd '%s' && head -c 200000 '%s/corpora/nlp-corpus-40k.txt' > corpus.txt && "
             "'%s' tokenizer train --input corpus.txt --vocab-size 512 --special '<|endoftext|>' --out tok.json && "
             "'%s' shard --tokenizer tok.json --input corpus.txt --split lines --val-fraction 0.05 --out text && "
             "'%s' synth instructions --task add --examples 300 --out qa.jsonl && "
             "'%s' shard --tokenizer tok.json --input qa.jsonl --format sft --val-fraction 0.1 --out qa && "
             "'%s' shard --tokenizer tok.json --input pairs.jsonl --format dpo --val-fraction 0.1 --out pairs",
             dir, shared, bin, bin, bin, bin, bin);
    int rc = ct_test_run(cmd, &out);
    if (rc != 0) ct_test_fail(__FILE__, __LINE__, "preparing the data failed (%d): %s", rc, out);
    free(out);
    return rc == 0 ? 0 : -1;
}

// Runs a command in the test's folder with its output in LOG; on failure records it with LOG's end.
static int run_logged(const char *what, const char *command, const char *log) {
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "cd '%s' && { %s; } > '%s' 2>&1", ct_test_tmpdir(), command, log);
    int rc = ct_test_run(cmd, NULL);
    if (rc != 0) {
        snprintf(cmd, sizeof cmd, "tail -n 15 '%s'", ct_test_path(log));
        char *out = NULL;
        ct_test_run(cmd, &out);
        ct_test_fail(__FILE__, __LINE__, "%s failed (exit %d):\n%s", what, rc, out ? out : "");
        free(out);
    }
    return rc == 0 ? 0 : -1;
}

static int run_leg(Trace *t, const Leg *leg) {
    char cmd[4096], log[128];
    const char *bin = ct_test_bin();
    if (leg->mpi)
        snprintf(cmd, sizeof cmd,
                 "OMP_NUM_THREADS=1 ASAN_OPTIONS=${ASAN_OPTIONS:-}:detect_leaks=0 timeout 300 mpirun --oversubscribe "
                 "--allow-run-as-root -x ASAN_OPTIONS -x OMP_NUM_THREADS=1 -np 2 '%s' %s --run.out_dir=%s",
                 bin, leg->args, leg->name);
    else
        snprintf(cmd, sizeof cmd, "OMP_NUM_THREADS=2 '%s' %s --run.out_dir=%s", bin, leg->args, leg->name);
    snprintf(log, sizeof log, "%s.log", leg->name);
    if (run_logged(leg->name, cmd, log) != 0) return -1;
    // Step by step, so that the first difference shown is the first the run made.
    for (int s = 0; s <= STEPS; s++) {
        if (trace_metrics(t, leg->name, s) != 0) {
            ct_test_fail(__FILE__, __LINE__, "%s: no metrics.jsonl", leg->name);
            return -1;
        }
        if (s > 0 && trace_checkpoint(t, leg->name, s) != 0) {
            ct_test_fail(__FILE__, __LINE__, "%s: cannot read the checkpoint of step %d", leg->name, s);
            return -1;
        }
    }
    return 0;
}

// The prompt's and the generated token ids (ctrain generate --ids prints them on two lines).
static int run_generation(Trace *t, const Generation *g) {
    char cmd[4096], log[128], ids[128];
    snprintf(ids, sizeof ids, "%s.ids", g->name);
    snprintf(log, sizeof log, "%s.log", g->name);
    snprintf(cmd, sizeof cmd, "OMP_NUM_THREADS=2 '%s' generate %s --max-tokens 16 --threads 2 --ids > '%s'", ct_test_bin(),
             g->args, ids);
    if (run_logged(g->name, cmd, log) != 0) return -1;
    char *text = ct_test_read(ct_test_path(ids), NULL);
    if (!text) return -1;
    char *second = strchr(text, '\n');
    if (second) *second++ = '\0';
    trace_add(t, g->name, "-", "prompt_ids", "%s", text);
    trace_add(t, g->name, "-", "ids", "%.*s", second ? (int)strcspn(second, "\n") : 0, second ? second : "");
    free(text);
    return 0;
}

// ---- the comparison ----

static int is_fingerprint(const Record *r) { return strncmp(r->key, "fingerprint ", 12) == 0; }

static const char *record_name(const Record *r) {
    const char *sp = strchr(r->key, ' ');
    sp = sp ? strchr(sp + 1, ' ') : NULL;
    return sp ? sp + 1 : r->key;
}

static int name_in(const char *name, const char *const *list, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (strcmp(name, list[i]) == 0) return 1;
    return 0;
}

// On another machine: 1 equal as text, 2 within 1e-3 relative, 0 not compared.
static int comparison_elsewhere(const Record *r) {
    // (not lora_base_hash: it hashes the base's weights, machine-bound as the other hashes)
    static const char *const same[] = {"train.tokens", "eval.tokens", "step", "optim_step", "tokens_seen", "rng",
                                       "loader", "tokenizer_hash", "prompt_ids"};
    static const char *const close[] = {"train.loss", "train.lr", "train.grad_norm", "eval.val_loss", "eval.val_ppl",
                                        "train_loss", "val_loss", "best_val_loss"};
    const char *name = record_name(r);
    size_t len = strlen(name);
    if (name_in(name, same, sizeof same / sizeof *same) || (len > 8 && strcmp(name + len - 8, ".tensors") == 0)) return 1;
    return name_in(name, close, sizeof close / sizeof *close) ? 2 : 0;
}

static int close_enough(const char *a, const char *b) {
    char *end_a, *end_b;
    double x = strtod(a, &end_a), y = strtod(b, &end_b);
    if (*end_a || *end_b || end_a == a || end_b == b) return strcmp(a, b) == 0;
    return fabs(x - y) <= 1e-3 * fmax(fabs(x), fabs(y));
}

// "gpt2 7 model.hash" as "gpt2 step 7 model.hash" (a generation's "greedy_llama - ids" as "greedy_llama ids").
static const char *shown_key(const char *key) {
    static char buf[4][300];
    static int which;
    char leg[128] = "", step[32] = "";
    int used = 0;
    which = (which + 1) % 4;
    if (sscanf(key, "%127s %31s %n", leg, step, &used) < 2 || used == 0)
        snprintf(buf[which], sizeof buf[0], "%s", key);
    else if (strcmp(step, "-") == 0)
        snprintf(buf[which], sizeof buf[0], "%s %s", leg, key + used);
    else
        snprintf(buf[which], sizeof buf[0], "%s step %s %s", leg, step, key + used);
    return buf[which];
}

typedef struct {
    char leg[64], first[160];
    int count;
} LegDifferences;

typedef struct {
    int exact, skip_zero, differences, compared;
    char shown[MAX_DIFFERENCES_SHOWN * 400];
    size_t len;
    LegDifferences legs[16];
    int n_legs;
} Comparison;

// Counts a difference of `key` by leg, keeping the leg's first.
static void count_by_leg(Comparison *c, const char *key) {
    char leg[64];
    snprintf(leg, sizeof leg, "%.*s", (int)strcspn(key, " "), key);
    int i = 0;
    while (i < c->n_legs && strcmp(c->legs[i].leg, leg) != 0) i++;
    if (i == 16) return;
    if (i == c->n_legs) {
        c->n_legs++;
        snprintf(c->legs[i].leg, sizeof c->legs[i].leg, "%s", leg);
        snprintf(c->legs[i].first, sizeof c->legs[i].first, "%s", shown_key(key));
    }
    c->legs[i].count++;
}

// The legs that differ: "gpt2: 120 values, the first gpt2 step 5 model.hash; ...".
static void legs_summary(const Comparison *c, char *out, size_t size) {
    size_t len = (size_t)snprintf(out, size, "\n  by leg:");
    for (int i = 0; i < c->n_legs && len < size; i++)
        len += (size_t)snprintf(out + len, size - len, "%s %s: %d values, the first %s", i ? ";" : "", c->legs[i].leg,
                                c->legs[i].count, c->legs[i].first);
}

static void difference(Comparison *c, const char *key, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void difference(Comparison *c, const char *key, const char *fmt, ...) {
    count_by_leg(c, key);
    if (c->differences++ >= MAX_DIFFERENCES_SHOWN) return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(c->shown + c->len, sizeof c->shown - c->len, fmt, ap);
    va_end(ap);
    if (n > 0) c->len = c->len + (size_t)n < sizeof c->shown ? c->len + (size_t)n : sizeof c->shown - 1;
}

static void compare(Comparison *c, const Trace *golden, const Trace *here) {
    for (int i = 0; i < golden->n; i++) {
        const Record *g = &golden->records[i];
        if (is_fingerprint(g) || (c->skip_zero && strncmp(g->key, "zero ", 5) == 0)) continue;
        int at = trace_find(here, g->key);
        if (at < 0) {
            difference(c, g->key, "\n  %s: golden %s, missing here", shown_key(g->key), g->value);
            continue;
        }
        const char *v = here->records[at].value;
        int how = c->exact ? 1 : comparison_elsewhere(g);
        if (how == 0) continue;
        c->compared++;
        if (how == 1 ? strcmp(g->value, v) != 0 : !close_enough(g->value, v))
            difference(c, g->key, "\n  %s: golden %s, here %s", shown_key(g->key), g->value, v);
    }
    for (int i = 0; i < here->n; i++)
        if (!is_fingerprint(&here->records[i]) && trace_find(golden, here->records[i].key) < 0)
            difference(c, here->records[i].key, "\n  %s: %s here, not in the golden trace", shown_key(here->records[i].key),
                       here->records[i].value);
}

// 1 when every fingerprint line of the golden trace is the same here; the first that differs in `why`.
static int same_fingerprint(const Trace *golden, const Trace *here, char *why, size_t size) {
    int n = 0;
    for (int i = 0; i < golden->n; i++) {
        const Record *g = &golden->records[i];
        if (!is_fingerprint(g)) continue;
        n++;
        int at = trace_find(here, g->key);
        if (at < 0 || strcmp(here->records[at].value, g->value) != 0) {
            // long values (compiler flags) are shown from a little before where they first differ
            const char *h = at < 0 ? "(none)" : here->records[at].value;
            size_t d = 0;
            while (g->value[d] && g->value[d] == h[d]) d++;
            size_t from = d > 40 ? d - 40 : 0;
            snprintf(why, size, "%s: golden \"%s%.120s\", here \"%s%.120s\"", record_name(g), from ? "..." : "",
                     g->value + from, from ? "..." : "", h + from);
            return 0;
        }
    }
    snprintf(why, size, "the golden trace has no fingerprint");
    return n > 0;
}

static int mpi_available(void) {
#ifdef CTRAIN_MPI
    return ct_test_run("command -v mpirun", NULL) == 0;
#else
    return 0;
#endif
}

// Runs every leg and generation (the ZeRO-1 leg only with MPI) into `t`. 0, or -1 after recording a failure.
static int run_all(Trace *t, int mpi) {
    if (prepare_data() != 0) return -1;
    for (size_t i = 0; i < sizeof LEGS / sizeof *LEGS; i++)
        if ((mpi || !LEGS[i].mpi) && run_leg(t, &LEGS[i]) != 0) return -1;
    for (size_t i = 0; i < sizeof GENERATIONS / sizeof *GENERATIONS; i++)
        if (run_generation(t, &GENERATIONS[i]) != 0) return -1;
    return 0;
}

static int env_is_1(const char *name) { return getenv(name) && strcmp(getenv(name), "1") == 0; }

TEST(trace, twenty_steps_of_every_objective_match_the_golden_trace) {
    const char *root = getenv("CTRAIN_ROOT");
    if (!root) SKIP("CTRAIN_ROOT is not set (run through make test)");
    if (!ct_test_shared_data()) return;
    char golden_path[1200];
    snprintf(golden_path, sizeof golden_path, "%s/tests/trace/golden.txt", root);
    const int mpi = mpi_available();
    Trace here = {0}, golden = {0};
    fingerprint(&here);
    if (env_is_1("CTRAIN_TRACE_RECORD")) {
        CHECK_MSG(mpi, "recording the trace needs every leg, ZeRO-1 under mpirun too: this build or machine has no MPI");
        if (run_all(&here, mpi) != 0) return;
        CHECK_MSG(trace_write(&here, golden_path) == 0, "%s: cannot write the golden trace", golden_path);
        printf("  NOTE trace: recorded %d values in %s\n", here.n, golden_path);
        trace_free(&here);
        return;
    }
    CHECK_MSG(trace_read(&golden, golden_path) == 0, "%s: no golden trace (record it with CTRAIN_TRACE_RECORD=1 make "
                                                      "test TESTS=trace)", golden_path);
    char why[512];
    Comparison c = {.exact = same_fingerprint(&golden, &here, why, sizeof why), .skip_zero = !mpi};
    CHECK_MSG(c.exact || !env_is_1("CTRAIN_TRACE_EXACT"),
              "CTRAIN_TRACE_EXACT=1, but this machine or build is not the one that recorded %s: %s", golden_path, why);
    if (run_all(&here, mpi) != 0) return;
    if (!c.exact)
        printf("  NOTE trace: the fingerprint differs (%s): compared integers exactly and losses, learning rates and "
               "gradient norms within 1e-3, not the checkpoint hashes or token ids\n", why);
    if (!mpi) printf("  NOTE trace: no MPI (build or mpirun): the ZeRO-1 leg was left out\n");
    compare(&c, &golden, &here);
    CHECK_MSG(c.compared > 100, "only %d values compared", c.compared);
    char by_leg[2048];
    legs_summary(&c, by_leg, sizeof by_leg);
    CHECK_MSG(c.differences == 0, "%d of the trace's values differ from %s%s (the first %d, in order):%s%s",
              c.differences, golden_path, c.exact ? " (same fingerprint: compared to the bit)" : "",
              MAX_DIFFERENCES_SHOWN, c.shown, by_leg);
    trace_free(&golden);
    trace_free(&here);
}
