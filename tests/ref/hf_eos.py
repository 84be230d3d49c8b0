#!/usr/bin/env python3
"""Reference side of tests/test_generate.c's EOS import check.

usage: hf_eos.py DIR
    Saves two small random LlamaForCausalLM models with save_pretrained: DIR/list with
    eos_token_id [257, 258] in its config (Llama 3's shape of the key), DIR/override whose
    generation_config names [259, 257] over the config's list. Loads each back with
    from_pretrained and prints, per model, "NAME ids" with model.generation_config.eos_token_id:
    the ids transformers' generate stops at, which ctrain's import must keep.

Where torch or transformers is not importable it prints "SKIP: ..." and exits 0.
"""
import os
import sys

try:
    import torch  # noqa: F401
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM
except ImportError as e:
    print("SKIP: the Python module %s is not importable (pip install torch transformers)" % e.name)
    sys.exit(0)


def main():
    out = sys.argv[1]
    config = LlamaConfig(vocab_size=300, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                         bos_token_id=256, eos_token_id=[257, 258], tie_word_embeddings=False)
    model = LlamaForCausalLM(config)
    model.save_pretrained(os.path.join(out, "list"))
    model.generation_config = GenerationConfig(bos_token_id=256, eos_token_id=[259, 257])
    model.save_pretrained(os.path.join(out, "override"))
    for name in ("list", "override"):
        loaded = LlamaForCausalLM.from_pretrained(os.path.join(out, name))
        eos = loaded.generation_config.eos_token_id
        eos = eos if isinstance(eos, list) else [eos]
        print("%s %s" % (name, ",".join(str(i) for i in eos)))


if __name__ == "__main__":
    main()
