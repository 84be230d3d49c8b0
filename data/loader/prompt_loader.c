#include "data/loader/prompt_loader.h"

#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/rng.h"

void ct_prompt_loader_default_options(CtPromptLoaderOptions *o) {
    memset(o, 0, sizeof *o);
    o->batch = 4;
    o->world = 1;
    o->seed = 1337;
    o->shuffle = 1;
}

// Every prompt's fields, NUL after each: the fields frames of each shard in order.
static int read_fields(CtPromptLoader *l) {
    const CtDatasetSplit *ds = &l->dataset->split[l->split];
    uint64_t total = 0, max_frame = 1;
    for (int i = 0; i < ds->n_shards; i++)
        for (uint32_t f = 0; f < ds->shards[i].n_field_frames; f++) {
            total += ds->shards[i].field_frame_raw[f];
            if (ds->shards[i].field_frame_raw[f] > max_frame) max_frame = ds->shards[i].field_frame_raw[f];
        }
    l->fields = ct_alloc(total + l->n_prompts + 1);
    l->fields_offset = ct_alloc(sizeof(uint64_t) * (l->n_prompts + 1));
    char *frame = ct_alloc(max_frame);
    void *dctx = ct_shard_dctx_new();
    uint64_t e = 0, at = 0;
    int rc = 0;
    for (int i = 0; i < ds->n_shards && rc == 0; i++) {
        const CtShard *s = &ds->shards[i];
        for (uint32_t f = 0; f < s->n_field_frames && rc == 0; f++) {
            if (ct_shard_read_fields_frame(s, f, dctx, frame) < 0) {
                rc = -1;
                break;
            }
            size_t in_frame = 0;
            for (uint64_t k = s->field_frame_first[f]; k < s->field_frame_first[f + 1]; k++, e++) {
                l->fields_offset[e] = at;
                memcpy(l->fields + at, frame + in_frame, s->field_lengths[k]);
                in_frame += s->field_lengths[k];
                at += s->field_lengths[k];
                l->fields[at++] = '\0';
            }
        }
    }
    l->fields_offset[l->n_prompts] = at;
    ct_shard_dctx_free(dctx);
    ct_free(frame);
    return rc;
}

static int plan_epoch(CtPromptLoader *l, uint64_t epoch) {
    if (l->opt.shuffle) {
        CtRng rng;
        ct_rng_seed_stream(&rng, l->opt.seed, ct_rng_data_stream(epoch, 0));
        ct_rng_permutation(&rng, l->order, (uint32_t)l->n_prompts);
    } else {
        for (uint64_t e = 0; e < l->n_prompts; e++) l->order[e] = (uint32_t)e;
    }
    l->planned_epoch = epoch + 1;
    return 0;
}

int ct_prompt_loader_open(CtPromptLoader *l, const CtDataset *d, CtSplit split, const CtPromptLoaderOptions *o) {
    memset(l, 0, sizeof *l);
    if (o->batch < 1 || o->world < 1 || o->rank < 0 || o->rank >= o->world || o->max_prompt_tokens < 0)
        return ct_error_set("prompt loader: batch %d, rank %d of %d, max prompt tokens %d: batch and world must be "
                            "positive, rank < world, the maximum 0 (none) or more", o->batch, o->rank, o->world,
                            o->max_prompt_tokens);
    if (d->kind != CT_SHARD_PROMPTS)
        return ct_error_set("%s: a %s dataset, not prompts (make one with ctrain shard --format prompts)", d->dir,
                            ct_shard_kind_name(d->kind));
    const CtDatasetSplit *ds = &d->split[split];
    l->dataset = d;
    l->split = split;
    l->opt = *o;
    l->state.seed = o->seed;
    l->n_prompts = ds->n_documents;
    const uint64_t global = (uint64_t)o->world * (uint64_t)o->batch;
    if (l->n_prompts < global || l->n_prompts > UINT32_MAX)
        return ct_error_set("%s: split '%s' has %llu prompts, %s one global batch (%d ranks x %d)", d->dir,
                            ct_split_name(split), (unsigned long long)l->n_prompts,
                            l->n_prompts < global ? "fewer than" : "more than 2^32 in", o->world, o->batch);
    l->steps_per_epoch = l->n_prompts / global;
    l->tokens = ct_alloc(sizeof(int32_t) * (ds->n_tokens + 1));
    l->token_offset = ct_alloc(sizeof(uint64_t) * (l->n_prompts + 1));
    l->order = ct_alloc(sizeof(uint32_t) * (l->n_prompts + 1));
    l->batch = ct_calloc((size_t)o->batch, sizeof(CtPrompt));
    void *dctx = ct_shard_dctx_new();
    int rc = ct_dataset_read_range(d, split, 0, ds->n_tokens, dctx, l->tokens, NULL);
    ct_shard_dctx_free(dctx);
    if (rc == 0) rc = read_fields(l);
    if (rc != 0) {
        ct_prompt_loader_close(l);
        return -1;
    }
    for (uint64_t e = 0; e < l->n_prompts; e++) l->token_offset[e] = ds->doc_starts[e];
    l->token_offset[l->n_prompts] = ds->n_tokens;
    for (uint64_t e = 0; o->max_prompt_tokens > 0 && e < l->n_prompts; e++)
        l->truncated += l->token_offset[e + 1] - l->token_offset[e] > (uint64_t)o->max_prompt_tokens;
    return plan_epoch(l, 0);
}

void ct_prompt_loader_close(CtPromptLoader *l) {
    ct_free(l->tokens);
    ct_free(l->token_offset);
    ct_free(l->fields);
    ct_free(l->fields_offset);
    ct_free(l->order);
    ct_free(l->batch);
    memset(l, 0, sizeof *l);
}

CtPrompt ct_prompt_loader_get(const CtPromptLoader *l, uint64_t e) {
    uint64_t from = l->token_offset[e], n = l->token_offset[e + 1] - from;
    if (l->opt.max_prompt_tokens > 0 && n > (uint64_t)l->opt.max_prompt_tokens) {
        from += n - (uint64_t)l->opt.max_prompt_tokens;  // TRL keeps a long prompt's end
        n = (uint64_t)l->opt.max_prompt_tokens;
    }
    return (CtPrompt){l->tokens + from, (size_t)n, l->fields + l->fields_offset[e],
                      (size_t)(l->fields_offset[e + 1] - l->fields_offset[e] - 1), e};
}

int ct_prompt_loader_next(CtPromptLoader *l, const CtPrompt **prompts) {
    if (l->state.step >= l->steps_per_epoch) {
        l->state.epoch++;
        l->state.step = 0;
    }
    if (l->planned_epoch != l->state.epoch + 1) plan_epoch(l, l->state.epoch);
    const uint64_t first = l->state.step * (uint64_t)l->opt.world * l->opt.batch + (uint64_t)l->opt.rank * l->opt.batch;
    for (int i = 0; i < l->opt.batch; i++) l->batch[i] = ct_prompt_loader_get(l, l->order[first + (uint64_t)i]);
    l->state.step++;
    *prompts = l->batch;
    return 0;
}

CtLoaderState ct_prompt_loader_state(const CtPromptLoader *l) { return l->state; }

int ct_prompt_loader_restore(CtPromptLoader *l, const CtLoaderState *state) {
    if (state->step > l->steps_per_epoch)
        return ct_error_set("prompt loader: saved position (epoch %llu, step %llu) is past the end of an epoch of %llu "
                            "steps: was the data, the batch size or the number of ranks changed?",
                            (unsigned long long)state->epoch, (unsigned long long)state->step,
                            (unsigned long long)l->steps_per_epoch);
    l->opt.seed = state->seed;
    l->state = *state;
    l->planned_epoch = 0;
    return 0;
}
