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
  peft_ref.py rich BASE_DIR ADAPTER_DIR GROWN_TOKENS OUT PEFT_ADAPTER_DIR TOKENS PEFT_OUT NEW_VOCAB VARIANT
      `logits` of ctrain's adapter (GROWN_TOKENS) on the base grown to NEW_VOCAB tokens
      (resize_token_embeddings: the adapter's trainable_token_indices carry the new rows), then,
      on TOKENS, a PEFT adapter of VARIANT
      made by peft itself (as `make`), with PEFT's richer config:
        all-linear  target_modules="all-linear", rank_pattern, alpha_pattern, lora_dropout 0.1 and
                    trainable_token_indices (the embedding's rows, and an untied head's)
        regex       target_modules a regular expression
        layers      a list with layers_to_transform [1] and layers_pattern
      (ADAPTER_DIR "-": the second half only)
      lora_B and the token rows are set to random values.

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


def make_rich(base_dir, adapter_dir, tokens, out, variant):
    model = base(base_dir)
    tied = model.config.tie_word_embeddings
    gpt2 = model.config.model_type == "gpt2"
    torch.manual_seed(98)
    if variant == "all-linear":
        ids = [3, 5, 6]
        config = peft.LoraConfig(
            r=4, lora_alpha=8, target_modules="all-linear", lora_dropout=0.1, bias="none", task_type="CAUSAL_LM",
            fan_in_fan_out=gpt2,
            rank_pattern={"c_attn" if gpt2 else "q_proj": 2,
                          ("transformer.h.1.mlp.c_fc" if gpt2 else "model.layers.1.mlp.down_proj"): 8},
            alpha_pattern={"c_proj" if gpt2 else "v_proj": 3},
            trainable_token_indices=ids if tied else {"embed_tokens": ids, "lm_head": ids})
    elif variant == "regex":
        config = peft.LoraConfig(
            r=4, lora_alpha=16, bias="none", task_type="CAUSAL_LM", fan_in_fan_out=gpt2,
            target_modules=r".*\.(c_attn|c_fc)" if gpt2 else r"model\.layers\.\d+\.(self_attn\.(q|v)|mlp\.up)_proj")
    else:  # layers
        config = peft.LoraConfig(
            r=4, lora_alpha=16, bias="none", task_type="CAUSAL_LM", fan_in_fan_out=gpt2,
            target_modules=["c_attn", "mlp.c_proj"] if gpt2 else ["q_proj", "down_proj"],
            layers_to_transform=[1], layers_pattern="h" if gpt2 else "layers")
    model = peft.get_peft_model(model, config)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name or "trainable_tokens_delta" in name:
                p.copy_(torch.randn_like(p) * 0.3)
    model.eval()
    model.save_pretrained(adapter_dir)
    write_floats(out, logits_of(model, tokens))


def main():
    mode = sys.argv[1]
    if mode == "rich":
        base_dir, adapter_dir, grown_tokens, out, peft_adapter_dir, tokens, peft_out, new_vocab, variant = sys.argv[2:11]
        if adapter_dir != "-":
            grown = base(base_dir)
            grown.resize_token_embeddings(int(new_vocab))
            model = peft.PeftModel.from_pretrained(grown, adapter_dir).eval()
            if not any("token_adapter" in name for name, _ in model.named_modules()):
                sys.exit("peft attached no trainable token rows from %s" % adapter_dir)
            write_floats(out, logits_of(model, read_ints(grown_tokens)))
        make_rich(base_dir, peft_adapter_dir, read_ints(tokens), peft_out, variant)
        return
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
