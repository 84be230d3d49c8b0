#!/usr/bin/env python3
"""Compares `ctrain tokenize --jsonl` with tiktoken on many texts: the shared corpus in blocks,
random mixes of every Unicode class the patterns care about (contractions, marks, titlecase,
modifier letters, Nl/No numbers, every kind of White_Space, NUL), random code points across
the whole range, and long pieces (> 256 bytes, the heap path). Not part of `make test` (it
needs tiktoken, which is not a build dependency); run it by hand:

    pip install tiktoken
    python3 tests/ref/compare_tiktoken.py [CTRAIN_BIN] [N_RANDOM] [SEED]

Exit 0 when every text gives the same ids under gpt2, cl100k_base and o200k_base.
"""
import json, os, random, subprocess, sys

import tiktoken
from tiktoken.load import load_tiktoken_bpe

D = os.environ.get("CTRAIN_SHARED", "../shared/data")
BIN = sys.argv[1] if len(sys.argv) > 1 else "./ctrain"
N = int(sys.argv[2]) if len(sys.argv) > 2 else 5000
rng = random.Random(int(sys.argv[3]) if len(sys.argv) > 3 else 1)


def encoding(name):
    if name == "gpt2":
        meta = json.load(open(D + "/tokenizers/gpt2/meta.json"))
        vocab = json.load(open(D + "/tokenizers/gpt2/encoder.json"))
        bs = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
        cs, k = bs[:], 0
        for b in range(256):
            if b not in bs:
                bs.append(b); cs.append(256 + k); k += 1
        dec = {chr(c): b for b, c in zip(bs, cs)}
        ranks = {bytes(dec[ch] for ch in t): i for t, i in vocab.items() if t != "<|endoftext|>"}
        return tiktoken.Encoding("gpt2", pat_str=meta["pat_str"], mergeable_ranks=ranks,
                                 special_tokens=meta["special_tokens"]), D + "/tokenizers/gpt2"
    path = "%s/tokenizers/tiktoken/%s.tiktoken" % (D, name)
    meta = json.load(open(path[:-len(".tiktoken")] + ".meta.json"))
    return tiktoken.Encoding(name, pat_str=meta["pat_str"], mergeable_ranks=load_tiktoken_bpe(path),
                             special_tokens=meta["special_tokens"]), path


CLASSES = {"Lu": "AZÉΣДǄ", "Ll": "azéσдſǆß", "Lt": "ǅǈᾈ", "Lm": "ʰˆーᵃ", "Lo": "中あ가אـ",
           "Mn": "\u0301\u0300\u064b\u20e3\ufe0f", "Mc": "\u0903\u093e", "Me": "\u20dd\u0488",
           "Nd": "09٣", "Nl": "Ⅻⅰ〇", "No": "½²①", "ws": " \t\n\r\x0b\x0c\x85\u00a0\u2028\u3000",
           "p": "'/!.,-\"$()?", "s": "🙂€\u200d\ufffd\x00\x7f<|>"}
CONTRACTIONS = ["'s", "'T", "'re", "'VE", "'m", "'Ll", "'d", "'ſ"]


def mixed_text():
    out = []
    for _ in range(rng.randint(1, 40)):
        if rng.random() < 0.1:
            out.append(rng.choice(CONTRACTIONS))
        else:
            out.append(rng.choice(CLASSES[rng.choice(list(CLASSES))]))
    return "".join(out)


def random_code_points():
    ranges = [(0x20, 0x7F), (0xA0, 0x2FFF), (0x3000, 0xD7FF), (0xE000, 0x10FFFF)]
    return "".join(chr(rng.randint(*rng.choice(ranges))) for _ in range(rng.randint(1, 12)))


def long_piece():
    alphabet = rng.choice(["ab", "etaoin", "aaaaab", "qwertyuiopasdfghjklzxcvbnm", " ", "  \n", "0123456789", "日本"])
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(257, 3000)))


lines = open(D + "/corpora/nlp-corpus-40k.txt", encoding="utf-8").read().split("\n")
texts = ["\n".join(lines[i:i + 20]) for i in range(0, len(lines), 20)]
texts += [mixed_text() for _ in range(N)] + [random_code_points() for _ in range(N // 2)] + [long_piece() for _ in range(100)]
data = "".join(json.dumps({"text": t}) + "\n" for t in texts).encode()
failed = 0
for name in ("gpt2", "cl100k_base", "o200k_base"):
    enc, path = encoding(name)
    r = subprocess.run([BIN, "tokenize", "--jsonl", "--tokenizer", path], input=data, capture_output=True)
    if r.returncode != 0:
        print(name, "ctrain failed:", r.stderr.decode()); sys.exit(1)
    got = [json.loads(line)["ids"] for line in r.stdout.decode().splitlines()]
    bad = 0
    for text, ids in zip(texts, got):
        if enc.encode(text, disallowed_special=()) != ids:
            bad += 1
            if bad <= 3:
                print("  differs:", name, repr(text[:80]))
    print("%-12s %6d texts, %d differ (tiktoken %s)" % (name, len(texts), bad, tiktoken.__version__))
    failed += bad + (len(got) != len(texts))
sys.exit(1 if failed else 0)
