#!/usr/bin/env python3
"""Reference side of ctrain's encoder interop (tests/test_hf_encoder_ref.c): BertForMaskedLM and
RobertaForMaskedLM.

usage:
  hf_encoder_ref.py make DIR ARCH [pooler]
      ARCH: bert | roberta. Saves a tiny randomly initialised *ForMaskedLM (every parameter moved off
      transformers' init, so biases and norms are not 0 and 1) to DIR with save_pretrained (with
      `pooler`: the encoder's pooler too, as BertModel saves it: bert.pooler.dense.*), and writes:
        DIR/tokens.bin  [B, T] int32 ids (row 1 ends in pads)     DIR/types.bin  [B, T] int32 token types
        DIR/mask.bin    [B, T] int32 attention mask (0: pad)      DIR/logits.bin [B, T, V] fp32 MLM logits
      from the folder as transformers loads it back (fp32, eager attention).
  hf_encoder_ref.py logits DIR TOKENS TYPES MASK OUT
      Loads DIR (AutoModelForMaskedLM) and writes the fp32 logits of those inputs to OUT.

Where torch or transformers is not importable it prints "SKIP: ..." and exits 0, so the C test
skips with the reason.
"""
import os
import sys

try:
    import torch
    import transformers
    from transformers import AutoModelForMaskedLM
except ImportError as e:
    print("SKIP: the Python module %s is not importable (pip install torch transformers)" % e.name)
    sys.exit(0)

from encoder_inputs import config_of, inputs, read_ints, write  # noqa: E402


def logits_of(folder, tokens, types, mask):
    model = AutoModelForMaskedLM.from_pretrained(folder, dtype=torch.float32, attn_implementation="eager")
    model.eval()
    with torch.no_grad():
        return model(input_ids=tokens, token_type_ids=types, attention_mask=mask).logits.float()


def make(folder, arch, pooler):
    torch.manual_seed(261 if arch == "bert" else 262)
    config = config_of(arch)
    model = transformers.AutoModelForMaskedLM.from_config(config, attn_implementation="eager")
    with torch.no_grad():
        for p in model.parameters():  # off the init: non-zero biases, norms away from 1
            p.add_(0.05 * torch.randn_like(p))
    model.eval()
    model.save_pretrained(folder)
    if pooler:  # the encoder's pooler, as BertModel / BertForPreTraining save it
        from safetensors.torch import load_file, save_file
        path = os.path.join(folder, "model.safetensors")
        tensors = load_file(path)
        tensors["%s.pooler.dense.weight" % arch] = 0.1 * torch.randn(64, 64)
        tensors["%s.pooler.dense.bias" % arch] = 0.1 * torch.randn(64)
        save_file(tensors, path, metadata={"format": "pt"})
    tokens, types, mask = inputs(arch, 26)
    write(os.path.join(folder, "tokens.bin"), tokens, "i")
    write(os.path.join(folder, "types.bin"), types, "i")
    write(os.path.join(folder, "mask.bin"), mask, "i")
    write(os.path.join(folder, "logits.bin"), logits_of(folder, tokens, types, mask), "f")


def main():
    if len(sys.argv) >= 4 and sys.argv[1] == "make":
        make(sys.argv[2], sys.argv[3], len(sys.argv) > 4 and sys.argv[4] == "pooler")
    elif len(sys.argv) == 7 and sys.argv[1] == "logits":
        folder, tokens, types, mask, out = sys.argv[2:]
        write(out, logits_of(folder, read_ints(tokens), read_ints(types), read_ints(mask)), "f")
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
