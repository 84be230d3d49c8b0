#!/usr/bin/env python3
"""Reference side of the `import hf` journey (tests/test_hf_journey.c): tiny random models saved
by the installed transformers in its own config shape, with a real-size tokenizer.

usage:
  hf_journey_ref.py make DIR KIND GPT2_TOKENIZER_DIR
      KIND: llama-rope      LlamaForCausalLM, rope_parameters {rope_theta: 500000} (as Llama 3
                            writes it), grouped-query heads (4 query heads, 2 key/value heads)
            llama-tied-head LlamaForCausalLM with tie_word_embeddings: true and a separately saved
                            lm_head.weight that differs from the embedding
            gpt2            GPT2LMHeadModel
      Saves the model with save_pretrained (safetensors) and GPT-2's tokenizer (encoder.json +
      vocab.bpe from GPT2_TOKENIZER_DIR, 50257 ids, converted by `tokenizers` and saved by
      transformers' PreTrainedTokenizerFast), loads the folder back with AutoModelForCausalLM and
      AutoTokenizer, and writes:
        DIR/ref/tokens.bin       int32 [T] random ids
        DIR/ref/logits.bin       float32 [T, V]: transformers' fp32 logits of those ids
        DIR/ref/prompt_ids.bin   int32: AutoTokenizer's ids of PROMPT
        DIR/ref/greedy_ids.bin   int32: model.generate(do_sample=False) after the prompt, without
                                 the end-of-text token that stopped it (if any)
        DIR/ref/greedy.txt       the bytes those ids decode to (byte-level, exact)
      and prints what it checked of the config shape (rope_parameters, tie_word_embeddings).
      With llama-rope it also saves the same model with scaled RoPE, as transformers writes
      Llama 3.1 (rope_type llama3) and a linear scaling, to DIR-llama3 and DIR-linear: ctrain
      imports both, and refuses them once the test renames their type to one it does not compute.

Where torch or transformers is not importable it prints "SKIP: ..." and exits 0.
"""
import json
import os
import struct
import sys

try:
    import torch
    import transformers
    from safetensors.torch import load_file, save_file
    from tokenizers import ByteLevelBPETokenizer
    from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedTokenizerFast
except ImportError as e:
    print("SKIP: the Python module %s is not importable (pip install torch transformers tokenizers)" % e.name)
    sys.exit(0)

T = 32
V = 50257
EOT = 50256
NEW_TOKENS = 24
PROMPT = "hello the world, the quick brown fox"


def byte_decoder():
    """GPT-2's byte-level alphabet, reversed: the character of each byte -> the byte."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("\xa1"), ord("\xac") + 1)) + \
        list(range(ord("\xae"), ord("\xff") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(bs, cs)}


def save_tokenizer(dir_path, gpt2_dir):
    tok = ByteLevelBPETokenizer(os.path.join(gpt2_dir, "encoder.json"), os.path.join(gpt2_dir, "vocab.bpe"))
    tok.add_special_tokens(["<|endoftext|>"])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok._tokenizer, eos_token="<|endoftext|>",
                                   bos_token="<|endoftext|>", unk_token="<|endoftext|>")
    fast.save_pretrained(dir_path)


def write(path, fmt, values):
    with open(path, "wb") as f:
        f.write(struct.pack("<%d%s" % (len(values), fmt), *values))


def randomize(model):
    # larger weights than the default init (std 0.02), so that every layer shapes the logits
    torch.manual_seed(1234)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() >= 2:
                p.normal_(0.0, 0.15)
            elif "bias" in name:
                p.normal_(0.0, 0.1)
            else:
                p.uniform_(0.5, 1.5)


def build(kind):
    common = dict(vocab_size=V, bos_token_id=EOT, eos_token_id=EOT)
    if kind == "gpt2":
        config = transformers.GPT2Config(n_positions=128, n_embd=64, n_layer=2, n_head=4, resid_pdrop=0.0,
                                         embd_pdrop=0.0, attn_pdrop=0.0, **common)
        return transformers.GPT2LMHeadModel(config)
    rope = {"rope_type": "default", "rope_theta": 500000.0 if kind == "llama-rope" else 100000.0}
    config = transformers.LlamaConfig(hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
                                      num_key_value_heads=2, max_position_embeddings=128, rms_norm_eps=1e-5,
                                      rope_parameters=rope, tie_word_embeddings=(kind == "llama-tied-head"), **common)
    return transformers.LlamaForCausalLM(config)


def save_scaled_rope(dir_path, rope):
    model = build("llama-rope")
    model.config.rope_parameters = dict(model.config.rope_parameters, **rope)
    model.save_pretrained(dir_path, safe_serialization=True)
    written = json.load(open(os.path.join(dir_path, "config.json")))["rope_parameters"]
    print("%s: rope_parameters %s" % (os.path.basename(dir_path), written))


def make(dir_path, kind, gpt2_dir):
    model = build(kind)
    randomize(model)
    model.save_pretrained(dir_path, safe_serialization=True)
    if kind == "llama-tied-head":
        # a head saved beside the tied embedding, with other values
        weights = load_file(os.path.join(dir_path, "model.safetensors"))
        weights["lm_head.weight"] = torch.randn(V, 64, generator=torch.Generator().manual_seed(9)) * 0.15
        save_file(weights, os.path.join(dir_path, "model.safetensors"), metadata={"format": "pt"})
    save_tokenizer(dir_path, gpt2_dir)

    config = json.load(open(os.path.join(dir_path, "config.json")))
    if kind.startswith("llama"):
        rope = config.get("rope_parameters")
        if not isinstance(rope, dict) or "rope_theta" not in rope or "rope_theta" in config:
            print("transformers %s wrote RoPE as %r (top-level rope_theta %r): not the rope_parameters shape this "
                  "journey is about" % (transformers.__version__, rope, config.get("rope_theta")))
            sys.exit(1)
    print("transformers %s config.json: model_type %s, rope_parameters %s, tie_word_embeddings %s" %
          (transformers.__version__, config["model_type"], config.get("rope_parameters"),
           config.get("tie_word_embeddings")))

    if kind == "llama-rope":
        save_scaled_rope(dir_path + "-llama3", {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                                "high_freq_factor": 4.0, "original_max_position_embeddings": 64})
        save_scaled_rope(dir_path + "-linear", {"rope_type": "linear", "factor": 2.0})

    model = AutoModelForCausalLM.from_pretrained(dir_path, dtype=torch.float32, attn_implementation="eager").eval()
    tok = AutoTokenizer.from_pretrained(dir_path)
    emb = model.get_input_embeddings().weight
    print("loaded: lm_head %s the embedding" % ("is" if model.lm_head.weight is emb else "is not"))
    ref = os.path.join(dir_path, "ref")
    os.makedirs(ref, exist_ok=True)
    tokens = torch.randint(0, V, (T,), generator=torch.Generator().manual_seed(5)).tolist()
    write(os.path.join(ref, "tokens.bin"), "i", tokens)
    with torch.no_grad():
        logits = model(torch.tensor([tokens])).logits[0]
    write(os.path.join(ref, "logits.bin"), "f", logits.flatten().tolist())

    prompt_ids = tok.encode(PROMPT, add_special_tokens=False)
    write(os.path.join(ref, "prompt_ids.bin"), "i", prompt_ids)
    with torch.no_grad():
        out = model.generate(torch.tensor([prompt_ids]), attention_mask=torch.ones(1, len(prompt_ids), dtype=torch.long),
                             do_sample=False, max_new_tokens=NEW_TOKENS, eos_token_id=EOT, pad_token_id=EOT)
    greedy = out[0, len(prompt_ids):].tolist()
    if EOT in greedy:
        greedy = greedy[:greedy.index(EOT)]
    write(os.path.join(ref, "greedy_ids.bin"), "i", greedy)
    decode = byte_decoder()
    text = b"".join(bytes(decode[ch] for ch in piece) for piece in tok.convert_ids_to_tokens(greedy))
    with open(os.path.join(ref, "greedy.txt"), "wb") as f:
        f.write(text)
    print("made %s (%s): prompt %d ids, %d greedy tokens" % (dir_path, kind, len(prompt_ids), len(greedy)))


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "make":
        make(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        print(__doc__)
        sys.exit(2)
