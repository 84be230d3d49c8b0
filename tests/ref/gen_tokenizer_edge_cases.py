#!/usr/bin/env python3
# Generates the tables of tests/test_tokenizer_edge.c: pieces from the three regexes with
# Python's `regex` module (backtracking, as tiktoken's fancy-regex), and ids from tiktoken.
# Needs: pip install tiktoken regex. Run: python3 tests/ref/gen_tokenizer_edge_cases.py
import json, os
import regex
import tiktoken
from tiktoken.load import load_tiktoken_bpe
D = os.environ.get("CTRAIN_SHARED", "../shared/data") + "/tokenizers"
def enc(name):
    if name=="gpt2":
        meta=json.load(open(D+"/gpt2/meta.json"))
        enc_json=json.load(open(D+"/gpt2/encoder.json"))
        # bytes from byte-level alphabet
        bs=list(range(33,127))+list(range(161,173))+list(range(174,256)); cs=bs[:]; n=0
        for b in range(256):
            if b not in bs: bs.append(b); cs.append(256+n); n+=1
        dec={chr(c):b for b,c in zip(bs,cs)}
        ranks={bytes(dec[ch] for ch in k):v for k,v in enc_json.items() if k!="<|endoftext|>"}
        return tiktoken.Encoding("gpt2",pat_str=meta["pat_str"],mergeable_ranks=ranks,special_tokens=meta["special_tokens"]), D+"/gpt2"
    meta=json.load(open(f"{D}/tiktoken/{name}.meta.json"))
    return tiktoken.Encoding(name,pat_str=meta["pat_str"],mergeable_ranks=load_tiktoken_bpe(f"{D}/tiktoken/{name}.tiktoken"),special_tokens=meta["special_tokens"]), f"{D}/tiktoken/{name}.tiktoken"

pats={"gpt2":json.load(open(D+"/gpt2/meta.json"))["pat_str"],
      "cl100k":json.load(open(D+"/tiktoken/cl100k_base.meta.json"))["pat_str"],
      "o200k":json.load(open(D+"/tiktoken/o200k_base.meta.json"))["pat_str"]}
cases=[("empty",""),("spaces","a   b    "),("ws_mix"," \t\n  \n\t x"),("crlf","a\r\n\r\nb\r\r\n c\n\r"),
 ("contractions","I'm he's they'RE we'Ve it'LL I'D don'T 'S 'ſ"),("digits","12345 1234567 ٣٤٥٦ ½Ⅻ 3.14159"),
 ("cjk","日本語のテキスト、中文。한국어"),("emoji_zwj","👨‍👩‍👧 🏳️‍🌈 👍🏽!"),("combining","e\u0301te\u0301 x\u0303\u0304 \u0301a"),
 ("case","HelloWORLD camelCase ǅungla ALLCAPS's"),("punct","  !!! ?!\n/// a/b\n"),("nul","a\u0000b \u0000\u0000 c"),
 # ASCII runs that meet a non-ASCII unit (the scanners' ASCII fast path must hand these over)
 ("ascii_edges","café CaféS ABCÉ abc\u0301d (été) x12½ 1٣ 123٣ .é é\té it'ſ McÉ /é ,\u0301 9\u0301 A\u02b0 don't 1234"),
 # the encoder's caches: pieces of up to 16 bytes with more than 3 ids, of 17-22 bytes, of more,
 # with few and many ids, each twice (the second time from the hot table or the piece cache)
 ("cached_pieces"," xqzjvkwq xqzjvkwq internationalization internationalization"
  " supercalifragilisticexpialidocious supercalifragilisticexpialidocious"
  " \u2ff0\u2ff1\u2ff2\u2ff3\u2ff4 \u2ff0\u2ff1\u2ff2\u2ff3\u2ff4"
  " \u2ff0\u2ff1\u2ff2\u2ff3\u2ff4\u2ff5\u2ff6 \u2ff0\u2ff1\u2ff2\u2ff3\u2ff4\u2ff5\u2ff6"
  " \u2ff0\u2ff1\u2ff2\u2ff3\u2ff4\u2ff5\u2ff6\u2ff7 \u2ff0\u2ff1\u2ff2\u2ff3\u2ff4\u2ff5\u2ff6\u2ff7")]
def cstr(b):
    out='"'
    for ch in b:
        if 32<=ch<127 and ch not in (34,92,63): out+=chr(ch)
        else: out+='\\x%02x""'%ch
    return out+'"'
print("// GENERATED from the regexes with Python's `regex` module (backtracking, like tiktoken's).")
for name,text in cases:
    b=text.encode()
    for p,pat in pats.items():
        pieces=regex.findall(pat,text)
        assert "".join(pieces)==text
        joined=b"\x01".join(x.encode() for x in pieces)
        print('    {"%s", %s, %d, CT_PATTERN_%s, %s, %d},'%(name,cstr(b),len(b),p.upper(),cstr(joined),len(joined)))

print("// ids as tiktoken %s encodes the same texts (disallowed_special=())" % __import__("tiktoken").__version__)
for name,text in cases:
    b=text.encode()
    for p,full in (("gpt2","gpt2"),("cl100k","cl100k_base"),("o200k","o200k_base")):
        e,_=enc(full)
        ids=e.encode(text,disallowed_special=())
        print('    {"%s", %s, %d, %d, {%s}, %d},'%(name,cstr(b),len(b),["gpt2","cl100k","o200k"].index(p),",".join(map(str,ids)),len(ids)))

# The long piece of tests/test_tokenizer_edge.c (long_piece_gpt2 / long_piece_o200k):
#   x = 1; for i in range(1000): x = (x*1103515245+12345) % 2**31; letter = "etaoinshrdlucmfw"[(x>>16) % 16]
#   ids = enc.encode("".join(letters)) for gpt2 and o200k_base.
