#!/usr/bin/env python3
"""WordPiece (BERT) and RoBERTa tokenizers built with Hugging Face `tokenizers` itself (no
network: the real bert-base files are not available offline), and what HF gives for a set of
texts and pairs of texts.

  make_hf_wordpiece_kinds.py SHARED_DIR OUT_DIR
      OUT/KIND/tokenizer.json, OUT/KIND/expected.jsonl, OUT/kinds.txt (see expected() below)
  make_hf_wordpiece_kinds.py --expected SHARED_DIR TOKENIZER.json EXPECTED.jsonl
      the expected lines for one tokenizer.json (one that ctrain trained or saved)
  make_hf_wordpiece_kinds.py --same SHARED_DIR ORIGINAL.json WRITTEN.json
      exit 0 when HF encodes every text and pair alike with both files (ids, type ids, decode)

Kinds (a WordPiece vocabulary trained with HF's WordPieceTrainer on corpus lines plus
vectors.jsonl, so CJK characters, accented letters and emoji have tokens):
  bert_uncased  bert-base-uncased's pipeline: BertNormalizer(lowercase, strip_accents null),
                BertPreTokenizer, WordPiece decoder, BertProcessing
  bert_cased    bert-base-cased's: no lowercase (so no accent stripping), TemplateProcessing
                with the pair template transformers writes
  bert_options  lowercase without strip_accents, strip_accents without lowercase elsewhere off
                (clean_text and handle_chinese_chars false), max_input_chars_per_word 8,
                decoder without cleanup, a Sequence of one BertPreTokenizer, a special token
                "zzsp" whose text is a word
  tf_bert       (with transformers) the uncased vocabulary given to transformers' BertTokenizer
                and saved by save_pretrained
  roberta       RoBERTa's: byte-level BPE (HF BpeTrainer), RobertaProcessing, <mask> lstrip
Exit 77 when `tokenizers` is absent."""
import json
import os
import sys

try:
    from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
except ImportError:
    print("the Python module `tokenizers` is absent (pip install tokenizers)")
    sys.exit(77)

BERT_SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def load_lines(shared):
    return open(shared + "/corpora/nlp-corpus-40k.txt", encoding="utf-8").read().split("\n")


def vectors(shared):
    return [json.loads(l)["text"] for l in open(shared + "/tokenizers/vectors.jsonl", encoding="utf-8") if l.strip()]


def texts(shared):
    lines = load_lines(shared)
    corpus = ["\n".join(lines[i:i + 10]) for i in range(20000, 20600, 10)]
    extra = ["[CLS] Hello [SEP] world [MASK].", "x[MASK]y", "<s>Hi</s> <mask> there", "a <mask>b",
             "Don't do that, it's 'quoted' -- ok ? yes ! no .", "\u00c9cole na\u00efve CAF\u00c9 \u0130stanbul \u1e9e \u01c5",
             "e\u0301 a\u0323\u0302 \u212b \u2126 \uac00\ub098\ub2e4 \u3131", "\u4e2d\u6587\u5b57 \u65e5\u672c\u8a9e\u3067\u3059 \u3053\u3093\u306b\u3061\u306f",
             "tab\there\u00a0nbsp\u2003em\u200bzw\x01soh\x07bel\ufffdrep\u00adshy", "superlongwordwithoutanyspacesatall " * 3,
             "a" * 150, "\U0001F642\U0001F468\u200d\U0001F469 \u0661\u0662\u0663 12345.678,9", "  leading and trailing  ",
             "\u00bfQu\u00e9? \u00a1S\u00ed! \u00ab\u00bb \u2014 \u2026 \u3002\u3001 $5 + 3 = 8 ^_^ `x` |y| ~z~",
             "a zzsp b zzsps"]  # a special token that is a word: found in the vocab when not matched
    long_text = "\n".join(lines[30000:33000])  # ~230 KB: the threaded encoder cuts it
    return vectors(shared) + corpus + extra + [long_text]


def pairs(all_texts):
    short = [t for t in all_texts if len(t) < 400]
    return [(short[i], short[(i * 7 + 3) % len(short)]) for i in range(0, len(short), 2)]


def train_wordpiece(shared, lowercase, strip_accents=None, clean=True, chinese=True, specials=BERT_SPECIALS):
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(clean_text=clean, handle_chinese_chars=chinese,
                                                strip_accents=strip_accents, lowercase=lowercase)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece(prefix="##")
    trainer = trainers.WordPieceTrainer(vocab_size=3000, special_tokens=specials, show_progress=False)
    lines = load_lines(shared)
    tok.train_from_iterator(lines[:8000] + vectors(shared) * 3, trainer=trainer)
    return tok


def bert_processing(tok):
    return processors.BertProcessing(("[SEP]", tok.token_to_id("[SEP]")), ("[CLS]", tok.token_to_id("[CLS]")))


def build(shared):
    kinds = {}
    tok = train_wordpiece(shared, lowercase=True)
    tok.post_processor = bert_processing(tok)
    kinds["bert_uncased"] = tok

    tok = train_wordpiece(shared, lowercase=False)
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
                                                       special_tokens=[("[CLS]", cls), ("[SEP]", sep)])
    kinds["bert_cased"] = tok

    tok = train_wordpiece(shared, lowercase=True, strip_accents=False, specials=BERT_SPECIALS + ["zzsp"])
    data = json.loads(tok.to_str())
    data["normalizer"] = {"type": "BertNormalizer", "clean_text": False, "handle_chinese_chars": False,
                          "strip_accents": True, "lowercase": False}
    data["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [{"type": "BertPreTokenizer"}]}
    data["decoder"] = {"type": "WordPiece", "prefix": "##", "cleanup": False}
    data["model"]["max_input_chars_per_word"] = 8
    tok = Tokenizer.from_str(json.dumps(data))
    tok.post_processor = bert_processing(tok)
    kinds["bert_options"] = tok

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=2000, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
                                  special_tokens=["<s>", "<pad>", "</s>", "<unk>", AddedToken("<mask>", lstrip=True, special=True)])
    tok.train_from_iterator(load_lines(shared)[:6000], trainer=trainer)
    tok.post_processor = processors.RobertaProcessing(("</s>", tok.token_to_id("</s>")), ("<s>", tok.token_to_id("<s>")),
                                                      trim_offsets=True, add_prefix_space=False)
    kinds["roberta"] = tok
    return kinds


def transformers_bert(uncased, out):
    try:
        from transformers import BertTokenizer
    except ImportError:
        return None
    vocab = json.loads(uncased.to_str())["model"]["vocab"]
    folder = os.path.join(out, "tf_bert")
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, "vocab.txt")
    with open(path, "w", encoding="utf-8") as f:
        for token, _ in sorted(vocab.items(), key=lambda kv: kv[1]):
            f.write(token + "\n")
    BertTokenizer(vocab_file=path).save_pretrained(folder)
    return folder


def expected(tok, all_texts):
    """One line per text: ids (special tokens matched), plain (special tokens as text),
    decoded (decode(ids, skip_special_tokens=False)), framed/framed_types (add_special_tokens),
    and per pair: pair_ids/pair_types with the post-processor, pair_plain/pair_plain_types without."""
    lines = []
    for text in all_texts:
        tok.encode_special_tokens = False
        e = tok.encode(text, add_special_tokens=False)
        framed = tok.encode(text)
        tok.encode_special_tokens = True
        plain = tok.encode(text, add_special_tokens=False).ids
        tok.encode_special_tokens = False
        lines.append({"text": text, "ids": e.ids, "plain": plain, "decoded": tok.decode(e.ids, skip_special_tokens=False),
                      "framed": framed.ids, "framed_types": framed.type_ids})
    for a, b in pairs(all_texts):
        with_specials, without = tok.encode(a, b), tok.encode(a, b, add_special_tokens=False)
        lines.append({"text": a, "text_b": b, "pair_ids": with_specials.ids, "pair_types": with_specials.type_ids,
                      "pair_plain": without.ids, "pair_plain_types": without.type_ids})
    return lines


def write_expected(tok, all_texts, path):
    with open(path, "w", encoding="utf-8") as f:
        for line in expected(tok, all_texts):
            f.write(json.dumps(line) + "\n")


def main():
    if sys.argv[1] == "--expected":
        shared, tok_path, out_path = sys.argv[2:5]
        write_expected(Tokenizer.from_file(tok_path), texts(shared), out_path)
        return 0
    if sys.argv[1] == "--same":
        shared, a_path, b_path = sys.argv[2:5]
        a, b = Tokenizer.from_file(a_path), Tokenizer.from_file(b_path)
        la, lb = expected(a, texts(shared)), expected(b, texts(shared))
        bad = [x["text"][:60] for x, y in zip(la, lb) if x != y]
        print("%s: %d lines, %d differ from %s %s" % (b_path, len(la), len(bad), a_path, bad[:3]))
        return 1 if bad else 0
    shared, out = sys.argv[1], sys.argv[2]
    all_texts = texts(shared)
    written = []
    kinds = build(shared)
    for name, tok in kinds.items():
        folder = os.path.join(out, name)
        os.makedirs(folder, exist_ok=True)
        tok.save(os.path.join(folder, "tokenizer.json"))
        written.append(name)
    if transformers_bert(kinds["bert_uncased"], out):
        written.append("tf_bert")
    for name in written:
        folder = os.path.join(out, name)
        write_expected(Tokenizer.from_file(os.path.join(folder, "tokenizer.json")), all_texts,
                       os.path.join(folder, "expected.jsonl"))
    with open(os.path.join(out, "kinds.txt"), "w") as f:
        f.write("\n".join(written) + "\n")
    print("wrote %d kinds to %s" % (len(written), out))
    return 0


sys.exit(main())
