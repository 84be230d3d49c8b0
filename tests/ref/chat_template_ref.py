#!/usr/bin/env python3
"""Reference side of tests/test_chat_jinja.c: transformers' apply_chat_template on the models'
own chat templates (tests/data/chat_templates/*.jinja).

usage: chat_template_ref.py TEMPLATE_DIR OUT.json [TOKENIZER_DIR]
    For each family (a template file, and the bos/eos token strings of its model) builds a
    tokenizer locally (PreTrainedTokenizerFast on a word-level `tokenizers` object: nothing is
    downloaded; the template's rendering does not depend on the vocabulary), and renders every
    conversation of CONVERSATIONS with add_generation_prompt off and on, as
    apply_chat_template(..., tokenize=False). Writes a JSON object: "conversations" (the
    messages), "families" (name, file, bos, eos), "renders" (family, conversation,
    add_generation_prompt, and "text", or "error" when the template refuses the conversation)
    and "masks": where TRL ships a {% generation %} variant of the family's template
    (trl/chat_templates/*_training.jinja, in the installed package) that renders a conversation
    to the same text as the original, the assistant spans transformers' return_assistant_tokens_mask
    is made from (UTF-8 byte offsets [start, end); touching spans merged).
    With TOKENIZER_DIR, each family whose TOKENIZER_DIR/<family>.json exists (a tokenizer.json
    ctrain wrote) is tokenized too: each render gets "ids", apply_chat_template(tokenize=True).

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
    ("llama3", "<|begin_of_text|>", "<|eot_id|>"),
    ("llama3.1", "<|begin_of_text|>", "<|eot_id|>"),
    ("llama3.2", "<|begin_of_text|>", "<|eot_id|>"),
    ("qwen2.5", None, "<|im_end|>"),
    ("qwen3", None, "<|im_end|>"),
    ("mistral-v1", "<s>", "</s>"),
    ("mistral-v3", "<s>", "</s>"),
    ("mistral-nemo", "<s>", "</s>"),
    ("gemma2", "<bos>", "<eos>"),
    ("gemma3", "<bos>", "<eos>"),
    ("phi3", "<s>", "<|endoftext|>"),
    ("phi3.5", "<s>", "<|endoftext|>"),
]


TRAINING = {"llama3": "llama3_training", "qwen2.5": "qwen2_5_training", "qwen3": "qwen3_training",
            "gemma2": "gemma_training", "gemma3": "gemma3_training", "phi3": "phi3_training",
            "phi3.5": "phi3_5_training"}


def training_template(family):
    if family not in TRAINING:
        return None
    try:
        import trl
    except ImportError:
        return None
    path = os.path.join(os.path.dirname(trl.__file__), "chat_templates", TRAINING[family] + ".jinja")
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as f:
        return f.read()


def generation_spans(template, conv, bos, eos, expected_text):
    """transformers' assistant spans of `conv` under a {% generation %} template, in UTF-8 bytes."""
    from transformers.utils.chat_template_utils import render_jinja_template
    kwargs = {k: v for k, v in (("bos_token", bos), ("eos_token", eos)) if v is not None}
    try:
        rendered, indices = render_jinja_template(conversations=[conv], chat_template=template,
                                                  return_assistant_tokens_mask=True, **kwargs)
    except Exception:
        return None
    text = rendered[0]
    if text != expected_text:
        return None
    spans = []
    for start, end in indices[0]:
        b0, b1 = len(text[:start].encode("utf-8")), len(text[:end].encode("utf-8"))
        if spans and spans[-1][1] == b0:
            spans[-1][1] = b1
        else:
            spans.append([b0, b1])
    return spans


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
    [m("user", "\u3000wide\u00a0"), m("assistant", "\u2003answer\u00a0\n")],
]


def main():
    template_dir, out_path = sys.argv[1], sys.argv[2]
    tokenizer_dir = sys.argv[3] if len(sys.argv) > 3 else None
    vocab = {"[UNK]": 0}
    renders, families, masks = [], [], []
    for name, bos, eos in FAMILIES:
        path = os.path.join(template_dir, name + ".jinja")
        with open(path, encoding="utf-8") as f:
            template = f.read()
        tok = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.WordLevel(vocab, unk_token="[UNK]")),
                                      bos_token=bos, eos_token=eos, unk_token="[UNK]")
        tok.chat_template = template
        real = None
        if tokenizer_dir and os.path.exists(os.path.join(tokenizer_dir, name + ".json")):
            real = PreTrainedTokenizerFast(tokenizer_file=os.path.join(tokenizer_dir, name + ".json"),
                                           bos_token=bos, eos_token=eos)
            real.chat_template = template
        families.append({"name": name, "file": name + ".jinja", "bos": bos, "eos": eos})
        for ci, conv in enumerate(CONVERSATIONS):
            for agp in (False, True):
                r = {"family": name, "conversation": ci, "add_generation_prompt": agp}
                try:
                    r["text"] = tok.apply_chat_template(conv, tokenize=False, add_generation_prompt=agp)
                    if real is not None:
                        ids = real.apply_chat_template(conv, tokenize=True, add_generation_prompt=agp)
                        r["ids"] = list(ids["input_ids"] if hasattr(ids, "keys") else ids)
                except Exception as e:  # the template's raise_exception, or a Jinja error
                    r["error"] = "%s: %s" % (type(e).__name__, e)
                renders.append(r)
                training = training_template(name)
                if training and not agp and "text" in r:
                    spans = generation_spans(training, conv, bos, eos, r["text"])
                    if spans is not None:
                        masks.append({"family": name, "conversation": ci, "spans": spans})
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump({"conversations": CONVERSATIONS, "families": families, "renders": renders, "masks": masks}, f, ensure_ascii=False,
                  indent=1)


if __name__ == "__main__":
    main()
