#!/usr/bin/env python3
"""Reference side of ctrain's LoRA sequence classifiers (tests/test_lora_classify_ref.c): PEFT's
SEQ_CLS task, LoRA adapters plus the classification head trained in full (modules_to_save
["classifier", "score"]), on BertForSequenceClassification and RobertaForSequenceClassification.

usage:
  peft_classify_ref.py make DIR ARCH
      hf_classify_ref.py's `make` (a tiny random classifier of 3 labels in DIR, its inputs and
      logits), then a PEFT SEQ_CLS adapter made by peft itself on it: get_peft_model with
      LoraConfig(task_type=SEQ_CLS, r=4, lora_alpha=8, target_modules=query,value,
      attention.output.dense), lora_B and the head's trained copy set to random values (PEFT
      starts lora_B at zero and the copy at the base's head), saved to DIR/peft with
      save_pretrained; DIR/peft_logits.bin [B, 3] fp32: the PeftModel's logits of the inputs.
  peft_classify_ref.py logits BASE ADAPTER TOKENS TYPES MASK OUT
      PeftModel.from_pretrained(AutoModelForSequenceClassification BASE, ADAPTER) (ADAPTER
      written by ctrain lora export: task_type SEQ_CLS and the classifier among modules_to_save
      checked) and the fp32 logits of the inputs to OUT.

Where torch, transformers or peft is not importable it prints "SKIP: ..." and exits 0.
"""
import json
import os
import sys

try:
    import torch
    import transformers  # noqa: F401
    from transformers import AutoModelForSequenceClassification
    import peft
except ImportError as e:
    print("SKIP: the Python module %s is not importable (pip install torch transformers peft)" % e.name)
    sys.exit(0)

from encoder_inputs import inputs, read_ints, write  # noqa: E402
from hf_classify_ref import make as make_classifier  # noqa: E402


def base(folder):
    return AutoModelForSequenceClassification.from_pretrained(folder, dtype=torch.float32,
                                                              attn_implementation="eager").eval()


def logits_of(model, tokens, types, mask):
    with torch.no_grad():
        return model(input_ids=tokens, token_type_ids=types, attention_mask=mask).logits.float()


def make(folder, arch):
    make_classifier(folder, arch)
    torch.manual_seed(31 if arch == "bert" else 32)
    config = peft.LoraConfig(task_type=peft.TaskType.SEQ_CLS, r=4, lora_alpha=8,
                             target_modules=["query", "value", "attention.output.dense"])
    model = peft.get_peft_model(base(folder), config)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name or "modules_to_save" in name:
                p.add_(0.2 * torch.randn_like(p))
    model.eval()
    adapter = os.path.join(folder, "peft")
    model.save_pretrained(adapter)
    tokens, types, mask = inputs(arch, 27)
    # the adapter as PEFT loads it back
    loaded = peft.PeftModel.from_pretrained(base(folder), adapter).eval()
    write(os.path.join(folder, "peft_logits.bin"), logits_of(loaded, tokens, types, mask), "f")


def logits(folder, adapter, tokens, types, mask, out):
    with open(os.path.join(adapter, "adapter_config.json")) as f:
        cfg = json.load(f)
    assert cfg["task_type"] == "SEQ_CLS", cfg["task_type"]
    assert "classifier" in (cfg.get("modules_to_save") or []), cfg.get("modules_to_save")
    model = peft.PeftModel.from_pretrained(base(folder), adapter).eval()
    trained = [n for n, _ in model.named_parameters() if "modules_to_save" in n]
    assert trained, "PEFT found no modules_to_save in the adapter"
    write(out, logits_of(model, tokens, types, mask), "f")


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "make":
        make(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 8 and sys.argv[1] == "logits":
        folder, adapter, tokens, types, mask, out = sys.argv[2:]
        logits(folder, adapter, read_ints(tokens), read_ints(types), read_ints(mask), out)
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
