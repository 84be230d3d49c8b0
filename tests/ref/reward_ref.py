#!/usr/bin/env python3
"""Reference side of the reward model's export (tests/test_reward_ref.c): the scores transformers'
AutoModelForSequenceClassification gives a ctrain reward model exported with `ctrain export hf`.

usage:
  reward_ref.py HF_DIR IDS.json OUT.bin
      IDS.json: {"rows": [[id, ...], ...]}, sequences of different lengths. They are right-padded
      with the config's pad_token_id into one batch (attention mask 0 on the padding); the model,
      loaded in float32, reads each row's last token that is not the pad id (transformers' rule).
      OUT.bin: logits[:, 0] as float32, one per row. Also prints the architecture and num_labels.

Where torch or transformers is not importable it prints "SKIP: ..." and exits 0.
"""
import json
import sys

try:
    import torch
    from transformers import AutoModelForSequenceClassification
except ImportError as e:
    print("SKIP: the Python module %s is not importable (pip install torch transformers)" % e.name)
    sys.exit(0)


def main():
    hf_dir, ids_path, out_path = sys.argv[1:4]
    rows = json.load(open(ids_path))["rows"]
    model = AutoModelForSequenceClassification.from_pretrained(hf_dir, dtype=torch.float32)
    model.eval()
    pad = model.config.pad_token_id
    assert model.config.num_labels == 1, model.config.num_labels
    assert pad is not None, "the export sets pad_token_id"
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.tensor(r)
        mask[i, : len(r)] = 1
    with torch.no_grad():
        scores = model(input_ids=ids, attention_mask=mask).logits[:, 0].float()
    scores.numpy().astype("float32").tofile(out_path)
    print("%s num_labels=%d pad=%d scores=%s" % (type(model).__name__, model.config.num_labels, pad,
                                                  " ".join("%.6f" % s for s in scores.tolist())))


if __name__ == "__main__":
    main()
