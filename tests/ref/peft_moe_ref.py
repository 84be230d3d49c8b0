#!/usr/bin/env python3
"""Reference side of ctrain's LoRA-on-experts test (tests/test_lora_moe_ref.c).

usage:
  peft_moe_ref.py FAMILY DIMS BASE ADAPTER TOKENS OUT PEFT_ADAPTER PEFT_OUT BASE_OUT TARGETS PARAMS R ALPHA
      FAMILY     qwen2_moe or mixtral (transformers 5: both hold an MoE layer's experts fused, as
                 mlp.experts.gate_up_proj [E, 2F', C] and down_proj [E, C, F'])
      DIMS       vocab,hidden,layers,heads,kv_heads,d_ff,experts,top_k,moe_d_ff,shared_d_ff,sparse_step,theta,eps
      BASE       ctrain's parameters (safetensors, ctrain's names: Qwen2-MoE's on-disk per-expert ones),
                 loaded into the transformers model by fusing each layer's experts
      ADAPTER    ctrain's PEFT folder: put on the model with peft.PeftModel.from_pretrained; the logits
                 of TOKENS (int32) go to OUT (fp32 [T, V]), the base's alone to BASE_OUT
      then an adapter made by peft itself: LoraConfig(target_modules=TARGETS, target_parameters=PARAMS,
      r=R, lora_alpha=ALPHA) (comma lists), lora_A and lora_B random, saved to PEFT_ADAPTER, its logits
      to PEFT_OUT.

Where torch, transformers or peft is not importable it prints "SKIP: ..." and exits 0.
"""
import struct
import sys

try:
    import torch
    import peft
    from safetensors.torch import load_file
    from transformers import MixtralConfig, MixtralForCausalLM, Qwen2MoeConfig, Qwen2MoeForCausalLM
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


def build(family, dims, base_path):
    V, C, L, H, KV, F, E, K, FM, FS, step = (int(x) for x in dims[:11])
    theta, eps = float(dims[11]), float(dims[12])
    sd = load_file(base_path)
    common = dict(vocab_size=V, hidden_size=C, num_hidden_layers=L, num_attention_heads=H, num_key_value_heads=KV,
                  rope_theta=theta, rms_norm_eps=eps, tie_word_embeddings=False, max_position_embeddings=64,
                  num_experts_per_tok=K, attn_implementation="eager")
    if family == "qwen2_moe":
        cfg = Qwen2MoeConfig(intermediate_size=F, moe_intermediate_size=FM, shared_expert_intermediate_size=FS,
                             num_experts=E, decoder_sparse_step=step, norm_topk_prob=False, mlp_only_layers=[],
                             output_router_logits=False,
                             qkv_bias=any(k.endswith("q_proj.bias") for k in sd), **common)
        model = Qwen2MoeForCausalLM(cfg)
    else:
        cfg = MixtralConfig(intermediate_size=FM, num_local_experts=E, output_router_logits=False, **common)
        model = MixtralForCausalLM(cfg)
    fused = {}
    for name in list(sd):
        parts = name.split(".")
        if "experts" in parts and parts[parts.index("experts") + 1].isdigit():
            i = parts.index("experts")
            prefix, e, proj = ".".join(parts[:i + 1]), int(parts[i + 1]), parts[i + 2]
            fused.setdefault(prefix, {}).setdefault(e, {})[proj] = sd.pop(name)
    for prefix, experts in fused.items():
        sd[prefix + ".gate_up_proj"] = torch.stack(
            [torch.cat([experts[e]["gate_proj"], experts[e]["up_proj"]], 0) for e in range(E)])
        sd[prefix + ".down_proj"] = torch.stack([experts[e]["down_proj"] for e in range(E)])
    missing, unexpected = model.load_state_dict(sd, strict=False)
    missing = [m for m in missing if "rotary" not in m]
    if missing or unexpected:
        sys.exit("the base does not fit %s: missing %s, unexpected %s" % (family, missing, unexpected))
    return model.float().eval()


def logits_of(model, tokens):
    with torch.no_grad():
        return model(input_ids=torch.tensor([tokens], dtype=torch.long)).logits[0]


def main():
    family, dims, base_path, adapter, tokens_path, out, peft_adapter, peft_out, base_out = sys.argv[1:10]
    targets, params, r, alpha = sys.argv[10], sys.argv[11], int(sys.argv[12]), float(sys.argv[13])
    dims = dims.split(",")
    tokens = read_ints(tokens_path)
    write_floats(base_out, logits_of(build(family, dims, base_path), tokens))

    model = peft.PeftModel.from_pretrained(build(family, dims, base_path), adapter).eval()
    wrappers = sum(1 for _, mod in model.named_modules() if type(mod).__name__ == "ParamWrapper")
    if wrappers == 0:
        sys.exit("peft put no ParamWrapper on the experts from %s" % adapter)
    write_floats(out, logits_of(model, tokens))

    torch.manual_seed(99)
    config = peft.LoraConfig(r=r, lora_alpha=alpha, target_modules=[t for t in targets.split(",") if t] or None,
                             target_parameters=params.split(","), lora_dropout=0.0, bias="none", task_type="CAUSAL_LM")
    model = peft.get_peft_model(build(family, dims, base_path), config)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn_like(p) * 0.3)
            elif "lora_A" in name:
                p.copy_(torch.randn_like(p) * 0.3)
    model.eval()
    model.save_pretrained(peft_adapter)
    write_floats(peft_out, logits_of(model, tokens))


if __name__ == "__main__":
    main()
