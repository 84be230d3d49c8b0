#!/usr/bin/env python3
"""Checks that `ctrain export gguf` writes what llama.cpp's own convert_hf_to_gguf.py writes for
the same model: the script (from the llama.cpp source tree, with its own gguf-py) converts
`ctrain export hf` of the checkpoint, and the two files must have the same tensors (names, ggml
types, shapes, and values bit for bit), the same model keys and the same tokenizer arrays.

usage: check_gguf_convert.py OURS.gguf HF_DIR LLAMA_CPP_SRC PRE_TOKENIZER f32|f16

Two things are given to the convert script rather than found: the pre-tokenizer name (it knows
vocabularies by a hash of how they split a test text; the fixtures' vocabularies are not
published ones), and an empty `sentencepiece` module (it imports it before it looks for a
tokenizer.model, which a byte-level vocabulary does not have).

Keys only one side writes are allowed when they are informational (general.*: name, size label,
type, quantization version, alignment), say what llama.cpp assumes anyway (ctrain writes
tokenizer.ggml.add_bos_token, the script leaves it out), or are derived the same way by
llama.cpp when absent
(ARCH.rope.dimension_count = key_length, ARCH.vocab_size = the token list's length,
ARCH.attention.key_length/value_length = embedding_length / head_count); every other key in
either file must be in both with the same value. Prints "SKIP: ..." and exits 0 when the
convert script cannot run here (no torch, numpy or llama.cpp source).
"""
import importlib.machinery
import os
import runpy
import sys
import types


def convert(hf_dir, src, pre, outtype, out):
    sys.path.insert(0, src)
    sys.path.insert(0, os.path.join(src, "gguf-py"))
    stub = types.ModuleType("sentencepiece")
    stub.SentencePieceProcessor = None
    stub.__spec__ = importlib.machinery.ModuleSpec("sentencepiece", None)
    sys.modules["sentencepiece"] = stub
    try:
        import torch  # noqa: F401  (the convert script needs it)
        import conversion.base as base
    except ImportError as e:
        print("SKIP: the convert script cannot run here (%s)" % e)
        sys.exit(0)
    base.TextModel.get_vocab_base_pre = lambda self, tokenizer: pre
    argv = sys.argv
    sys.argv = [os.path.join(src, "convert_hf_to_gguf.py"), hf_dir, "--outfile", out, "--outtype", outtype]
    try:
        runpy.run_path(sys.argv[0], run_name="__main__")
    except SystemExit as e:
        if e.code:
            print("convert_hf_to_gguf.py failed (%s)" % e.code)
            sys.exit(1)
    sys.argv = argv


def derived(arch, key, fields):
    """The value llama.cpp derives for a key when the file leaves it out (None: not derived)."""
    get = lambda k: fields[k].contents() if k in fields else None  # noqa: E731
    C, NH = get(arch + ".embedding_length"), get(arch + ".attention.head_count")
    HD = get(arch + ".attention.key_length") or (C // NH if C and NH else None)
    if key in (arch + ".attention.key_length", arch + ".attention.value_length", arch + ".rope.dimension_count"):
        return HD
    if key == arch + ".vocab_size":
        return len(fields["tokenizer.ggml.tokens"].contents())
    return None


def main(ours_path, hf_dir, src, pre, outtype):
    if not os.path.isfile(os.path.join(src, "convert_hf_to_gguf.py")):
        print("SKIP: no convert_hf_to_gguf.py in %s" % src)
        return 0
    theirs_path = ours_path + ".convert.gguf"
    convert(hf_dir, src, pre, outtype, theirs_path)
    import numpy as np
    from gguf import GGUFReader
    ours, theirs = GGUFReader(ours_path), GGUFReader(theirs_path)
    bad = []
    a = {t.name: t for t in ours.tensors}
    b = {t.name: t for t in theirs.tensors}
    for name in sorted(set(a) ^ set(b)):
        bad.append("tensor %s only in %s" % (name, "ctrain's" if name in a else "the convert script's"))
    for name in sorted(set(a) & set(b)):
        x, y = a[name], b[name]
        if list(x.shape) != list(y.shape) or x.tensor_type != y.tensor_type:
            bad.append("%s: %s %s against %s %s" % (name, x.tensor_type.name, list(map(int, x.shape)),
                                                    y.tensor_type.name, list(map(int, y.shape))))
        elif not np.array_equal(np.asarray(x.data).view(np.uint8), np.asarray(y.data).view(np.uint8)):
            bad.append("%s: values differ" % name)
    arch = ours.fields["general.architecture"].contents()
    fa, fb = ours.fields, theirs.fields
    model_keys = lambda f: {k for k in f if not k.startswith(("GGUF.", "general."))}  # noqa: E731
    optional = {"tokenizer.ggml.add_bos_token", "tokenizer.ggml.add_eos_token"}
    for key in sorted(model_keys(fa) | model_keys(fb) | {"general.architecture", "general.file_type"}):
        va = fa[key].contents() if key in fa else None
        vb = fb[key].contents() if key in fb else None
        if (va is None or vb is None) and key in optional:
            continue
        if va is None or vb is None:
            present, fields = (va, fa) if vb is None else (vb, fb)
            if derived(arch, key, fa if vb is None else fb) != present:
                bad.append("key %s only in %s (%r)" % (key, "ctrain's" if vb is None else "the convert script's",
                                                       present))
        elif va != vb and not (isinstance(va, float) and abs(va - vb) <= 1e-6 * abs(vb)):
            bad.append("key %s: %r against %r" % (key, va, vb))
    print("gguf %s (%s, %s) against convert_hf_to_gguf.py: %d tensors, %d keys compared, %d differences"
          % (ours_path, arch, outtype, len(a), len(model_keys(fa) | model_keys(fb)), len(bad)))
    for line in bad[:20]:
        print("  " + line)
    return 1 if bad else 0


if __name__ == "__main__":
    if len(sys.argv) != 6:
        print(__doc__)
        sys.exit(2)
    sys.exit(main(*sys.argv[1:]))
