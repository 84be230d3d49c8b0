#!/usr/bin/env python3
"""Reference side of ctrain's Hugging Face interop test (tests/test_hf_ref.c).

usage:
  hf_interop_ref.py make DIR ARCH [DTYPE] [shard]
      ARCH: gpt2 | llama | llama-tied; DTYPE: float32 (default) | bfloat16 | float16.
      Saves a small randomly initialised transformers model to DIR with save_pretrained
      (safetensors; `shard` splits it into shards with an index) and a byte-level BPE tokenizer
      of V tokens trained with `tokenizers` (saved by transformers), then writes DIR/tokens.bin
      (int32), DIR/logits.bin (float32 [T, V]): the logits transformers computes in fp32 for
      those tokens, from the saved folder as loaded back, and DIR/sample_ids.bin: the tokenizer's
      ids for SAMPLE_TEXT.
  hf_interop_ref.py logits DIR TOKENS OUT
      Loads DIR with AutoModelForCausalLM.from_pretrained (and AutoTokenizer when DIR has a
      tokenizer.json, checking that it encodes and decodes) and writes the fp32 logits of the
      int32 tokens in TOKENS to OUT.

Where torch or transformers is not importable it prints "SKIP: ..." and exits 0, so the C test
skips with the reason.
"""
import os
import struct
import sys

try:
    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer
except ImportError as e:
    print("SKIP: the Python module %s is not importable (pip install torch transformers)" % e.name)
    sys.exit(0)

T = 12
V = 300
SAMPLE_TEXT = "hello the world, the quick brown fox!"


def save_tokenizer(dir_path):
    from tokenizers import ByteLevelBPETokenizer
    from transformers import PreTrainedTokenizerFast
    corpus = ["the quick brown fox jumps over the lazy dog. " * 20, "hello world, hello there; the end."]
    tok = ByteLevelBPETokenizer()
    tok.train_from_iterator(corpus, vocab_size=V, min_frequency=1, special_tokens=["<|endoftext|>"],
                            show_progress=False)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok._tokenizer, eos_token="<|endoftext|>",
                                   bos_token="<|endoftext|>")
    fast.save_pretrained(dir_path)
    ids = fast.encode(SAMPLE_TEXT, add_special_tokens=False)
    with open(os.path.join(dir_path, "sample_ids.bin"), "wb") as f:
        f.write(struct.pack("<%di" % len(ids), *ids))


def write_floats(path, t):
    values = t.detach().to(torch.float32).contiguous().flatten().tolist()
    with open(path, "wb") as f:
        f.write(struct.pack("<%df" % len(values), *values))


def read_ints(path):
    data = open(path, "rb").read()
    return list(struct.unpack("<%di" % (len(data) // 4), data))


def load(dir_path):
    model = AutoModelForCausalLM.from_pretrained(dir_path, torch_dtype=torch.float32, attn_implementation="eager")
    return model.eval()


def logits_of(model, tokens):
    with torch.no_grad():
        return model(torch.tensor([tokens], dtype=torch.long)).logits[0]


def make(dir_path, arch, dtype="float32", shard=False):
    torch.manual_seed(1234)
    if arch == "gpt2":
        config = transformers.GPT2Config(vocab_size=V, n_positions=64, n_embd=64, n_layer=2, n_head=4,
                                         activation_function="gelu_new", resid_pdrop=0.0, embd_pdrop=0.0,
                                         attn_pdrop=0.0, layer_norm_epsilon=1e-5)
        model = transformers.GPT2LMHeadModel(config)
    else:
        config = transformers.LlamaConfig(vocab_size=V, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                                          num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                                          rms_norm_eps=1e-5, rope_theta=10000.0,
                                          tie_word_embeddings=(arch == "llama-tied"))
        model = transformers.LlamaForCausalLM(config)
    # larger weights than the default init (std 0.02), so that every layer shapes the logits
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() >= 2:
                p.normal_(0.0, 0.15)
            elif "bias" in name:
                p.normal_(0.0, 0.1)
            else:
                p.uniform_(0.5, 1.5)
    model = model.to(getattr(torch, dtype))
    model.save_pretrained(dir_path, safe_serialization=True, max_shard_size="40KB" if shard else "5GB")
    save_tokenizer(dir_path)
    tokens = torch.randint(0, V, (T,), generator=torch.Generator().manual_seed(5)).tolist()
    with open(os.path.join(dir_path, "tokens.bin"), "wb") as f:
        f.write(struct.pack("<%di" % T, *tokens))
    write_floats(os.path.join(dir_path, "logits.bin"), logits_of(load(dir_path), tokens))
    print("made %s (%s, %s%s)" % (dir_path, arch, dtype, ", sharded" if shard else ""))


def logits(dir_path, tokens_path, out_path):
    model = load(dir_path)
    if os.path.exists(os.path.join(dir_path, "tokenizer.json")):
        tok = AutoTokenizer.from_pretrained(dir_path)
        text = "hello the world"
        ids = tok.encode(text, add_special_tokens=False)
        if tok.decode(ids) != text:
            print("tokenizer does not round-trip: %r -> %r" % (text, tok.decode(ids)))
            sys.exit(1)
        print("tokenizer: %s, %r -> %s, eos %r" % (type(tok).__name__, text, ids, tok.eos_token))
    write_floats(out_path, logits_of(model, read_ints(tokens_path)))
    print("logits of %s written" % dir_path)


if __name__ == "__main__":
    if len(sys.argv) >= 4 and sys.argv[1] == "make":
        make(sys.argv[2], sys.argv[3], sys.argv[4] if len(sys.argv) > 4 else "float32", "shard" in sys.argv[5:])
    elif len(sys.argv) == 5 and sys.argv[1] == "logits":
        logits(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        print(__doc__)
        sys.exit(2)
