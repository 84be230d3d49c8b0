"""What hf_encoder_ref.py and hf_classify_ref.py share: the tiny BERT/RoBERTa configs, a padded
batch of two rows (row 1 ends in PADS pads; BERT's rows in two segments), and the int32/fp32
files the C tests read and write. Imported only after torch and transformers imported."""
import struct

import torch
import transformers

B, T, V = 2, 12, 101
PADS = 4  # row 1's last tokens


def config_of(arch, **extra):
    sizes = dict(vocab_size=V, hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=96,
                 hidden_act="gelu", hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1, **extra)
    if arch == "bert":
        return transformers.BertConfig(max_position_embeddings=40, type_vocab_size=2, layer_norm_eps=1e-12,
                                       pad_token_id=0, **sizes)
    if arch == "roberta":  # padding_idx 1: positions 2.., the table 40 + 2 rows
        return transformers.RobertaConfig(max_position_embeddings=42, type_vocab_size=1, layer_norm_eps=1e-5,
                                          pad_token_id=1, bos_token_id=0, eos_token_id=2, **sizes)
    raise SystemExit("unknown arch %s" % arch)


def inputs(arch, seed):
    g = torch.Generator().manual_seed(seed)
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
