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
import struct
import sys

try:
    import torch
    import transformers
    from transformers import AutoModelForMaskedLM
except ImportError as e:
    print("SKIP: the Python module %s is not importable (pip install torch transformers)" % e.name)
    sys.exit(0)

B, T, V = 2, 12, 101
PADS = 4  # row 1's last tokens


def config_of(arch):
    sizes = dict(vocab_size=V, hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=96,
                 hidden_act="gelu", hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1)
    if arch == "bert":
        return transformers.BertConfig(max_position_embeddings=40, type_vocab_size=2, layer_norm_eps=1e-12,
                                       pad_token_id=0, **sizes)
    if arch == "roberta":  # padding_idx 1: positions 2.., the table 40 + 2 rows
        return transformers.RobertaConfig(max_position_embeddings=42, type_vocab_size=1, layer_norm_eps=1e-5,
                                          pad_token_id=1, bos_token_id=0, eos_token_id=2, **sizes)
    raise SystemExit("unknown arch %s" % arch)


def inputs(arch):
    g = torch.Generator().manual_seed(26)
    pad = 0 if arch == "bert" else 1
    tokens = torch.randint(3, V, (B, T), generator=g)
    mask = torch.ones(B, T, dtype=torch.long)
    tokens[1, T - PADS:] = pad
    mask[1, T - PADS:] = 0
    types = torch.zeros(B, T, dtype=torch.long)
    if arch == "bert":  # two segments per row
        types[0, 6:] = 1
        types[1, 5:T - PADS] = 1
    return tokens, types, mask


def write(path, tensor, fmt):
    flat = tensor.reshape(-1).tolist()
    with open(path, "wb") as f:
        f.write(struct.pack("<%d%s" % (len(flat), fmt), *flat))


def read_ints(path):
    with open(path, "rb") as f:
        data = f.read()
    return torch.tensor(struct.unpack("<%di" % (len(data) // 4), data), dtype=torch.long).reshape(B, T)


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
    tokens, types, mask = inputs(arch)
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
