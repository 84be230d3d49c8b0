#!/usr/bin/env python3
"""Reference side of `ctrain eval` (tests/test_eval.c): the windowed cross-entropy that a
transformers user computes, for comparison with ctrain's.

usage:
  eval_ref.py CASES.json
      CASES.json is a list of cases {"model": HF_DIR, "text": FILE | "jsonl": FILE, "seq": T,
      "adapter": PEFT_DIR (optional), "gpt2_tokenizer": DIR (optional: GPT-2's encoder.json and
      vocab.bpe instead of HF_DIR's tokenizer)}. For each it prints
          case N: loss=<nats/token> tokens=<predicted tokens> windows=<windows>
      The stream is tokenizer(text)["input_ids"] (a .jsonl: each line's "text" so encoded,
      followed by the end-of-text token <|endoftext|>), cut into windows x [n, T] (the last
      partial window dropped); the loss is torch.nn.functional.cross_entropy of model(x).logits
      [:, :-1] against x[:, 1:], the model loaded in float32 (with the PEFT adapter on it).

Where torch or transformers (or peft, for a case with an adapter) is not importable it prints
"SKIP: ..." and exits 0, so the C test skips with the reason.
"""
import json
import os
import sys

try:
    import torch
    import torch.nn.functional as F
    from transformers import AutoModelForCausalLM, AutoTokenizer
except ImportError as e:
    print("SKIP: the Python module %s is not importable (pip install torch transformers)" % e.name)
    sys.exit(0)


def tokenizer_of(case):
    if "gpt2_tokenizer" in case:
        from tokenizers import ByteLevelBPETokenizer
        d = case["gpt2_tokenizer"]
        tok = ByteLevelBPETokenizer(os.path.join(d, "encoder.json"), os.path.join(d, "vocab.bpe"))
        return (lambda text: tok.encode(text).ids), tok.token_to_id("<|endoftext|>")
    tok = AutoTokenizer.from_pretrained(case["model"])
    return (lambda text: tok(text)["input_ids"]), tok.convert_tokens_to_ids("<|endoftext|>")


def stream_of(case):
    encode, eot = tokenizer_of(case)
    if "text" in case:
        with open(case["text"], encoding="utf-8", newline="") as f:
            return encode(f.read())
    ids = []
    with open(case["jsonl"], encoding="utf-8") as f:
        for line in f:
            if line.strip():
                text = json.loads(line)["text"]
                if text:
                    ids += encode(text) + [eot]
    return ids


def model_of(case):
    model = AutoModelForCausalLM.from_pretrained(case["model"], dtype=torch.float32, attn_implementation="eager")
    if "adapter" in case:
        try:
            import peft
        except ImportError:
            print("SKIP: the Python module peft is not importable (pip install peft)")
            sys.exit(0)
        model = peft.PeftModel.from_pretrained(model, case["adapter"])
    return model.eval()


def evaluate(case):
    T = case["seq"]
    ids = stream_of(case)
    n = len(ids) // T
    x = torch.tensor(ids[: n * T], dtype=torch.long).view(n, T)
    model = model_of(case)
    total, count = 0.0, 0
    with torch.no_grad():
        for i in range(0, n, 8):
            xb = x[i : i + 8]
            logits = model(xb).logits
            V = logits.shape[-1]
            # the sum, so batches of windows add up to the mean over all of them
            total += F.cross_entropy(logits[:, :-1].reshape(-1, V).double(), xb[:, 1:].reshape(-1),
                                     reduction="sum").item()
            count += xb[:, 1:].numel()
    return total / count, count, n


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__)
        sys.exit(2)
    with open(sys.argv[1]) as f:
        cases = json.load(f)
    for i, case in enumerate(cases):
        loss, tokens, windows = evaluate(case)
        print("case %d: loss=%.9f tokens=%d windows=%d" % (i, loss, tokens, windows))
