#!/usr/bin/env python3
"""Writes GPT-2 as Hugging Face `tokenizers` itself saves it (merges as [a, b] pairs in recent
versions, ByteLevel pre-tokenizer, post-processor and decoder, <|endoftext|> as an added token),
built from ../shared/data/tokenizers/gpt2/encoder.json + vocab.bpe, so ctrain's tokenizer.json
reader is tested on HF's own writer.

usage: make_hf_gpt2.py SHARED_DIR OUT.json     (exit 77 when `tokenizers` is absent)"""
import sys

try:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
except ImportError:
    print("the Python module `tokenizers` is absent (pip install tokenizers)")
    sys.exit(77)

shared, out = sys.argv[1], sys.argv[2]
d = shared + "/tokenizers/gpt2"
tok = Tokenizer(models.BPE.from_file(d + "/encoder.json", d + "/vocab.bpe"))
tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
tok.decoder = decoders.ByteLevel()
tok.post_processor = processors.ByteLevel(trim_offsets=False)
tok.add_special_tokens(["<|endoftext|>"])
tok.save(out)
