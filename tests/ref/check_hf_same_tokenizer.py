#!/usr/bin/env python3
"""HF `tokenizers` loads both tokenizer.json files and they encode (with the post-processor's
tokens) and decode the "text" of every line of TEXTS.jsonl alike: a tokenizer.json that ctrain
wrote is the tokenizer it read.

usage: check_hf_same_tokenizer.py ORIGINAL.json WRITTEN.json TEXTS.jsonl
Exit 0 when equal, 1 on a difference, 77 when `tokenizers` is absent (a skip)."""
import json
import sys

try:
    from tokenizers import Tokenizer
except ImportError:
    print("the Python module `tokenizers` is absent (pip install tokenizers)")
    sys.exit(77)

a, b = Tokenizer.from_file(sys.argv[1]), Tokenizer.from_file(sys.argv[2])
texts = [json.loads(line)["text"] for line in open(sys.argv[3], encoding="utf-8") if line.strip()]
bad = 0
for text in texts:
    ia, ib = a.encode(text).ids, b.encode(text).ids
    if ia != ib or a.decode(ia, skip_special_tokens=False) != b.decode(ib, skip_special_tokens=False):
        bad += 1
        if bad <= 3:
            print("differs:", repr(text[:60]), ia[:12], ib[:12])
print("%s: %d texts, %d differ" % (sys.argv[2], len(texts), bad))
sys.exit(1 if bad else 0)
