#!/usr/bin/env python3
"""Reference side of tests/test_hf_encoder_train_ref.c: transformers' BertForMaskedLM trained on
ctrain's own masked batches, to compare ctrain mlm's steps with.

usage:
  hf_encoder_train_ref.py init DIR V TOKENIZER_JSON
      Saves a freshly initialised BertForMaskedLM (transformers' init: normal 0.02, no dropout) of
      the test's shape and vocabulary V to DIR, with TOKENIZER_JSON as its tokenizer.json.
  hf_encoder_train_ref.py train DIR BATCHES STEPS LR MIN_LR WARMUP OUT
      Loads DIR and takes STEPS AdamW steps as ctrain's loop does (betas 0.9/0.95, eps 1e-8, decay
      0.1 on the >= 2-D tensors that are not embeddings, cosine from LR to MIN_LR after WARMUP
      linear steps, gradients clipped to norm 1) on BATCHES: per step int32 [tokens | targets |
      positions | doc ids], each [8, 64], targets -1 where nothing is predicted. Writes per step the
      loss and the gradient norm before clipping (float64) to OUT.

Prints "SKIP: ..." and exits 0 where torch or transformers is not importable.
"""
import math
import shutil
import struct
import sys

try:
    import torch
    import transformers
except ImportError as e:
    print("SKIP: the Python module %s is not importable (pip install torch transformers)" % e.name)
    sys.exit(0)

B, T = 8, 64


def init(folder, vocab, tokenizer_json):
    torch.manual_seed(2026)
    config = transformers.BertConfig(vocab_size=vocab, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                                     intermediate_size=128, max_position_embeddings=64, hidden_act="gelu",
                                     hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
                                     initializer_range=0.02, layer_norm_eps=1e-12, pad_token_id=0)
    transformers.BertForMaskedLM(config).save_pretrained(folder)
    shutil.copy(tokenizer_json, folder + "/tokenizer.json")


def lr_at(step, lr, min_lr, warmup, total):  # optim/schedule.c's cosine
    if step < warmup:
        return lr * (step + 1) / warmup
    return min_lr + 0.5 * (lr - min_lr) * (1 + math.cos(math.pi * (step - warmup) / (total - warmup)))


def train(folder, batches, steps, lr, min_lr, warmup, out):
    torch.set_num_threads(1)
    model = transformers.BertForMaskedLM.from_pretrained(folder, dtype=torch.float32, attn_implementation="eager")
    model.train()
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "embeddings" not in n]
    rest = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and "embeddings" not in n)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": rest, "weight_decay": 0.0}], lr=lr,
                            betas=(0.9, 0.95), eps=1e-8)
    with open(batches, "rb") as f:
        data = f.read()
    ints = torch.tensor(struct.unpack("<%di" % (len(data) // 4), data), dtype=torch.long).reshape(-1, 4, B, T)
    results = []
    for step in range(steps):
        for g in opt.param_groups:
            g["lr"] = lr_at(step, lr, min_lr, warmup, steps)
        tokens, targets, positions, docs = ints[step]
        # ctrain's document masking: a token sees the tokens of its own document only
        blocked = docs[:, :, None] != docs[:, None, :]
        mask = torch.zeros(B, 1, T, T).masked_fill(blocked[:, None], torch.finfo(torch.float32).min)
        logits = model(input_ids=tokens, position_ids=positions, attention_mask=mask).logits
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1),
                                                 ignore_index=-1)
        opt.zero_grad()
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        results += [loss.item(), norm.item()]
    with open(out, "wb") as f:
        f.write(struct.pack("<%dd" % len(results), *results))


def main():
    a = sys.argv
    if len(a) == 5 and a[1] == "init":
        init(a[2], int(a[3]), a[4])
    elif len(a) == 9 and a[1] == "train":
        train(a[2], a[3], int(a[4]), float(a[5]), float(a[6]), int(a[7]), a[8])
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
