// ctrain ckpt info: what a checkpoint holds, once every checksum has been verified.
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "checkpoints/checkpoint.h"
#include "core/alloc.h"
#include "core/error.h"
#include "core/log.h"
#include "data/tokenizer/tokenizer_hf.h"
#include "data/tokenizer/tokenizer_identity.h"
#include "train/cli/commands.h"

static const CtOption options[] = {
    {"tensors", NULL, "list every tensor with its shape", 0},
    {"no-verify", NULL, "do not read every tensor to verify its checksum (attributes are still checked)", 0},
};

typedef struct {
    char group[64];
    int64_t tensors, elements;
} GroupTotal;

typedef struct {
    GroupTotal groups[16];
    int n_groups;
    int list;
} InfoState;

static void visit(void *ctx, const char *path, int ndim, const int64_t *shape, int64_t numel) {
    InfoState *s = ctx;
    const char *slash = strrchr(path, '/');
    char group[64];
    snprintf(group, sizeof group, "%.*s", slash ? (int)(slash - path) : 0, path);
    int g = 0;
    while (g < s->n_groups && strcmp(s->groups[g].group, group) != 0) g++;
    if (g == s->n_groups && g < 16) snprintf(s->groups[s->n_groups++].group, sizeof s->groups[0].group, "%s", group);
    if (g < 16) {
        s->groups[g].tensors++;
        s->groups[g].elements += numel;
    }
    if (s->list) {
        printf("  %-64s [", path);
        for (int d = 0; d < ndim; d++) printf("%s%" PRId64, d ? ", " : "", shape[d]);
        printf("]\n");
    }
}

static int run_ckpt_info(const CtArgs *args) {
    const char *path = args->positionals[0];
    CtCheckpoint c;
    if (ct_ckpt_open(&c, path) != 0) return ct_cli_fail();  // every attribute checked (format 1.1)
    const int verify = !ct_args_has(args, "no-verify");
    int64_t n_tensors = 0;
    if (verify && ct_ckpt_verify_tensors(&c, &n_tensors) != 0) {
        ct_ckpt_close(&c);
        return ct_cli_fail();
    }
    printf("checkpoint %s (ctrain checkpoint, version %d.%d)\n", path, CT_CKPT_VERSION, c.version_minor);
    char tensors[64] = "tensors not read (--no-verify)";
    if (verify) snprintf(tensors, sizeof tensors, "%" PRId64 " tensors", n_tensors);
    if (c.version_minor >= 1)
        printf("  %-12s %s and %d attributes verified\n", "checksums", tensors, c.attributes_checked);
    else
        printf("  %-12s %s%s; attributes unchecked (written before ctrain checksummed them)\n", "checksums", tensors,
               verify ? " verified" : "");
    static const char *const ints[] = {"step", "tokens_seen"};
    for (int i = 0; i < 2; i++) {
        int64_t v;
        if (ct_ckpt_has(&c, ints[i]) && ct_ckpt_get_int(&c, ints[i], &v) == 0) printf("  %-12s %" PRId64 "\n", ints[i], v);
    }
    static const char *const doubles[] = {"train_loss", "val_loss", "best_val_loss"};
    for (int i = 0; i < 3; i++) {
        double v;
        if (ct_ckpt_has(&c, doubles[i]) && ct_ckpt_get_double(&c, doubles[i], &v) == 0) printf("  %-12s %.6g\n", doubles[i], v);
    }
    char *text;
    if (ct_ckpt_has(&c, "created_by") && ct_ckpt_get_string(&c, "created_by", &text) == 0) {
        printf("  %-12s %s\n", "created_by", text);
        ct_free(text);
    }
    if (ct_ckpt_has(&c, "tokenizer") && ct_ckpt_get_string(&c, "tokenizer", &text) == 0) {
        CtTokenizer t;
        if (ct_tokenizer_parse_hf(&t, text, strlen(text), path, NULL) == 0) {
            printf("  %-12s %d ids (%d special), %zu bytes of tokenizer.json, fingerprint %016" PRIx64 "\n", "tokenizer",
                   (int)ct_tokenizer_vocab_size(&t), (int)t.n_special, strlen(text), ct_tokenizer_fingerprint(&t));
            ct_tokenizer_free(&t);
        } else {
            printf("  %-12s %zu bytes of tokenizer.json that do not load: %s\n", "tokenizer", strlen(text),
                   ct_error_message());
        }
        ct_free(text);
    } else {
        printf("  %-12s none\n", "tokenizer");
    }
    InfoState s;
    memset(&s, 0, sizeof s);
    s.list = ct_args_has(args, "tensors");
    if (s.list) printf("tensors:\n");
    if (ct_ckpt_visit(&c, visit, &s) != 0) {
        ct_ckpt_close(&c);
        return ct_cli_fail();
    }
    printf("groups:\n");
    for (int g = 0; g < s.n_groups; g++) {
        char count[32];
        ct_format_count(count, sizeof count, (double)s.groups[g].elements);
        printf("  /%-20s %5" PRId64 " tensors, %s values (%" PRId64 ")\n", s.groups[g].group, s.groups[g].tensors, count,
               s.groups[g].elements);
    }
    if (ct_ckpt_has(&c, "config") && ct_ckpt_get_string(&c, "config", &text) == 0) {
        printf("config:\n%s\n", text);
        ct_free(text);
    }
    ct_ckpt_close(&c);
    return 0;
}

const CtCommand ct_cmd_ckpt_info = {
    .name = "ckpt info",
    .summary = "show what a checkpoint holds (step, losses, tokenizer, tensors, config) and verify its checksums",
    .usage = "ctrain ckpt info FILE [--tensors] [--no-verify]",
    .options = options,
    .n_options = (int)(sizeof options / sizeof options[0]),
    .min_positionals = 1,
    .max_positionals = 1,
    .run = run_ckpt_info,
};
