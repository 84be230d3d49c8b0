#!/usr/bin/env python3
"""transformers' RoPE frequency tables, for tests/test_rope_scaling.c.

usage: rope_scaling_ref.py CASES OUT

CASES: one case a line, "type theta head_dim max_position seq_len key=value ...", the keys
those of rope_parameters (factor, original_max_position_embeddings, low_freq_factor, ...).
For each case OUT gets one line: the attention factor, then inv_freq (float32, %.9g) as
transformers computes them: ROPE_INIT_FUNCTIONS[type] (the default type: the rotary
embedding's compute_default_rope_parameters) on a LlamaConfig with these rope_parameters,
called with seq_len as dynamic_rope_update calls it for a pass of that length.

Exit status: 0, or 77 when torch or transformers is not importable (the test then skips).
"""
import sys
import warnings

try:
    warnings.filterwarnings("ignore")
    import torch
    from transformers import LlamaConfig
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS
    from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding
    from transformers.utils import logging
except ImportError as e:
    print(f"SKIP: torch/transformers not importable ({e})")
    sys.exit(77)

logging.set_verbosity_error()


def value(text):
    if text in ("true", "false"):
        return text == "true"
    return int(text) if text.lstrip("-").isdigit() else float(text)


def main():
    cases, out = sys.argv[1], sys.argv[2]
    lines = []
    for line in open(cases):
        words = line.split()
        if not words:
            continue
        rope_type, theta, head_dim, max_position, seq_len = words[0], float(words[1]), int(words[2]), int(words[3]), int(words[4])
        params = {"rope_type": rope_type, "rope_theta": theta}
        for kv in words[5:]:
            k, v = kv.split("=")
            params[k] = value(v)
        config = LlamaConfig(hidden_size=head_dim * 4, num_attention_heads=4, num_key_value_heads=4, head_dim=head_dim,
                             max_position_embeddings=max_position, rope_parameters=params)
        if rope_type == "default":
            inv_freq, factor = LlamaRotaryEmbedding.compute_default_rope_parameters(config)
        else:
            # as dynamic_rope_update passes it: torch.max(position_ids) + 1, an int64 tensor
            inv_freq, factor = ROPE_INIT_FUNCTIONS[rope_type](config, "cpu", seq_len=torch.tensor(seq_len))
        lines.append(" ".join(["%.9g" % float(factor)] + ["%.9g" % x for x in inv_freq.float().tolist()]))
    with open(out, "w") as f:
        f.write("\n".join(lines) + "\n")


main()
