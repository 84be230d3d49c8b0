#!/usr/bin/env python3
"""HF `tokenizers` encode throughput for one tokenizer.json on the shared corpus, one thread
(RAYON_NUM_THREADS=1): the corpus as one text (Tokenizer.encode), and line by line
(encode_batch over the lines), best of N runs; the same two measurements as
`build/bench_tokenizer --tokenizer FILE`. MB = 10^6 bytes of UTF-8 input.

usage: RAYON_NUM_THREADS=1 bench_hf_wordpiece.py TOKENIZER.json CORPUS.txt [RUNS]"""
import os
import sys
import time

os.environ.setdefault("RAYON_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
from tokenizers import Tokenizer  # noqa: E402

tok = Tokenizer.from_file(sys.argv[1])
text = open(sys.argv[2], encoding="utf-8").read()
runs = int(sys.argv[3]) if len(sys.argv) > 3 else 3
mb = len(text.encode("utf-8")) / 1e6
lines = text.split("\n")
best, n = 1e30, 0
for _ in range(runs):
    t = time.perf_counter()
    n = len(tok.encode(text, add_special_tokens=False).ids)
    best = min(best, time.perf_counter() - t)
print("HF tokenizers: one text   %.2f MB  %.1f MB/s  %d tokens" % (mb, mb / best, n))
best = 1e30
for _ in range(runs):
    t = time.perf_counter()
    n = sum(len(e.ids) for e in tok.encode_batch(lines, add_special_tokens=False))
    best = min(best, time.perf_counter() - t)
print("HF tokenizers: by line    %.2f MB  %.1f MB/s  %d tokens" % (mb, mb / best, n))
