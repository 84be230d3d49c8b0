#!/usr/bin/env python3
"""Checks a tokenizer.json against Hugging Face `tokenizers`: HF loads it, and HF's ids and
decoded text equal ctrain's for the shared corpus (in blocks of 10 lines) and a few edge texts.

usage: check_hf_tokenizer.py CTRAIN_BIN TOKENIZER_JSON CORPUS
Exit 0 when equal, 1 on a difference, 77 when the `tokenizers` module is absent (a skip).
Special-token strings are left out: HF always matches added tokens in text, while ctrain (like
tiktoken) treats them as plain text unless --allow-special is given.
"""
import json
import subprocess
import sys

try:
    from tokenizers import Tokenizer
except ImportError:
    print("the Python module `tokenizers` is absent (pip install tokenizers)")
    sys.exit(77)

bin_path, tok_path, corpus = sys.argv[1:4]
tok = Tokenizer.from_file(tok_path)
lines = open(corpus, encoding="utf-8").read().split("\n")
texts = ["\n".join(lines[i:i + 10]) for i in range(0, len(lines), 10)]
texts += ["", "hello   world\n\n  x\r\n", "I'm don't 'S 'LL", "日本語 🙂👨‍👩‍👧", "e\u0301 12345 ½ x\u00a0y"]
inp = "".join(json.dumps({"text": t}) + "\n" for t in texts).encode()
r = subprocess.run([bin_path, "tokenize", "--jsonl", "--tokenizer", tok_path], input=inp, capture_output=True)
if r.returncode != 0:
    print("ctrain tokenize failed:", r.stderr.decode())
    sys.exit(1)
got = [json.loads(line)["ids"] for line in r.stdout.decode().splitlines()]
bad = 0
for text, ids in zip(texts, got):
    expected = tok.encode(text, add_special_tokens=False).ids
    if expected != ids or tok.decode(ids, skip_special_tokens=False) != text:
        bad += 1
        if bad <= 3:
            print("differs:", repr(text[:60]), expected[:12], ids[:12])
if len(got) != len(texts):
    print("ctrain wrote %d lines for %d texts" % (len(got), len(texts)))
    sys.exit(1)
print("%s: %d texts, %d differ from HF tokenizers" % (tok_path, len(texts), bad))
sys.exit(1 if bad else 0)
