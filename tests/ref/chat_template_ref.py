#!/usr/bin/env python3
"""Reference side of tests/test_chat_jinja.c: transformers' apply_chat_template on the models'
own chat templates (tests/data/chat_templates/*.jinja).

usage: chat_template_ref.py TEMPLATE_DIR OUT.json
    For each family (a template file, and the bos/eos token strings of its model) builds a
    tokenizer locally (PreTrainedTokenizerFast on a word-level `tokenizers` object: nothing is
    downloaded; the template's rendering does not depend on the vocabulary), and renders every
    conversation of CONVERSATIONS with add_generation_prompt off and on, as
    apply_chat_template(..., tokenize=False). Writes a JSON object: "conversations" (the
    messages), "families" (name, file, bos, eos) and "renders" (family, conversation,
    add_generation_prompt, and "text", or "error" when the template refuses the conversation).

Where transformers or tokenizers is not importable it prints "SKIP: ..." and exits 0.
"""
import json
import os
import sys

try:
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast
except ImportError as e:
    print("SKIP: the Python module %s is not importable (pip install transformers tokenizers)" % e.name)
    sys.exit(0)

FAMILIES = [  # file, bos, eos: the strings of the model's tokenizer_config.json
    ("llama3.1", "<|begin_of_text|>", "<|eot_id|>"),
    ("llama3.2", "<|begin_of_text|>", "<|eot_id|>"),
    ("qwen2.5", None, "<|im_end|>"),
    ("qwen3", None, "<|im_end|>"),
    ("mistral-nemo", "<s>", "</s>"),
    ("gemma2", "<bos>", "<eos>"),
    ("gemma3", "<bos>", "<eos>"),
    ("phi3", "<s>", "<|endoftext|>"),
    ("phi3.5", "<s>", "<|endoftext|>"),
]


def m(role, content):
    return {"role": role, "content": content}


CONVERSATIONS = [
    [m("system", "You are a terse assistant."), m("user", "What is 2+2?"), m("assistant", "4."),
     m("user", "And 3+3?"), m("assistant", "6.")],
    [m("user", "Hello!"), m("assistant", "Hi, how can I help?")],
    [m("user", "Name a colour."), m("assistant", "Blue."), m("user", "Another one."), m("assistant", "Green.")],
    [m("system", "Answer in French."), m("user", "Good morning.")],
    [m("user", "Tell me a joke.")],
    [m("user", "  spaced out \n"), m("assistant", "\n  trimmed?  \n")],
    [m("user", "Grüße, 世界 🎉"), m("assistant", "<think>\nplan it\n</think>\n\nDone: ✓")],
    [m("system", "S"), m("user", "U1"), m("assistant", "A1"), m("assistant", "A2")],
    [m("user", "Is 'quoted' \"text\" fine?"), m("assistant", "")],
]


def main():
    template_dir, out_path = sys.argv[1], sys.argv[2]
    vocab = {"[UNK]": 0}
    renders, families = [], []
    for name, bos, eos in FAMILIES:
        path = os.path.join(template_dir, name + ".jinja")
        with open(path, encoding="utf-8") as f:
            template = f.read()
        tok = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.WordLevel(vocab, unk_token="[UNK]")),
                                      bos_token=bos, eos_token=eos, unk_token="[UNK]")
        tok.chat_template = template
        families.append({"name": name, "file": name + ".jinja", "bos": bos, "eos": eos})
        for ci, conv in enumerate(CONVERSATIONS):
            for agp in (False, True):
                r = {"family": name, "conversation": ci, "add_generation_prompt": agp}
                try:
                    r["text"] = tok.apply_chat_template(conv, tokenize=False, add_generation_prompt=agp)
                except Exception as e:  # the template's raise_exception, or a Jinja error
                    r["error"] = "%s: %s" % (type(e).__name__, e)
                renders.append(r)
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump({"conversations": CONVERSATIONS, "families": families, "renders": renders}, f, ensure_ascii=False,
                  indent=1)


if __name__ == "__main__":
    main()
