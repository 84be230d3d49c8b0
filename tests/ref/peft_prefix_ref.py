#!/usr/bin/env python3
"""Reference side of ctrain's prefix-tuning test (tests/test_prefix_ref.c).

usage:
  peft_prefix_ref.py BASE_DIR ADAPTER_DIR TOKENS OUT PEFT_ADAPTER_DIR PEFT_OUT P PROJECTION
      (1) Loads the Hugging Face model BASE_DIR (ctrain export hf), puts the prefix-tuning adapter
      folder ADAPTER_DIR (written by ctrain) on it with peft.PeftModel.from_pretrained and writes
      the fp32 logits [T, V] of the int32 tokens in TOKENS to OUT.
      (2) Makes a prefix-tuning adapter with peft itself (get_peft_model, PrefixTuningConfig with
      num_virtual_tokens=P, prefix_projection=PROJECTION, its random initialisation), saves it to
      PEFT_ADAPTER_DIR with save_pretrained (PEFT writes the computed keys and values as
      prompt_embeddings, the projection's output when there is one) and writes the logits of
      TOKENS to PEFT_OUT: ctrain must read PEFT's own files to the same logits.

Where torch, transformers or peft is not importable it prints "SKIP: ..." and exits 0.
"""
import struct
import sys

try:
    import torch
    from transformers import AutoModelForCausalLM
    import peft
except ImportError as e:
    print("SKIP: the Python module %s is not importable (pip install torch transformers peft)" % e.name)
    sys.exit(0)


def read_ints(path):
    data = open(path, "rb").read()
    return list(struct.unpack("<%di" % (len(data) // 4), data))


def write_floats(path, t):
    values = t.detach().to(torch.float32).contiguous().flatten().tolist()
    with open(path, "wb") as f:
        f.write(struct.pack("<%df" % len(values), *values))


def base(dir_path):
    return AutoModelForCausalLM.from_pretrained(dir_path, dtype=torch.float32, attn_implementation="eager").eval()


def logits_of(model, tokens):
    with torch.no_grad():
        ids = torch.tensor([tokens], dtype=torch.long)
        return model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits[0]


def main():
    base_dir, adapter_dir, tokens_path, out, peft_dir, peft_out, p, projection = sys.argv[1:9]
    tokens = read_ints(tokens_path)
    model = peft.PeftModel.from_pretrained(base(base_dir), adapter_dir).eval()
    write_floats(out, logits_of(model, tokens))

    torch.manual_seed(77)
    config = peft.PrefixTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=int(p),
                                     prefix_projection=projection == "1")
    model = peft.get_peft_model(base(base_dir), config).eval()
    model.save_pretrained(peft_dir)
    write_floats(peft_out, logits_of(model, tokens))


if __name__ == "__main__":
    main()
