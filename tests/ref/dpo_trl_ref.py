#!/usr/bin/env python3
"""Reference side of ctrain's DPO test against TRL (tests/test_dpo_ref.c).

usage: dpo_trl_ref.py CTRAIN DIR [plain|chat]

DIR holds tok.json, a byte-level BPE tokenizer.json with <|endoftext|> (the C test trains it with
ctrain). The script makes a small random LlamaForCausalLM with transformers, saves it with the
tokenizer and imports it with `ctrain import hf`; shards PAIRS with `ctrain shard --format dpo`:
plain strings (among them prompts whose last token merges with the completion's first), or with
`chat` the same as message lists, the tokenizer given ChatML's tokens and template (ctrain's
built-in `chatml`);
trains STEPS steps of sigmoid DPO with `ctrain dpo` and the same steps with TRL's DPOTrainer
(same weights, data, batch, learning rate, AdamW, clipping, beta); and checks that every
step's TRL metrics (loss, rewards/chosen, rewards/rejected, rewards/margins,
rewards/accuracies, logps/chosen, logps/rejected) equal the row of that step in ctrain's
metrics.jsonl. It also checks that ctrain's dataset keeps the tokenizer's vocabulary and
that ctrain shard warns where TRL warns (a prompt that is not a prefix of prompt+completion).

Where torch, transformers, datasets or trl is not importable it prints "SKIP: ..." and exits 0,
so the C test skips with the reason.
"""
import json
import logging
import math
import os
import subprocess
import sys

try:
    import torch
    import transformers
    import datasets
    import trl
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast
    from trl import DPOConfig, DPOTrainer
except ImportError as e:
    print("SKIP: the Python module %s is not importable (make test-ref, or pip install torch transformers "
          "datasets trl)" % e.name)
    sys.exit(0)

STEPS = 3
PAIRS = [
    {"prompt": "List: apple pear plum\nReversed:", "chosen": " plum pear apple", "rejected": " apple pear plum"},
    {"prompt": "List: grape lemon\nReversed:", "chosen": " lemon grape", "rejected": " grape lemon"},
    {"prompt": "Say hello ", "chosen": "world", "rejected": "there"},  # " world": merges across the boundary
    {"prompt": "The sky is", "chosen": " blue", "rejected": " green<|endoftext|>"},  # ends with EOS: no second one
    {"prompt": "Question: what is two plus two?\nAnswer:", "chosen": " four", "rejected": " five"},
    {"prompt": "List: mango peach orange\nReversed:", "chosen": " orange peach mango", "rejected": " mango orange"},
    {"prompt": "Complete: the quick brown fo", "chosen": "x jumps", "rejected": "ol runs"},  # merges too
    {"prompt": "Translate to French: cat\n", "chosen": "chat", "rejected": "chien"},
]
CHATML = ("{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + "
          "'<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")
KEYS = ["loss", "rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies", "logps/chosen",
        "logps/rejected"]


def run(cmd):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if p.returncode != 0:
        sys.exit("%s failed (%d):\n%s" % (" ".join(cmd), p.returncode, p.stdout))
    return p.stdout


def main():
    ctrain, d = sys.argv[1], sys.argv[2]
    chat = len(sys.argv) > 3 and sys.argv[3] == "chat"
    tok = PreTrainedTokenizerFast(tokenizer_file=os.path.join(d, "tok.json"), eos_token="<|endoftext|>",
                                  pad_token="<|endoftext|>")
    pairs = PAIRS
    if chat:  # message lists through ChatML (content is never parsed for special tokens by ctrain: none here)
        tok.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|im_end|>"]})
        tok.chat_template = CHATML
        pairs = [{"prompt": [{"role": "user", "content": p["prompt"]}],
                  "chosen": [{"role": "assistant", "content": p["chosen"].replace("<|endoftext|>", "")}],
                  "rejected": [{"role": "assistant", "content": p["rejected"].replace("<|endoftext|>", "")}]}
                 for p in PAIRS]
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64, rms_norm_eps=1e-5,
                         initializer_range=0.1, tie_word_embeddings=False, eos_token_id=tok.eos_token_id,
                         pad_token_id=tok.pad_token_id, bos_token_id=None)
    hf_dir = os.path.join(d, "hf")
    LlamaForCausalLM(config).to(torch.float32).save_pretrained(hf_dir)
    tok.save_pretrained(hf_dir)
    run([ctrain, "import", "hf", hf_dir, "--out", os.path.join(d, "init.h5")])

    with open(os.path.join(d, "pairs.jsonl"), "w") as f:
        for p in pairs:
            f.write(json.dumps(p) + "\n")
    # The tokenizer as transformers saved it (with chat: ChatML's tokens already there).
    out = run([ctrain, "shard", "--tokenizer", os.path.join(hf_dir, "tokenizer.json"), "--input",
               os.path.join(d, "pairs.jsonl"), "--format", "dpo", "--val-fraction", "0", "--threads", "1", "--out",
               os.path.join(d, "pairs")])
    if not chat and "not a prefix" not in out:
        sys.exit("ctrain shard gave no warning for prompts whose tokens merge with the completion:\n" + out)
    vocab = len(PreTrainedTokenizerFast(tokenizer_file=os.path.join(d, "pairs", "tokenizer.json")))
    if vocab != len(tok):
        sys.exit("ctrain shard changed the vocabulary of plain-string pairs: %d tokens, the tokenizer has %d"
                 % (vocab, len(tok)))

    lr, beta = 1e-3, 0.1
    run_config = {
        "data": {"path": os.path.join(d, "pairs")},
        "train": {"batch_size": len(pairs), "seq_len": 64, "max_steps": STEPS, "eval_every": 0, "save_every": 0,
                  "eval_exact_match": 0, "init_from": os.path.join(d, "init.h5")},
        "optim": {"lr": lr, "min_lr": lr, "warmup_steps": 0, "weight_decay": 0.0, "beta1": 0.9, "beta2": 0.999,
                  "eps": 1e-8, "grad_clip": 1.0},
        "dpo": {"loss": "sigmoid", "beta": beta},
    }
    with open(os.path.join(d, "dpo.json"), "w") as f:
        json.dump(run_config, f)
    run([ctrain, "dpo", os.path.join(d, "dpo.json"), "--run.out_dir=" + os.path.join(d, "run"), "--run.threads=1"])
    ours = {}
    with open(os.path.join(d, "run", "metrics.jsonl")) as f:
        for line in f:
            row = json.loads(line)
            if row["kind"] == "train":
                ours.setdefault(row["step"], {}).update(row)

    # TRL: the same model, pairs, batch (all pairs in every step) and optimizer.
    model = LlamaForCausalLM.from_pretrained(hf_dir, dtype=torch.float32)
    args = DPOConfig(output_dir=os.path.join(d, "trl"), per_device_train_batch_size=len(pairs), max_steps=STEPS,
                     learning_rate=lr, lr_scheduler_type="constant", warmup_steps=0, weight_decay=0.0,
                     adam_beta1=0.9, adam_beta2=0.999, adam_epsilon=1e-8, max_grad_norm=1.0, beta=beta,
                     loss_type=["sigmoid"], logging_steps=1, report_to=[], save_strategy="no", use_cpu=True, seed=0,
                     bf16=False, fp16=False, max_length=None, dataset_num_proc=None)
    trainer = DPOTrainer(model=model, args=args, train_dataset=datasets.Dataset.from_list(pairs), processing_class=tok)
    trainer.train()
    theirs = {h["step"]: h for h in trainer.state.log_history if "rewards/chosen" in h}

    worst = 0.0
    for step in range(1, STEPS + 1):
        if step not in theirs or step not in ours:
            sys.exit("step %d: TRL logged %s, ctrain %s" % (step, sorted(theirs), sorted(ours)))
        for key in KEYS:
            a, b = ours[step].get(key), theirs[step].get(key)
            if a is None or b is None:
                sys.exit("step %d: %s missing (ctrain %r, TRL %r)" % (step, key, a, b))
            diff = abs(a - b) / max(1.0, abs(b))
            worst = max(worst, diff)
            print("step %d %-19s ctrain % .8f  TRL % .8f  diff %.1e" % (step, key, a, b, abs(a - b)))
            if diff > 2e-5:
                sys.exit("step %d: %s differs: ctrain %.9g, TRL %.9g" % (step, key, a, b))
    print("DPO metrics of %s pairs equal TRL %s's over %d steps (largest relative difference %.1e; torch %s, "
          "transformers %s)" % ("chat" if chat else "plain-string", trl.__version__, STEPS, worst, torch.__version__,
                                transformers.__version__))


if __name__ == "__main__":
    logging.disable(logging.WARNING)
    main()
