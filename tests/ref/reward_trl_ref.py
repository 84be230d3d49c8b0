#!/usr/bin/env python3
"""Reference side of ctrain's reward model test against TRL (tests/test_reward_ref.c).

usage: reward_trl_ref.py CTRAIN DIR [margins|plain]

DIR holds tok.json, a byte-level BPE tokenizer.json with <|endoftext|> (the C test trains it with
ctrain). The script makes a small random LlamaForSequenceClassification (one label, the EOS as its
pad token) with transformers, saves it with the tokenizer and imports it with `ctrain import hf`;
shards PAIRS (plain strings) with `ctrain shard --format dpo`, with `margins` each with its
"margin" field (TRL's RewardTrainer column); trains STEPS steps with `ctrain reward` (centering
coefficient 0.01) and the same steps with TRL's RewardTrainer (same weights, data, batch, learning
rate, AdamW, clipping, centering); and checks that every step's TRL metrics (loss, accuracy,
margin, mean_reward, min_reward, max_reward) equal the row of that step in ctrain's metrics.jsonl.

Where torch, transformers, datasets or trl is not importable it prints "SKIP: ..." and exits 0,
so the C test skips with the reason.
"""
import json
import logging
import os
import subprocess
import sys

try:
    import torch
    import transformers
    import datasets
    import trl
    from transformers import LlamaConfig, LlamaForSequenceClassification, PreTrainedTokenizerFast
    from trl import RewardConfig, RewardTrainer
except ImportError as e:
    print("SKIP: the Python module %s is not importable (make test-ref, or pip install torch transformers "
          "datasets trl)" % e.name)
    sys.exit(0)

STEPS = 3
CENTER = 0.01
# margins of both signs, 0, and one that is not a float32 (TRL rounds it; ctrain keeps the double)
PAIRS = [
    {"prompt": "List: apple pear plum\nReversed:", "chosen": " plum pear apple", "rejected": " apple pear plum",
     "margin": 1.5},
    {"prompt": "List: grape lemon\nReversed:", "chosen": " lemon grape", "rejected": " grape lemon", "margin": 0.0},
    {"prompt": "Say hello ", "chosen": "world", "rejected": "there", "margin": -0.75},  # " world": merges
    {"prompt": "The sky is", "chosen": " blue", "rejected": " green<|endoftext|>", "margin": 3.0},  # ends with EOS
    {"prompt": "Question: what is two plus two?\nAnswer:", "chosen": " four", "rejected": " five", "margin": 0.1},
    {"prompt": "List: mango peach orange\nReversed:", "chosen": " orange peach mango", "rejected": " mango orange",
     "margin": 2.25},
    {"prompt": "Complete: the quick brown fo", "chosen": "x jumps", "rejected": "ol runs", "margin": 0.5},
    {"prompt": "Translate to French: cat\n", "chosen": "chat", "rejected": "chien", "margin": -1.0},
]
KEYS = ["loss", "accuracy", "margin", "mean_reward", "min_reward", "max_reward"]


def run(cmd):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if p.returncode != 0:
        sys.exit("%s failed (%d):\n%s" % (" ".join(cmd), p.returncode, p.stdout))
    return p.stdout


def main():
    ctrain, d = sys.argv[1], sys.argv[2]
    with_margins = len(sys.argv) <= 3 or sys.argv[3] == "margins"
    pairs = PAIRS if with_margins else [{k: v for k, v in p.items() if k != "margin"} for p in PAIRS]
    tok = PreTrainedTokenizerFast(tokenizer_file=os.path.join(d, "tok.json"), eos_token="<|endoftext|>",
                                  pad_token="<|endoftext|>")
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64, rms_norm_eps=1e-5,
                         initializer_range=0.1, tie_word_embeddings=False, eos_token_id=tok.eos_token_id,
                         pad_token_id=tok.pad_token_id, bos_token_id=None, num_labels=1)
    hf_dir = os.path.join(d, "hf")
    LlamaForSequenceClassification(config).to(torch.float32).save_pretrained(hf_dir)
    tok.save_pretrained(hf_dir)
    run([ctrain, "import", "hf", hf_dir, "--out", os.path.join(d, "init.h5")])

    with open(os.path.join(d, "pairs.jsonl"), "w") as f:
        for p in pairs:
            f.write(json.dumps(p) + "\n")
    out = run([ctrain, "shard", "--tokenizer", os.path.join(hf_dir, "tokenizer.json"), "--input",
               os.path.join(d, "pairs.jsonl"), "--format", "dpo", "--val-fraction", "0", "--threads", "1", "--out",
               os.path.join(d, "pairs")])
    if with_margins != ("carry a 'margin'" in out):
        sys.exit("ctrain shard %s margins:\n%s" % ("did not see the" if with_margins else "saw", out))

    lr = 1e-3
    run_config = {
        "data": {"path": os.path.join(d, "pairs")},
        "train": {"batch_size": len(pairs), "seq_len": 64, "max_steps": STEPS, "eval_every": 0, "save_every": 0,
                  "eval_exact_match": 0, "init_from": os.path.join(d, "init.h5")},
        "optim": {"lr": lr, "min_lr": lr, "warmup_steps": 0, "weight_decay": 0.0, "beta1": 0.9, "beta2": 0.999,
                  "eps": 1e-8, "grad_clip": 1.0},
        "reward": {"center_rewards_coefficient": CENTER},
    }
    with open(os.path.join(d, "reward.json"), "w") as f:
        json.dump(run_config, f)
    out = run([ctrain, "reward", os.path.join(d, "reward.json"), "--run.out_dir=" + os.path.join(d, "run"),
               "--run.threads=1"])
    if with_margins != ("the pairs carry margins" in out):
        sys.exit("ctrain reward %s margins:\n%s" % ("did not use the" if with_margins else "used", out))
    ours = {}
    with open(os.path.join(d, "run", "metrics.jsonl")) as f:
        for line in f:
            row = json.loads(line)
            if row["kind"] == "train":
                ours.setdefault(row["step"], {}).update(row)

    # TRL: the same model, pairs, batch (all pairs in every step), optimizer and centering.
    model = LlamaForSequenceClassification.from_pretrained(hf_dir, dtype=torch.float32)
    args = RewardConfig(output_dir=os.path.join(d, "trl"), per_device_train_batch_size=len(pairs), max_steps=STEPS,
                        learning_rate=lr, lr_scheduler_type="constant", warmup_steps=0, weight_decay=0.0,
                        adam_beta1=0.9, adam_beta2=0.999, adam_epsilon=1e-8, max_grad_norm=1.0,
                        center_rewards_coefficient=CENTER, logging_steps=1, report_to=[], save_strategy="no",
                        use_cpu=True, seed=0, bf16=False, fp16=False, max_length=None, dataset_num_proc=None)
    trainer = RewardTrainer(model=model, args=args, train_dataset=datasets.Dataset.from_list(pairs),
                            processing_class=tok)
    # TRL's collator hands the loss the column only when the examples have it
    collated = trainer.data_collator([trainer.train_dataset[i] for i in range(2)])
    if with_margins != ("margin" in collated):
        sys.exit("TRL's batch %s a margin: %s" % ("lacks" if with_margins else "has", sorted(collated)))
    trainer.train()
    theirs = {h["step"]: h for h in trainer.state.log_history if "accuracy" in h}

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
            print("step %d %-12s ctrain % .8f  TRL % .8f  diff %.1e" % (step, key, a, b, abs(a - b)))
            if diff > 2e-5:
                sys.exit("step %d: %s differs: ctrain %.9g, TRL %.9g" % (step, key, a, b))
    print("reward metrics of %s equal TRL %s's RewardTrainer over %d steps (largest relative difference %.1e; torch "
          "%s, transformers %s)" % ("pairs with margins" if with_margins else "pairs without margins", trl.__version__,
                                    STEPS, worst, torch.__version__, transformers.__version__))


if __name__ == "__main__":
    logging.disable(logging.WARNING)
    main()
