#!/usr/bin/env python3
"""Reference side of ctrain's prompt-learning adapter test (tests/test_peft_ref.c).

usage:
  peft_prompt_ref.py BASE_DIR ADAPTER_DIR TOKENS OUT PEFT_ADAPTER_DIR PEFT_OUT TYPE V [PROJECTION]
      (1) Loads the Hugging Face model BASE_DIR (ctrain export hf), puts ctrain's adapter folder
      ADAPTER_DIR on it with peft.PeftModel.from_pretrained and writes the fp32 logits [T, vocab]
      of the real tokens (PEFT's output has V + T rows for the prompt kinds: the virtual tokens'
      come first; T for prefix tuning, whose virtual tokens are a past_key_values) of the int32
      tokens in TOKENS to OUT.
      (2) Makes an adapter of TYPE (PROMPT_TUNING: PromptTuningConfig, random init; P_TUNING:
      PromptEncoderConfig, MLP of hidden size 16, or with PROJECTION 1 its LSTM of hidden size 8
      and 2 layers; PREFIX_TUNING: PrefixTuningConfig, with
      prefix_projection PROJECTION (0/1) of hidden size 16) with V virtual tokens with peft itself
      (get_peft_model, seeded), writes the training-mode model's logits of the real tokens to
      PEFT_OUT and saves the adapter with save_pretrained to PEFT_ADAPTER_DIR (for P_TUNING and a
      projected prefix PEFT saves the encoder's output as prompt_embeddings): ctrain must read it
      to the same logits. For the LSTM it also saves the untrained encoder's state_dict (PyTorch's
      names: embedding.weight, lstm_head.weight_ih_l0, ..., mlp_head.2.bias) to
      PEFT_ADAPTER_DIR/encoder.safetensors: ctrain loads it and must compute the prompt_embeddings
      PEFT saved (the one check of the LSTM's math itself: the folder holds only its output).

Where torch, transformers or peft is not importable it prints "SKIP: ..." and exits 0.
"""
import sys

try:
    import torch
    import peft
    from peft_ref import base, read_ints, write_floats  # tests/ref/peft_ref.py: the LoRA side's helpers
except ImportError as e:
    print("SKIP: the Python module %s is not importable (pip install torch transformers peft)" % e.name)
    sys.exit(0)


def real_logits(model, tokens, v):
    """v: the rows before the real tokens' in the output (0 for prefix tuning)."""
    with torch.no_grad():
        out = model(input_ids=torch.tensor([tokens], dtype=torch.long)).logits[0]
    assert out.shape[0] == len(tokens) + v, out.shape
    return out[v:]


def main():
    base_dir, adapter_dir, tokens_path, out, peft_adapter_dir, peft_out, kind, v = sys.argv[1:9]
    projection = len(sys.argv) > 9 and sys.argv[9] == "1"
    v = int(v)
    rows_before = 0 if kind == "PREFIX_TUNING" else v
    tokens = read_ints(tokens_path)
    model = peft.PeftModel.from_pretrained(base(base_dir), adapter_dir).eval()
    write_floats(out, real_logits(model, tokens, rows_before))

    torch.manual_seed(27)
    if kind == "PROMPT_TUNING":
        cfg = peft.PromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=v)
    elif kind == "PREFIX_TUNING":
        cfg = peft.PrefixTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=v, prefix_projection=projection,
                                      encoder_hidden_size=16)
    elif projection:
        cfg = peft.PromptEncoderConfig(task_type="CAUSAL_LM", num_virtual_tokens=v, encoder_hidden_size=8,
                                       encoder_reparameterization_type="LSTM", encoder_num_layers=2)
    else:
        cfg = peft.PromptEncoderConfig(task_type="CAUSAL_LM", num_virtual_tokens=v, encoder_hidden_size=16)
    made = peft.get_peft_model(base(base_dir), cfg)
    made.eval()  # no dropout; the prompt encoder still runs (inference_mode is False)
    write_floats(peft_out, real_logits(made, tokens, rows_before))
    made.save_pretrained(peft_adapter_dir)
    if kind == "P_TUNING" and projection:
        from safetensors.torch import save_file
        enc = made.prompt_encoder["default"].state_dict()
        save_file({k: t.detach().contiguous().float() for k, t in enc.items()}, peft_adapter_dir + "/encoder.safetensors")


if __name__ == "__main__":
    main()
