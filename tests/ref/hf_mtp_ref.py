#!/usr/bin/env python3
"""Reference side of tests/test_hf_mtp_ref.c: transformers loads ctrain's `export hf --keep-mtp`.

usage:
  hf_mtp_ref.py logits DIR TOKENS OUT LAYERS DEPTH
      Loads DIR with AutoModelForCausalLM.from_pretrained(output_loading_info=True) and checks that
      nothing the model needs is missing, that the tensors it did not take are exactly the DEPTH
      multi-token prediction modules' (layers LAYERS..LAYERS+DEPTH-1, DeepSeek-V3's layout), that
      the config keeps num_hidden_layers = LAYERS and num_nextn_predict_layers = DEPTH; then writes
      the fp32 logits of the int32 tokens in TOKENS to OUT.

Where torch or transformers is not importable it prints "SKIP: ..." and exits 0.
"""
import re
import struct
import sys

try:
    import torch
    from transformers import AutoModelForCausalLM
except ImportError as e:
    print("SKIP: the Python module %s is not importable (pip install torch transformers)" % e.name)
    sys.exit(0)


def logits(dir_path, tokens_path, out_path, layers, depth):
    model, info = AutoModelForCausalLM.from_pretrained(dir_path, torch_dtype=torch.float32,
                                                       attn_implementation="eager", output_loading_info=True)
    model.eval()
    if info["missing_keys"]:
        sys.exit("missing keys: %s" % sorted(info["missing_keys"]))
    unexpected = sorted(info["unexpected_keys"])
    module_layer = re.compile(r"^(?:model\.layers|transformer\.h)\.(\d+)\.")
    layers_seen = set()
    for key in unexpected:
        m = module_layer.match(key)
        if not m or not layers <= int(m.group(1)) < layers + depth:
            sys.exit("unexpected key outside the modules: %s" % key)
        layers_seen.add(int(m.group(1)))
    if layers_seen != set(range(layers, layers + depth)):
        sys.exit("the modules' layers transformers left aside: %s, expected %d..%d" %
                 (sorted(layers_seen), layers, layers + depth - 1))
    config = model.config
    if config.num_hidden_layers != layers or getattr(config, "num_nextn_predict_layers", None) != depth:
        sys.exit("config: num_hidden_layers %s, num_nextn_predict_layers %s" %
                 (config.num_hidden_layers, getattr(config, "num_nextn_predict_layers", None)))
    data = open(tokens_path, "rb").read()
    tokens = list(struct.unpack("<%di" % (len(data) // 4), data))
    with torch.no_grad():
        out = model(torch.tensor([tokens], dtype=torch.long)).logits[0]
    with open(out_path, "wb") as f:
        f.write(out.float().contiguous().numpy().tobytes())
    print("%s: %s, %d module tensors left aside (layers %d..%d), logits written" %
          (dir_path, type(model).__name__, len(unexpected), layers, layers + depth - 1))


if __name__ == "__main__":
    if len(sys.argv) == 7 and sys.argv[1] == "logits":
        logits(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), int(sys.argv[6]))
    else:
        sys.exit(__doc__)
