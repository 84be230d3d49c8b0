#!/usr/bin/env python3
"""Reference side of ctrain's sequence classifiers (tests/test_classify_ref.c):
BertForSequenceClassification and RobertaForSequenceClassification.

usage:
  hf_classify_ref.py make DIR ARCH
      ARCH: bert | roberta. Saves a tiny randomly initialised *ForSequenceClassification of 3 labels
      (id2label neg, neutral, pos; every parameter moved off transformers' init) to DIR with
      save_pretrained, and writes from the folder as transformers loads it back (fp32, eager):
        DIR/tokens.bin [B, T] int32 ids (row 1 ends in pads)   DIR/types.bin [B, T] int32 token types
        DIR/mask.bin   [B, T] int32 attention mask (0: pad)    DIR/logits.bin [B, 3] fp32 logits
  hf_classify_ref.py logits DIR TOKENS TYPES MASK OUT
      Loads DIR (AutoModelForSequenceClassification), checks its config (num_labels 3 and the
      problem type, or the labels ctrain names), and writes the fp32 logits of those inputs to OUT.

Where torch or transformers is not importable it prints "SKIP: ..." and exits 0.
"""
import os
import sys

try:
    import torch
    import transformers
    from transformers import AutoModelForSequenceClassification
except ImportError as e:
    print("SKIP: the Python module %s is not importable (pip install torch transformers)" % e.name)
    sys.exit(0)

from encoder_inputs import config_of as encoder_config, inputs, read_ints, write  # noqa: E402

L = 3
LABELS = {0: "neg", 1: "neutral", 2: "pos"}


def config_of(arch):
    return encoder_config(arch, id2label=LABELS, label2id={v: k for k, v in LABELS.items()},
                          problem_type="single_label_classification")


def logits_of(folder, tokens, types, mask):
    model = AutoModelForSequenceClassification.from_pretrained(folder, dtype=torch.float32,
                                                               attn_implementation="eager")
    c = model.config
    assert c.num_labels == L, "num_labels %d" % c.num_labels
    assert c.problem_type == "single_label_classification", c.problem_type
    assert c.id2label == LABELS, c.id2label
    model.eval()
    with torch.no_grad():
        return model(input_ids=tokens, token_type_ids=types, attention_mask=mask).logits.float()


def make(folder, arch):
    torch.manual_seed(271 if arch == "bert" else 272)
    model = AutoModelForSequenceClassification.from_config(config_of(arch), attn_implementation="eager")
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    model.eval()
    model.save_pretrained(folder)
    tokens, types, mask = inputs(arch, 27)
    write(os.path.join(folder, "tokens.bin"), tokens, "i")
    write(os.path.join(folder, "types.bin"), types, "i")
    write(os.path.join(folder, "mask.bin"), mask, "i")
    write(os.path.join(folder, "logits.bin"), logits_of(folder, tokens, types, mask), "f")


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "make":
        make(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 7 and sys.argv[1] == "logits":
        folder, tokens, types, mask, out = sys.argv[2:]
        write(out, logits_of(folder, read_ints(tokens), read_ints(types), read_ints(mask)), "f")
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
