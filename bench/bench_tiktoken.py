#!/usr/bin/env python3
"""tiktoken on the same corpus, for comparison with bench_tokenizer (skips when tiktoken is absent).
usage: bench_tiktoken.py SHARED_DIR"""
import json, sys, time
try:
    import tiktoken
    from tiktoken.load import load_tiktoken_bpe
except ImportError:
    print("tiktoken: not installed (pip install tiktoken), comparison skipped")
    sys.exit(0)
shared = sys.argv[1] if len(sys.argv) > 1 else "../shared/data"
text = open(shared + "/corpora/nlp-corpus-40k.txt", encoding="utf-8").read()
n = len(text.encode())
encs = {}
for name in ("cl100k_base", "o200k_base"):
    meta = json.load(open(shared + "/tokenizers/tiktoken/%s.meta.json" % name))
    ranks = load_tiktoken_bpe(shared + "/tokenizers/tiktoken/%s.tiktoken" % name)
    encs[name] = tiktoken.Encoding(name, pat_str=meta["pat_str"], mergeable_ranks=ranks, special_tokens={})
g = json.load(open(shared + "/tokenizers/gpt2/meta.json"))
enc_json = json.load(open(shared + "/tokenizers/gpt2/encoder.json"))
bs = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
cs, k = bs[:], 0
for b in range(256):
    if b not in bs:
        bs.append(b); cs.append(256 + k); k += 1
dec = {chr(c): b for b, c in zip(bs, cs)}
gr = {bytes(dec[ch] for ch in t): i for t, i in enc_json.items() if t != "<|endoftext|>"}
encs["gpt2"] = tiktoken.Encoding("gpt2", pat_str=g["pat_str"], mergeable_ranks=gr, special_tokens={})
# MB/cpu-s: by the process's CPU time, as bench_tokenizer's column (for a machine shared with other jobs)
for name in ("gpt2", "cl100k_base", "o200k_base"):
    e = encs[name]
    best = best_cpu = 1e9
    for _ in range(5):
        t0, c0 = time.perf_counter(), time.process_time()
        e.encode_ordinary(text)
        best, best_cpu = min(best, time.perf_counter() - t0), min(best_cpu, time.process_time() - c0)
    print("tiktoken %s %-12s 1 thread  %8.1f MB/s  %8.1f MB/cpu-s" % (tiktoken.__version__, name, n / best / 1e6,
                                                                     n / best_cpu / 1e6))
