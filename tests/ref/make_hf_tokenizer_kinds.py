#!/usr/bin/env python3
"""Builds small tokenizers of each kind ctrain reads, with Hugging Face `tokenizers`' own
BpeTrainer on the shared corpus (the real files of Llama 3, Qwen2, Llama 2, Mistral, Gemma and
Phi-3 are not available offline), in the shape those models' tokenizer.json files have, and
writes what HF gives for a set of texts:

  OUT/KIND/tokenizer.json          (and tokenizer_config.json where the kind has one)
  OUT/KIND/expected.jsonl          per text: {"text", "ids" (HF encode, added tokens matched),
                                   "plain" (encode_special_tokens=True: specials as text),
                                   "decoded" (HF decode(ids, skip_special_tokens=False))}
  OUT/KIND/framing.json            {"prefix": [...], "suffix": [...]}: what transformers'
                                   AutoTokenizer adds around a text (absent without transformers)

Kinds:
  llama3      Split(cl100k regex) + ByteLevel(use_regex=false), ignore_merges, TemplateProcessing BOS
  qwen2       NFC, Split(Qwen2 regex) + ByteLevel, <|im_start|>... special, <tool_call> not special
  llama2      normalizer Prepend("▁") + Replace(" ", "▁"), byte_fallback, decoder with Strip, BOS
  mistral     Metaspace(prepend_scheme first, split false), byte_fallback, add_bos_token
  metaspace   Metaspace(always, split true), no byte_fallback: unknown characters are a fused <unk>
  gemma       normalizer Replace only (no dummy prefix), Split(" ", merged_with_previous), <table> not special
  phi3        like llama2, chat tokens with rstrip, tokenizer_config add_bos_token false

usage: make_hf_tokenizer_kinds.py SHARED_DIR OUT_DIR     (exit 77 when `tokenizers` is absent)"""
import json
import os
import sys

try:
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
except ImportError:
    print("the Python module `tokenizers` is absent (pip install tokenizers)")
    sys.exit(77)

CL100K = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
          r"\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2 = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
         r"\s*[\r\n]+|\s+(?!\S)|\s+")
MARK = "\u2581"

shared, out = sys.argv[1], sys.argv[2]
lines = open(shared + "/corpora/nlp-corpus-40k.txt", encoding="utf-8").read().split("\n")
train_text = lines[:6000]


def byte_level(regex, specials, nonspecial=(), bos=None, nfc=False):
    tok = Tokenizer(models.BPE(ignore_merges=True))
    if nfc:
        tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(regex), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=2000, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(train_text, trainer)
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in specials])
    tok.add_tokens([AddedToken(s, special=False, normalized=False) for s in nonspecial])
    if bos:
        tok.post_processor = processors.TemplateProcessing(single=bos + " $A", pair=bos + " $A " + bos + " $B",
                                                           special_tokens=[(bos, tok.token_to_id(bos))])
    else:
        tok.post_processor = processors.ByteLevel(trim_offsets=False)
    return tok


def sentencepiece_like(normalizer, pre, decoder, byte_fallback=True, specials=("<unk>", "<s>", "</s>"), vocab_size=1500):
    """A BPE over characters trained on ▁-words (as SentencePiece's BPE is), then given
    <0x00>..<0xFF> after the control tokens, as Llama 2's vocabulary has them."""
    tok = Tokenizer(models.BPE(unk_token="<unk>", fuse_unk=True, byte_fallback=byte_fallback))
    tok.normalizer = normalizers.Replace(" ", MARK)
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement=MARK, prepend_scheme="always", split=True)
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(specials), limit_alphabet=120,
                                  show_progress=False)
    tok.train_from_iterator(train_text, trainer)
    data = json.loads(tok.to_str())
    vocab = data["model"]["vocab"]
    n_special = len(specials)
    new_vocab = {}
    for s, i in sorted(vocab.items(), key=lambda kv: kv[1]):
        new_vocab[s] = i if i < n_special else i + 256
    for b in range(256):
        new_vocab["<0x%02X>" % b] = n_special + b
    data["model"]["vocab"] = new_vocab
    data["model"]["byte_fallback"] = byte_fallback
    data["normalizer"] = None
    data["pre_tokenizer"] = None
    tok = Tokenizer.from_str(json.dumps(data))
    tok.normalizer = normalizer
    tok.pre_tokenizer = pre
    tok.decoder = decoder
    return tok


def spm_decoder(strip):
    steps = [decoders.Replace(MARK, " "), decoders.ByteFallback(), decoders.Fuse()]
    if strip:
        steps.append(decoders.Strip(content=" ", left=1, right=0))
    return decoders.Sequence(steps)


def bos_template(tok, bos="<s>"):
    return processors.TemplateProcessing(single=bos + " $A", pair=bos + " $A " + bos + " $B",
                                         special_tokens=[(bos, tok.token_to_id(bos))])


def build():
    kinds = {}
    kinds["llama3"] = (byte_level(CL100K, ["<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>",
                                           "<|start_header_id|>", "<|end_header_id|>"], bos="<|begin_of_text|>"), None)
    kinds["qwen2"] = (byte_level(QWEN2, ["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
                                 nonspecial=["<tool_call>", "</tool_call>"], nfc=True), {"bos_token": None, "eos_token": "<|im_end|>"})
    prepend_replace = normalizers.Sequence([normalizers.Prepend(MARK), normalizers.Replace(" ", MARK)])
    t = sentencepiece_like(prepend_replace, None, spm_decoder(True))
    t.post_processor = bos_template(t)
    kinds["llama2"] = (t, None)
    t = sentencepiece_like(None, pre_tokenizers.Metaspace(replacement=MARK, prepend_scheme="first", split=False),
                       spm_decoder(True))
    t.post_processor = bos_template(t)
    t.add_tokens([AddedToken("[INST]", special=True, normalized=False), AddedToken("[/INST]", special=True, normalized=False)])
    kinds["mistral"] = (t, {"add_bos_token": True, "add_eos_token": False, "bos_token": "<s>", "eos_token": "</s>"})
    t = sentencepiece_like(None, pre_tokenizers.Metaspace(replacement=MARK, prepend_scheme="always", split=True),
                       decoders.Metaspace(replacement=MARK, prepend_scheme="always", split=True), byte_fallback=False)
    kinds["metaspace"] = (t, None)
    t = sentencepiece_like(normalizers.Replace(" ", MARK), pre_tokenizers.Split(" ", "merged_with_previous"),
                       spm_decoder(False), specials=("<pad>", "<eos>", "<bos>", "<unk>"))
    t.add_special_tokens([AddedToken("<start_of_turn>", special=True, normalized=False),
                          AddedToken("<end_of_turn>", special=True, normalized=False)])
    t.add_tokens([AddedToken("<table>", special=False, normalized=False)])
    t.post_processor = bos_template(t, "<bos>")
    kinds["gemma"] = (t, {"add_bos_token": True, "add_eos_token": False, "bos_token": "<bos>", "eos_token": "<eos>"})
    t = sentencepiece_like(prepend_replace, None, spm_decoder(True))
    t.post_processor = bos_template(t)
    t.add_special_tokens([AddedToken("<|endoftext|>", special=True, normalized=False)] +
                         [AddedToken(s, special=True, normalized=False, rstrip=True)
                          for s in ("<|assistant|>", "<|end|>", "<|user|>", "<|system|>")])
    kinds["phi3"] = (t, {"add_bos_token": False, "add_eos_token": False, "bos_token": "<s>", "eos_token": "<|endoftext|>"})
    return kinds


def texts():
    vec = [json.loads(l)["text"] for l in open(shared + "/tokenizers/vectors.jsonl", encoding="utf-8") if l.strip()]
    corpus = ["\n".join(lines[i:i + 10]) for i in range(20000, 20600, 10)]
    extra = ["<s>Hello</s> world", " <s> x", "Hi<s>there", "<|im_start|>user\nhi<|im_end|>\n<tool_call>{}</tool_call>",
             "<|user|>\n  Hello there <|end|>\n<|assistant|>\nSure.<|end|>", "<start_of_turn>user\nHi<end_of_turn>\n",
             "a <table> b<table>", "[INST] What? [/INST] That.", "<|begin_of_text|>Hi<|eot_id|>", "\u2581already \u2581marked",
             "  two leading", "trailing  ", "ſ 'S 'LL x\u00a0y e\u0301 \u0661\u0662\u0663 12345", "\U0001F642\U0001F468\u200d\U0001F469",
             "x" * 3000, "\u65e5\u672c" * 400,
             # NFC: decomposed accents compose, marks are reordered, Hangul jamo compose, a mark
             # after an added token stays alone, singletons (Angstrom, Ohm) change
             "e\u0301 a\u0323\u0302 q\u0307\u0323 \u1100\u1161\u11a8 \u212b \u2126 \u0301x <|im_end|>\u0301",
             "Cafe\u0301 na\u0308ive \u0958 \u0344 \u1e0b\u0323 \u00c5\u0327"]
    # one long text (~250 KB) for the threaded encoder's cuts, with added tokens and NFC work in it
    long_text = "\n".join(l + (" <|im_end|><s> Cafe\u0301 <table>" if i % 300 == 0 else "")
                          for i, l in enumerate(lines[30000:33000]))
    return vec + corpus + extra + [long_text]


def framing(folder):
    try:
        from transformers import AutoTokenizer
    except ImportError:
        return None
    t = AutoTokenizer.from_pretrained(folder)
    plain = t("hello world", add_special_tokens=False)["input_ids"]
    full = t("hello world")["input_ids"]
    k = next(i for i in range(len(full)) if full[i:i + len(plain)] == plain)
    return {"prefix": full[:k], "suffix": full[k + len(plain):]}


def main():
    all_texts = texts()
    for name, (tok, config) in build().items():
        folder = os.path.join(out, name)
        os.makedirs(folder, exist_ok=True)
        tok.save(os.path.join(folder, "tokenizer.json"))
        cfg = {"tokenizer_class": "PreTrainedTokenizerFast"}
        cfg.update(config or {})
        with open(os.path.join(folder, "tokenizer_config.json"), "w") as f:
            json.dump(cfg, f)
        tok = Tokenizer.from_file(os.path.join(folder, "tokenizer.json"))  # as read back
        with open(os.path.join(folder, "expected.jsonl"), "w", encoding="utf-8") as f:
            for text in all_texts:
                tok.encode_special_tokens = False
                ids = tok.encode(text, add_special_tokens=False).ids
                tok.encode_special_tokens = True
                plain = tok.encode(text, add_special_tokens=False).ids
                decoded = tok.decode(ids, skip_special_tokens=False)
                f.write(json.dumps({"text": text, "ids": ids, "plain": plain, "decoded": decoded}) + "\n")
        fr = framing(folder)
        if fr is not None:
            with open(os.path.join(folder, "framing.json"), "w") as f:
                json.dump(fr, f)
    print("wrote %d kinds to %s" % (len(build.__code__.co_consts) and 7, out))


main()
