#!/usr/bin/env python3
"""Reference side of ctrain's PEFT adapter test (tests/test_lora_ref.c).

usage:
  peft_ref.py logits BASE_DIR ADAPTER_DIR TOKENS OUT
      Loads the Hugging Face model BASE_DIR (ctrain export hf), puts the LoRA adapter folder
      ADAPTER_DIR (written by ctrain) on it with peft.PeftModel.from_pretrained, and writes the
      fp32 logits [T, V] of the int32 tokens in TOKENS to OUT.
  peft_ref.py make BASE_DIR ADAPTER_DIR TOKENS OUT TARGETS R ALPHA RSLORA
      Creates a LoRA adapter with peft itself (get_peft_model, LoraConfig(target_modules=TARGETS
      comma-separated, r=R, lora_alpha=ALPHA, use_rslora=RSLORA)), sets lora_B to random values
      (PEFT starts it at zero), saves it to ADAPTER_DIR with save_pretrained and writes the
      logits of TOKENS to OUT: ctrain must read PEFT's own files to the same logits.

  peft_ref.py both BASE_DIR ADAPTER_DIR TOKENS OUT PEFT_ADAPTER_DIR PEFT_OUT TARGETS R ALPHA RSLORA
      `logits` then `make` in one process (torch and peft load once).

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
    return AutoModelForCausalLM.from_pretrained(dir_path, torch_dtype=torch.float32, attn_implementation="eager").eval()


def logits_of(model, tokens):
    with torch.no_grad():
        return model(input_ids=torch.tensor([tokens], dtype=torch.long)).logits[0]


def main():
    mode = sys.argv[1]
    if mode == "both":
        args = sys.argv[2:]
        run("logits", args[0], args[1], args[2], args[3], [])
        run("make", args[0], args[4], args[2], args[5], args[6:])
    else:
        run(mode, *sys.argv[2:6], sys.argv[6:])


def run(mode, base_dir, adapter_dir, tokens_path, out, rest):
    tokens = read_ints(tokens_path)
    if mode == "logits":
        model = peft.PeftModel.from_pretrained(base(base_dir), adapter_dir).eval()
        # the adapters must really be there: as many lora_A modules as ctrain wrote pairs
        n = sum(1 for name, _ in model.named_modules() if name.endswith("lora_A.default"))
        if n == 0:
            sys.exit("peft attached no adapter from %s" % adapter_dir)
        write_floats(out, logits_of(model, tokens))
    elif mode == "make":
        targets, r, alpha, rslora = rest[0].split(","), int(rest[1]), float(rest[2]), rest[3] == "1"
        torch.manual_seed(99)
        config = peft.LoraConfig(r=r, lora_alpha=alpha, target_modules=targets, lora_dropout=0.0, bias="none",
                                 task_type="CAUSAL_LM", use_rslora=rslora)
        model = peft.get_peft_model(base(base_dir), config)
        with torch.no_grad():
            for name, p in model.named_parameters():
                if "lora_B" in name:
                    p.copy_(torch.randn_like(p) * 0.3)
        model.eval()
        model.save_pretrained(adapter_dir)
        write_floats(out, logits_of(model, tokens))
    else:
        sys.exit("unknown mode " + mode)


if __name__ == "__main__":
    main()
