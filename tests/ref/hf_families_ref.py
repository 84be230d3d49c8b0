#!/usr/bin/env python3
"""Reference side of ctrain's interop with the llama-architecture families (tests/test_hf_families_ref.c).

usage:
  hf_families_ref.py make DIR VARIANT
      VARIANT: llama3 | llama3-v4 | llama-yarn | llama-linear | llama-dynamic | mistral | qwen2 | qwen3 |
               gemma2 | gemma3 | phi3
      Saves a tiny randomly initialised model of the family to DIR with save_pretrained (llama3-v4:
      config.json then rewritten in transformers 4's shape, top-level rope_theta + rope_scaling)
      and a byte-level BPE tokenizer trained with `tokenizers`, then writes, from the folder as
      transformers loads it back (fp32, eager attention):
        DIR/tokens.bin     T int32 tokens,        DIR/logits.bin  their logits [T, V] (fp32)
        DIR/sample.txt     a text,                DIR/eval.txt    "loss=L tokens=N windows=W": the mean
                           cross-entropy over windows of SEQ tokens of its ids (eval_ref.py's way)
        DIR/prompt_ids.bin the ids of PROMPT,     DIR/greedy.bin  GEN greedy tokens after it (model.generate,
                           stopping at the model's eos ids, the stop token left out),
                           DIR/greedy_all.bin GEN greedy tokens past any eos id
  hf_families_ref.py logits TOKENS OUT_PREFIX DIR[+ADAPTER]...
      For the i-th DIR: loads it (with the PEFT adapter folder ADAPTER on it, when given) and
      writes the fp32 logits of the int32 TOKENS to OUT_PREFIX<i>.bin.

The windows and the tokens are longer than the sliding windows of the models (Mistral 5, Gemma 2
6, Gemma 3 6, Phi-3 7), so the windows matter. Where torch or transformers is not importable it
prints "SKIP: ..." and exits 0, so the C test skips with the reason.
"""
import json
import os
import struct
import sys

try:
    import torch
    import torch.nn.functional as F
    import transformers
    from transformers import AutoModelForCausalLM
except ImportError as e:
    print("SKIP: the Python module %s is not importable (pip install torch transformers)" % e.name)
    sys.exit(0)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hf_interop_ref import save_tokenizer, V  # noqa: E402 (the same tokenizer as the GPT-2/LLaMA interop test)

T = 24
SEQ = 16
GEN = 40
PROMPT = "hello the world, the quick"
SAMPLE = ("the quick brown fox jumps over the lazy dog. hello world, hello there; the end. "
          "the dog sleeps while the fox runs over the hill and the world turns; hello again, the end of the tale. "
          "then the quick fox came back to the lazy dog, and the two of them watched the world go by.")

SIZES = dict(vocab_size=V, hidden_size=64, intermediate_size=96, num_hidden_layers=4, num_attention_heads=4,
             num_key_value_heads=2, max_position_embeddings=64, rms_norm_eps=1e-5)


def config_of(variant, eot):
    ids = dict(bos_token_id=eot, eos_token_id=eot)
    if variant.startswith("llama"):
        rope = {"llama3": {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 4.0, "low_freq_factor": 1.0,
                           "high_freq_factor": 4.0, "original_max_position_embeddings": 16},
                "llama-yarn": {"rope_type": "yarn", "rope_theta": 10000.0, "factor": 4.0,
                               "original_max_position_embeddings": 16},
                "llama-linear": {"rope_type": "linear", "rope_theta": 10000.0, "factor": 4.0},
                "llama-dynamic": {"rope_type": "dynamic", "rope_theta": 10000.0, "factor": 2.0}}
        rope["llama3-v4"] = rope["llama3"]
        # Llama 3 Instruct ends at several ids: the end of text and another one
        if variant.startswith("llama3"):
            ids["eos_token_id"] = [eot, 7]
        return transformers.LlamaConfig(**SIZES, **ids, rope_parameters=dict(rope[variant]))
    if variant == "mistral":
        return transformers.MistralConfig(**SIZES, **ids, sliding_window=5)
    if variant == "qwen2":
        return transformers.Qwen2Config(**SIZES, **ids, rope_parameters={"rope_type": "default", "rope_theta": 1e6})
    if variant == "qwen3":
        return transformers.Qwen3Config(**SIZES, **ids, head_dim=24)
    if variant == "gemma2":
        return transformers.Gemma2Config(**SIZES, **ids, pad_token_id=0, head_dim=16, sliding_window=6,
                                         query_pre_attn_scalar=20, attn_logit_softcapping=5.0,
                                         final_logit_softcapping=3.0)
    if variant == "gemma3":
        rope = {"full_attention": {"rope_type": "linear", "factor": 2.0, "rope_theta": 1e6},
                "sliding_attention": {"rope_type": "default", "rope_theta": 1e4}}
        return transformers.Gemma3TextConfig(**SIZES, **ids, pad_token_id=0, head_dim=24, sliding_window=6,
                                             sliding_window_pattern=2, query_pre_attn_scalar=24,
                                             rope_parameters=rope)
    if variant == "phi3":
        return transformers.Phi3Config(**SIZES, **ids, pad_token_id=eot, sliding_window=7)
    if variant == "qwen2-real":
        # Qwen2.5-0.5B's widths and vocabulary (896 channels, 14 query heads over 2, 4864-wide MLP,
        # 151936 ids, tied head), two of its 24 layers
        return transformers.Qwen2Config(vocab_size=151936, hidden_size=896, intermediate_size=4864,
                                        num_hidden_layers=2, num_attention_heads=14, num_key_value_heads=2,
                                        max_position_embeddings=32768, rms_norm_eps=1e-6,
                                        tie_word_embeddings=True, **ids,
                                        rope_parameters={"rope_type": "default", "rope_theta": 1e6})
    if variant == "gemma2-real":
        # Gemma 2 2B's widths and vocabulary (2304 channels, 8 query heads of 256 over 4, 9216-wide
        # MLP, 256000 ids, soft-caps 50 and 30, window 4096), two of its 26 layers
        return transformers.Gemma2Config(vocab_size=256000, hidden_size=2304, intermediate_size=9216,
                                         num_hidden_layers=2, num_attention_heads=8, num_key_value_heads=4,
                                         head_dim=256, max_position_embeddings=8192, rms_norm_eps=1e-6,
                                         query_pre_attn_scalar=256, sliding_window=4096,
                                         attn_logit_softcapping=50.0, final_logit_softcapping=30.0,
                                         pad_token_id=0, **ids)
    raise SystemExit("unknown variant " + variant)


def randomize(model, gemma, std=0.15):
    # larger weights than the default init, so that every layer shapes the logits (at a real width
    # the initializer's 0.02 does that already); Gemma's norms are 1 + w, so w is drawn around 0
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() >= 2:
                p.normal_(0.0, std)
            elif "bias" in name:
                p.normal_(0.0, 0.1)
            elif gemma:
                p.uniform_(-0.5, 0.5)
            else:
                p.uniform_(0.5, 1.5)


def to_v4_shape(dir_path):
    path = os.path.join(dir_path, "config.json")
    config = json.load(open(path))
    rope = config.pop("rope_parameters")
    config["rope_theta"] = rope.pop("rope_theta")
    config["rope_scaling"] = rope
    json.dump(config, open(path, "w"), indent=2)


def write_ints(path, values):
    with open(path, "wb") as f:
        f.write(struct.pack("<%di" % len(values), *values))


def write_floats(path, t):
    values = t.detach().to(torch.float32).contiguous().flatten().tolist()
    with open(path, "wb") as f:
        f.write(struct.pack("<%df" % len(values), *values))


def read_ints(path):
    data = open(path, "rb").read()
    return list(struct.unpack("<%di" % (len(data) // 4), data))


def load(dir_path, adapter=None):
    model = AutoModelForCausalLM.from_pretrained(dir_path, dtype=torch.float32, attn_implementation="eager")
    if adapter:
        import peft
        model = peft.PeftModel.from_pretrained(model, adapter)
    return model.eval()


def logits_of(model, tokens):
    with torch.no_grad():
        return model(torch.tensor([tokens], dtype=torch.long)).logits[0]


def mean_loss(model, ids):
    n = len(ids) // SEQ
    x = torch.tensor(ids[: n * SEQ], dtype=torch.long).view(n, SEQ)
    with torch.no_grad():
        logits = model(x).logits
        total = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]).double(), x[:, 1:].reshape(-1),
                                reduction="sum").item()
    return total / x[:, 1:].numel(), x[:, 1:].numel(), n


def make(dir_path, variant):
    torch.manual_seed(1234)
    save_tokenizer(dir_path)
    tok = transformers.AutoTokenizer.from_pretrained(dir_path)
    eot = tok.convert_tokens_to_ids("<|endoftext|>")
    model = AutoModelForCausalLM.from_config(config_of(variant, eot), dtype=torch.float32)
    randomize(model, variant.startswith("gemma"), 0.02 if variant.endswith("-real") else 0.15)
    model.save_pretrained(dir_path)
    if variant == "llama3-v4":
        to_v4_shape(dir_path)
    model = load(dir_path)
    tokens = torch.randint(0, V, (T,), generator=torch.Generator().manual_seed(5)).tolist()
    write_ints(os.path.join(dir_path, "tokens.bin"), tokens)
    write_floats(os.path.join(dir_path, "logits.bin"), logits_of(model, tokens))
    with open(os.path.join(dir_path, "sample.txt"), "w") as f:
        f.write(SAMPLE)
    loss, n_tokens, windows = mean_loss(model, tok(SAMPLE)["input_ids"])
    with open(os.path.join(dir_path, "eval.txt"), "w") as f:
        f.write("loss=%.12f tokens=%d windows=%d\n" % (loss, n_tokens, windows))
    prompt = tok(PROMPT, add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        out = model.generate(torch.tensor([prompt]), max_new_tokens=GEN, do_sample=False,
                             pad_token_id=eot)[0, len(prompt):].tolist()
    eos = model.generation_config.eos_token_id
    eos = eos if isinstance(eos, list) else [eos]
    if out and out[-1] in eos:
        out = out[:-1]
    # and GEN tokens whatever they are: the same greedy decoding past any eos id
    model.generation_config.eos_token_id = None
    with torch.no_grad():
        all_out = model.generate(torch.tensor([prompt]), max_new_tokens=GEN, min_new_tokens=GEN, do_sample=False,
                                 eos_token_id=None, pad_token_id=eot)[0, len(prompt):].tolist()
    write_ints(os.path.join(dir_path, "prompt_ids.bin"), prompt)
    write_ints(os.path.join(dir_path, "greedy.bin"), out)
    write_ints(os.path.join(dir_path, "greedy_all.bin"), all_out)
    print("made %s (%s): loss %.6f over %d tokens, %d generated" % (dir_path, variant, loss, n_tokens, len(out)))


def logits(tokens_path, out_prefix, dirs):
    tokens = read_ints(tokens_path)
    for i, spec in enumerate(dirs):
        dir_path, _, adapter = spec.partition("+")
        write_floats("%s%d.bin" % (out_prefix, i), logits_of(load(dir_path, adapter or None), tokens))
    print("logits of %d models written" % len(dirs))


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "make":
        make(sys.argv[2], sys.argv[3])
    elif len(sys.argv) >= 5 and sys.argv[1] == "logits":
        logits(sys.argv[2], sys.argv[3], sys.argv[4:])
    else:
        print(__doc__)
        sys.exit(2)
