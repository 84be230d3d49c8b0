#!/usr/bin/env python3
"""Reference side of ctrain's interop with the Mixture-of-Experts families (tests/test_hf_moe_ref.c).

usage:
  hf_moe_ref.py make DIR VARIANT
      VARIANT: mixtral | qwen2_moe | qwen3_moe | olmoe, or one of them with "-fused"
      Saves a tiny randomly initialised model of the family to DIR with save_pretrained (which
      writes the experts one tensor per projection, under the hub checkpoints' names) and the
      byte-level BPE tokenizer of hf_families_ref.py, then writes from the folder as transformers
      loads it back the files hf_families_ref.py's `make` writes (tokens.bin, logits.bin,
      sample.txt, eval.txt, prompt_ids.bin, greedy.bin, greedy_all.bin).
      "-fused": model.safetensors is then rewritten in transformers 5's in-memory form (each
      layer's experts as the 3-D mlp.experts.gate_up_proj [E, 2F, C] and mlp.experts.down_proj
      [E, C, F]; Mixtral's router as mlp.gate.weight), after checking that transformers loads
      that form with the same logits.
      DIR/layout.txt lists the saved tensors' names and shapes (for the test's messages).
  hf_moe_ref.py logits TOKENS OUT_PREFIX DIR...
      As hf_families_ref.py's: the fp32 logits of the int32 TOKENS under each DIR.
  hf_moe_ref.py reload DIR TOKENS SAMPLE OUT_PREFIX
      transformers on a folder ctrain exported: the fp32 logits of the int32 TOKENS to
      OUT_PREFIX.bin, and the mean loss over the windows of the text SAMPLE, tokenized by DIR's
      tokenizer, to OUT_PREFIX.txt (eval.txt's form).

The models: 4 layers of 64 channels; Mixtral 4 experts (top 2, every layer, window 7: the
sliding window matters over 24 tokens), Qwen2-MoE 6 experts (top 2, softmax weights not
renormalised) with a 2-expert-wide gated shared expert on every second layer (decoder_sparse_step
2: layers 0 and 2 are dense), Qwen3-MoE 8 experts (top 2, norm_topk_prob: renormalised) with
per-head q/k norms and head_dim 24, OLMoE 8 experts (top 2) with q/k norms over the whole
projections. Where torch or transformers is not importable it prints "SKIP: ..." and exits 0.
"""
import os
import sys

try:
    import torch
    import transformers
    from safetensors.torch import load_file, save_file
    from transformers import AutoModelForCausalLM
except ImportError as e:
    print("SKIP: the Python module %s is not importable (pip install torch transformers safetensors)" % e.name)
    sys.exit(0)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hf_families_ref as fam  # noqa: E402 (the same files and measurements as the dense families)
from hf_interop_ref import save_tokenizer, V  # noqa: E402

SIZES = dict(vocab_size=V, hidden_size=64, num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2,
             max_position_embeddings=64, rms_norm_eps=1e-5)


def config_of(variant, eot):
    ids = dict(bos_token_id=eot, eos_token_id=eot, pad_token_id=eot)
    if variant == "mixtral":
        return transformers.MixtralConfig(**SIZES, **ids, intermediate_size=48, num_local_experts=4,
                                          num_experts_per_tok=2, sliding_window=7)
    if variant == "qwen2_moe":
        return transformers.Qwen2MoeConfig(**SIZES, **ids, intermediate_size=96, moe_intermediate_size=32,
                                           shared_expert_intermediate_size=64, num_experts=6, num_experts_per_tok=2,
                                           decoder_sparse_step=2, norm_topk_prob=False)
    if variant == "qwen3_moe":
        return transformers.Qwen3MoeConfig(**SIZES, **ids, intermediate_size=96, moe_intermediate_size=32,
                                           num_experts=8, num_experts_per_tok=2, norm_topk_prob=True, head_dim=24)
    if variant == "olmoe":
        sizes = dict(SIZES, num_key_value_heads=4)  # ctrain's whole-projection q/k norms need as many kv heads
        return transformers.OlmoeConfig(**sizes, **ids, intermediate_size=32, num_experts=8, num_experts_per_tok=2)
    raise SystemExit("unknown variant " + variant)


def fuse(dir_path, model, tokens, want):
    """Rewrites DIR's weights in transformers' in-memory names (the fused experts) and checks that
    transformers loads them with the same logits."""
    path = os.path.join(dir_path, "model.safetensors")
    saved = load_file(path)
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    if len(state) >= len(saved):
        raise SystemExit("the in-memory form has %d tensors, the saved one %d: nothing is fused" % (len(state), len(saved)))
    if not any(k.endswith("experts.gate_up_proj") for k in state):
        raise SystemExit("transformers %s no longer holds fused experts in memory" % transformers.__version__)
    save_file(state, path, metadata={"format": "pt"})
    got = fam.logits_of(fam.load(dir_path), tokens)
    # equal up to rounding: the experts of the two loads may take other summation orders (measured:
    # Mixtral's identical, Qwen3-MoE's 1.7e-6 apart)
    err = ((got - want).abs().max() / want.abs().max()).item()
    if err > 1e-6:
        raise SystemExit("transformers loads the fused form with other logits (%g relative)" % err)


def make(dir_path, variant):
    fused = variant.endswith("-fused")
    family = variant[: -len("-fused")] if fused else variant
    torch.manual_seed(1234)
    save_tokenizer(dir_path)
    tok = transformers.AutoTokenizer.from_pretrained(dir_path)
    eot = tok.convert_tokens_to_ids("<|endoftext|>")
    model = AutoModelForCausalLM.from_config(config_of(family, eot), dtype=torch.float32)
    fam.randomize(model, False)
    model.save_pretrained(dir_path)
    model = fam.load(dir_path)
    tokens = torch.randint(0, V, (fam.T,), generator=torch.Generator().manual_seed(5)).tolist()
    logits = fam.logits_of(model, tokens)
    if fused:
        fuse(dir_path, model, tokens, logits)
    with open(os.path.join(dir_path, "layout.txt"), "w") as f:
        for name, t in sorted(load_file(os.path.join(dir_path, "model.safetensors")).items()):
            f.write("%s %s\n" % (name, list(t.shape)))
    fam.write_ints(os.path.join(dir_path, "tokens.bin"), tokens)
    fam.write_floats(os.path.join(dir_path, "logits.bin"), logits)
    with open(os.path.join(dir_path, "sample.txt"), "w") as f:
        f.write(fam.SAMPLE)
    loss, n_tokens, windows = fam.mean_loss(model, tok(fam.SAMPLE)["input_ids"])
    with open(os.path.join(dir_path, "eval.txt"), "w") as f:
        f.write("loss=%.12f tokens=%d windows=%d\n" % (loss, n_tokens, windows))
    prompt = tok(fam.PROMPT, add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        out = model.generate(torch.tensor([prompt]), max_new_tokens=fam.GEN, do_sample=False,
                             pad_token_id=eot)[0, len(prompt):].tolist()
    if out and out[-1] == eot:
        out = out[:-1]
    model.generation_config.eos_token_id = None
    with torch.no_grad():
        all_out = model.generate(torch.tensor([prompt]), max_new_tokens=fam.GEN, min_new_tokens=fam.GEN,
                                 do_sample=False, eos_token_id=None, pad_token_id=eot)[0, len(prompt):].tolist()
    fam.write_ints(os.path.join(dir_path, "prompt_ids.bin"), prompt)
    fam.write_ints(os.path.join(dir_path, "greedy.bin"), out)
    fam.write_ints(os.path.join(dir_path, "greedy_all.bin"), all_out)
    print("made %s (%s): loss %.6f over %d tokens, %d generated" % (dir_path, variant, loss, n_tokens, len(out)))


def reload(dir_path, tokens_path, sample_path, out_prefix):
    model = fam.load(dir_path)
    fam.write_floats(out_prefix + ".bin", fam.logits_of(model, fam.read_ints(tokens_path)))
    tok = transformers.AutoTokenizer.from_pretrained(dir_path)
    loss, n_tokens, windows = fam.mean_loss(model, tok(open(sample_path).read())["input_ids"])
    with open(out_prefix + ".txt", "w") as f:
        f.write("loss=%.12f tokens=%d windows=%d\n" % (loss, n_tokens, windows))
    print("%s: loss %.6f over %d tokens" % (dir_path, loss, n_tokens))


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "make":
        make(sys.argv[2], sys.argv[3])
    elif len(sys.argv) >= 5 and sys.argv[1] == "logits":
        fam.logits(sys.argv[2], sys.argv[3], sys.argv[4:])
    elif len(sys.argv) == 6 and sys.argv[1] == "reload":
        reload(*sys.argv[2:])
    else:
        print(__doc__)
        sys.exit(2)
