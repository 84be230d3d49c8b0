#!/usr/bin/env python3
"""Reference side of ctrain's LoRA SFT test against TRL and PEFT (tests/test_lora_ref.c).

usage: lora_sft_trl_ref.py CTRAIN DIR llama|gpt2 [grow]

DIR holds tok.json, a byte-level BPE tokenizer.json with <|endoftext|>, <|im_start|> and
<|im_end|> (the C test trains it with ctrain); with `grow`, with <|endoftext|> only: ctrain
shard then adds ChatML's two tokens, ctrain sft grows the base by their rows (the mean of the
old ones), and those rows train beside the adapters (the embedding's, and the head's where
untied) as PEFT's trainable_token_indices on the base after resize_token_embeddings; TRL's
loss then comes from the model's forward (HeadThroughPeftSFTTrainer says why). The script makes a small random LlamaForCausalLM
(or GPT2LMHeadModel) with transformers, saves it with the tokenizer and imports it with
`ctrain import hf`; shards EXAMPLES prompt/response pairs (some with a system message, some
conversations of two assistant turns) with `ctrain shard --format sft` (ChatML); trains STEPS
steps of LoRA SFT with `ctrain sft` (r 8, alpha 16, all-linear, dropout 0; cosine schedule to a
min_lr, weight decay on every A and B, AdamW, gradient clipping, two micro-batches per step, no
packing) and the same steps with TRL's SFTTrainer and a peft LoraConfig of the same values
(assistant_only_loss through a ChatML template whose {% generation %} spans are what ctrain
trains: each assistant content and its <|im_end|>). Then it checks, at every step, TRL's logged
loss, grad_norm and learning rate against ctrain's metrics.jsonl, and after the last step every
lora_A and lora_B tensor of ctrain's `lora export` folder against PEFT's save_pretrained.
A second ctrain run with packing on (all examples packed into one row, one micro-batch a step)
must give the same losses. Clipping must act in some steps and not in others; lora_A must move;
ctrain's initial A must lie in PEFT's range (uniform in +-1/sqrt(in)) with PEFT's spread.
The adapters are compared per tensor as |ctrain - PEFT| / |PEFT| (Frobenius norms), next to PEFT
against itself with the examples drawn in another order: Adam divides each gradient element by
its own size, so float32 rounding of near-zero gradients shows in single elements.

Making both runs see the same data exactly: each optimizer step covers the whole set (batch x
micro-batches = EXAMPLES), so the order each side draws examples in does not matter. Making
them start from the same adapters: PEFT draws A with torch's generator, ctrain with its own, so
a first ctrain run with lr 0 (AdamW then moves nothing) saves ctrain's initial A and B, and TRL's
model gets those values before training (the module sets must be the same: that checks ctrain's
all-linear against PEFT's).

Where torch, transformers, datasets, peft, safetensors or trl is not importable it prints
"SKIP: ..." and exits 0, so the C test skips with the reason.
"""
import json
import logging
import os
import random
import subprocess
import sys

try:
    import torch
    import transformers
    import datasets
    import peft
    import trl
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM, GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM
    from transformers import PreTrainedTokenizerFast
    from trl import SFTConfig, SFTTrainer
except ImportError as e:
    print("SKIP: the Python module %s is not importable (make test-ref, or pip install torch transformers "
          "datasets peft trl)" % e.name)
    sys.exit(0)

STEPS = 8
EXAMPLES = 24
MICRO_BATCH = 12  # two micro-batches per step
SEQ = 64
PACKED_SEQ = 1024  # more than all examples together
# ChatML as ctrain renders it (data/examples/chat_template.c): the assistant's content and its <|im_end|>
# are trained, the newline after it and every other turn are not.
CHATML_TRAINED = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' }}"
    "{% if message['role'] == 'assistant' %}{% generation %}{{ message['content'] + '<|im_end|>' }}"
    "{% endgeneration %}{{ '\\n' }}{% else %}{{ message['content'] + '<|im_end|>' + '\\n' }}{% endif %}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")
WORDS = ["apple", "pear", "plum", "grape", "lemon", "mango", "peach", "cherry", "melon", "kiwi", "fig", "lime"]


def run(cmd):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if p.returncode != 0:
        sys.exit("%s failed (%d):\n%s" % (" ".join(cmd), p.returncode, p.stdout))
    return p.stdout


def make_examples():
    """EXAMPLES lines in ctrain's SFT input formats, and the same as TRL message lists."""
    rng = random.Random(5)
    lines, conversations = [], []
    for i in range(EXAMPLES):
        words = rng.sample(WORDS, rng.randint(2, 4))
        prompt, response = "Reverse: " + " ".join(words), " ".join(reversed(words))
        if i % 6 == 5:  # two assistant turns: both trained
            more = rng.sample(WORDS, 2)
            messages = [{"role": "user", "content": prompt}, {"role": "assistant", "content": response},
                        {"role": "user", "content": "Now sort: " + " ".join(more)},
                        {"role": "assistant", "content": " ".join(sorted(more))}]
            lines.append({"messages": messages})
        elif i % 4 == 1:
            system = "You answer in lower case."
            lines.append({"system": system, "prompt": prompt, "response": response})
            messages = [{"role": "system", "content": system}, {"role": "user", "content": prompt},
                        {"role": "assistant", "content": response}]
        else:
            lines.append({"prompt": prompt, "response": response})
            messages = [{"role": "user", "content": prompt}, {"role": "assistant", "content": response}]
        conversations.append({"messages": messages})
    return lines, conversations


def make_model(arch, tok):
    torch.manual_seed(0)
    if arch == "llama":
        config = LlamaConfig(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                             num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
                             rms_norm_eps=1e-5, initializer_range=0.1, tie_word_embeddings=False,
                             eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, bos_token_id=None)
        return LlamaForCausalLM(config)
    # no dropout (GPT-2's default 0.1 would train differently each pass; ctrain has none in the base)
    config = GPT2Config(vocab_size=len(tok), n_positions=1024, n_embd=64, n_layer=2, n_head=4, initializer_range=0.1,
                        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, eos_token_id=tok.eos_token_id,
                        bos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    return GPT2LMHeadModel(config)


def metrics(path):
    rows = {}
    with open(path) as f:
        for line in f:
            row = json.loads(line)
            if row["kind"] == "train":
                rows.setdefault(row["step"], {}).update(row)
    return rows


def adapter_tensors(folder):
    """name -> tensor, names as PEFT's save_pretrained writes them (without the adapter's name)."""
    return {adapter_name(k): v.float() for k, v in load_file(os.path.join(folder, "adapter_model.safetensors")).items()}


def adapter_name(name):
    """A parameter's name without PEFT's adapter name, as save_pretrained writes it."""
    name = name.replace(".default.", ".")
    return name[:-len(".default")] if name.endswith(".default") else name


def main():
    ctrain, d, arch = sys.argv[1], sys.argv[2], sys.argv[3]
    grow = len(sys.argv) > 4 and sys.argv[4] == "grow"
    tok = PreTrainedTokenizerFast(tokenizer_file=os.path.join(d, "tok.json"),
                                  eos_token="<|endoftext|>" if grow else "<|im_end|>", pad_token="<|endoftext|>")
    hf_dir = os.path.join(d, "hf")
    make_model(arch, tok).to(torch.float32).save_pretrained(hf_dir)
    tok.save_pretrained(hf_dir)
    run([ctrain, "import", "hf", hf_dir, "--out", os.path.join(d, "init.h5")])

    lines, conversations = make_examples()
    with open(os.path.join(d, "sft.jsonl"), "w") as f:
        for line in lines:
            f.write(json.dumps(line) + "\n")
    run([ctrain, "shard", "--tokenizer", os.path.join(hf_dir, "tokenizer.json"), "--input",
         os.path.join(d, "sft.jsonl"), "--format", "sft", "--template", "chatml", "--val-fraction", "0", "--threads",
         "1", "--out", os.path.join(d, "sft")])
    # the dataset's tokenizer: the base's, or (grow) the base's with ChatML's two tokens added
    data_tok = PreTrainedTokenizerFast(tokenizer_file=os.path.join(d, "sft", "tokenizer.json"), eos_token="<|im_end|>",
                                       pad_token="<|endoftext|>")
    data_tok.chat_template = CHATML_TRAINED
    if len(data_tok) != len(tok) + (2 if grow else 0):
        sys.exit("ctrain shard gave %d tokens from the tokenizer's %d (%s)" % (
            len(data_tok), len(tok), "ChatML's two added" if grow else "ChatML's tokens are in it"))

    # clip: between the runs' gradient norms, so that some steps are clipped and some not (an untied
    # head's new rows start with large gradients)
    lr, min_lr, wd, clip = 3e-3, 3e-4, 0.1, 3.0 if grow and arch == "llama" else 1.1
    config = {
        "data": {"path": os.path.join(d, "sft"), "packing": False},
        "train": {"batch_size": MICRO_BATCH, "grad_accum": EXAMPLES // MICRO_BATCH, "seq_len": SEQ,
                  "max_steps": STEPS, "eval_every": 0, "save_every": 0, "eval_exact_match": 0, "n_samples": 0,
                  "init_from": os.path.join(d, "init.h5")},
        "optim": {"schedule": "cosine", "lr": lr, "min_lr": min_lr, "warmup_steps": 0, "weight_decay": wd,
                  "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "grad_clip": clip},
        "lora": {"r": 8, "alpha": 16, "targets": ["all-linear"], "dropout": 0.0},
    }

    def ctrain_sft(name, **changes):
        c = json.loads(json.dumps(config))
        for key, value in changes.items():
            section, field = key.split("__")
            c[section][field] = value
        path = os.path.join(d, name + ".json")
        with open(path, "w") as f:
            json.dump(c, f)
        out = os.path.join(d, name)
        run([ctrain, "sft", path, "--run.out_dir=" + out, "--run.threads=1"])
        return out

    # ctrain's initial adapters: a step at lr 0 moves nothing (run.seed, the same in both runs, draws A).
    init_run = ctrain_sft("run0", train__max_steps=1, optim__lr=0.0, optim__min_lr=0.0, optim__schedule="constant")
    run([ctrain, "lora", "export", os.path.join(init_run, "ckpt-step00000001.h5"), "--out",
         os.path.join(d, "init_adapter")])
    out = ctrain_sft("run")
    run([ctrain, "lora", "export", os.path.join(out, "ckpt-step%08d.h5" % STEPS), "--out",
         os.path.join(d, "ctrain_adapter")])
    ours = metrics(os.path.join(out, "metrics.jsonl"))
    # packed: one row of PACKED_SEQ tokens holds every example (one micro-batch per step)
    packed = metrics(os.path.join(ctrain_sft("packed", data__packing=True, train__batch_size=1, train__grad_accum=1,
                                             train__seq_len=PACKED_SEQ), "metrics.jsonl"))

    init = adapter_tensors(os.path.join(d, "init_adapter"))
    theirs, trl_adapter = train_trl(d, hf_dir, arch, data_tok, len(tok), conversations, init, lr, min_lr, wd, clip, seed=0)

    worst = {"loss": 0.0, "grad_norm": 0.0, "lr": 0.0, "packed": 0.0}
    clipped = 0
    for step in range(1, STEPS + 1):
        if step not in theirs or step not in ours or step not in packed:
            sys.exit("step %d: TRL logged %s, ctrain %s" % (step, sorted(theirs), sorted(ours)))
        pairs = [("loss", ours[step]["loss"], theirs[step]["loss"]),
                 ("grad_norm", ours[step]["grad_norm"], theirs[step]["grad_norm"]),
                 ("lr", ours[step]["lr"], theirs[step]["learning_rate"]),
                 ("packed", packed[step]["loss"], ours[step]["loss"])]
        clipped += theirs[step]["grad_norm"] > clip
        for key, a, b in pairs:
            diff = abs(a - b) / abs(b)
            worst[key] = max(worst[key], diff)
            what = ("ctrain packed", "unpacked") if key == "packed" else ("ctrain", "TRL")
            print("step %d %-9s %s %.9g  %s %.9g  relative difference %.1e" % (step, key, what[0], a, what[1], b, diff))
            if diff > 1e-5:
                sys.exit("step %d: %s differs: %s %.9g, %s %.9g" % (step, key, what[0], a, what[1], b))
    if clipped in (0, STEPS):
        sys.exit("clipping acted in %d of %d steps: pick optim.grad_clip so that both cases occur" % (clipped, STEPS))

    # The adapters. Adam divides each gradient element by its own magnitude, so an element whose
    # gradient is near zero turns float32 rounding into a visible difference: the yardstick is
    # PEFT against itself with the examples drawn in another order (another seed).
    ctrain_adapter = adapter_tensors(os.path.join(d, "ctrain_adapter"))
    _, trl_again = train_trl(d, hf_dir, arch, data_tok, len(tok), conversations, init, lr, min_lr, wd, clip, seed=1)
    if set(ctrain_adapter) != set(trl_adapter):
        sys.exit("the adapters' tensors differ: ctrain %s, PEFT %s" % (sorted(ctrain_adapter), sorted(trl_adapter)))
    worst_w = worst_e = noise_w = noise_e = 0.0
    least_a_moved = 1.0
    for name in sorted(trl_adapter):
        a, b, c = ctrain_adapter[name], trl_adapter[name], trl_again[name]
        if a.shape != b.shape:
            sys.exit("%s: ctrain's shape %s, PEFT's %s" % (name, tuple(a.shape), tuple(b.shape)))
        diff = ((a - b).norm() / b.norm()).item()
        worst_w, noise_w = max(worst_w, diff), max(noise_w, ((c - b).norm() / b.norm()).item())
        worst_e = max(worst_e, ((a - b).abs().max() / b.abs().max()).item())
        noise_e = max(noise_e, ((c - b).abs().max() / b.abs().max()).item())
        if "lora_A" in name:
            least_a_moved = min(least_a_moved, ((b - init[name]).norm() / b.norm()).item())
        if diff > 1e-4:
            sys.exit("%s differs after %d steps: |ctrain - PEFT| / |PEFT| = %.2e (PEFT against itself in another "
                     "order: %.2e)" % (name, STEPS, diff, ((c - b).norm() / b.norm()).item()))
    if least_a_moved < 1e-3:
        sys.exit("training hardly moved a lora_A (%.2e): the comparison would prove little" % least_a_moved)
    print("LoRA SFT of %s (%d adapter tensors) equals TRL %s + PEFT %s over %d steps (clipped in %d): loss within %.1e, "
          "grad_norm %.1e, lr %.1e (relative); adapters within %.1e (|difference| / |PEFT's| per tensor; PEFT "
          "against itself in another order %.1e), largest element %.1e of max |w| (PEFT against itself %.1e); ctrain "
          "packed vs unpacked loss %.1e; torch %s, transformers %s"
          % (arch, len(trl_adapter), trl.__version__, peft.__version__, STEPS, clipped, worst["loss"],
             worst["grad_norm"], worst["lr"], worst_w, noise_w, worst_e, noise_e, worst["packed"], torch.__version__,
             transformers.__version__))


class HeadThroughPeftSFTTrainer(SFTTrainer):
    """SFTTrainer whose loss comes from the model's own forward. TRL 1.16's SFTTrainer computes the
    loss with its fused LM head, which reads lm_head.weight and lm_head.bias directly, past PEFT's
    TrainableTokensWrapper on the head (an untied head's rows, or a tied one's): it stops with
    "'TrainableTokensWrapper' object has no attribute 'bias'". Transformers' Trainer.compute_loss
    runs the PEFT model's forward, which applies the rows, with the same normalisation (summed
    over the step's trained tokens, divided by their count)."""

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        return transformers.Trainer.compute_loss(self, model, inputs, return_outputs=return_outputs,
                                                 num_items_in_batch=num_items_in_batch)


def train_trl(d, hf_dir, arch, tok, base_vocab, conversations, init, lr, min_lr, wd, clip, seed):
    """TRL + PEFT on the same base, conversations, LoRA config, schedule, optimizer and clipping, from
    ctrain's initial adapters `init`; returns the logged rows by step and the trained adapter."""
    model = AutoModelForCausalLM.from_pretrained(hf_dir, dtype=torch.float32)
    new_ids = list(range(base_vocab, len(tok)))
    tied = model.config.tie_word_embeddings
    if new_ids:  # the rows ctrain added train as PEFT's trainable tokens (the head's too where untied)
        # ctrain starts them at the mean of the old rows (transformers' mean_resizing adds a little noise)
        for name, rows in init.items():
            if "trainable_tokens_delta" in name:
                matrix = (model.get_output_embeddings() if "lm_head" in name else model.get_input_embeddings()).weight
                mean = matrix.detach()[:base_vocab].double().mean(0).float()
                if rows.shape[0] != len(new_ids) or (rows - mean).abs().max() > 1e-6 * mean.abs().max():
                    sys.exit("%s: ctrain's new rows do not start at the mean of the old ones" % name)
        model.resize_token_embeddings(len(tok), mean_resizing=False)
    lora = peft.LoraConfig(r=8, lora_alpha=16, target_modules="all-linear", lora_dropout=0.0, bias="none",
                           task_type="CAUSAL_LM", fan_in_fan_out=arch == "gpt2",
                           trainable_token_indices=(new_ids if tied else {"embed_tokens": new_ids, "lm_head": new_ids})
                           if new_ids else None)
    args = SFTConfig(output_dir=os.path.join(d, "trl%d" % seed), per_device_train_batch_size=MICRO_BATCH,
                     gradient_accumulation_steps=EXAMPLES // MICRO_BATCH, max_steps=STEPS, learning_rate=lr,
                     lr_scheduler_type="cosine_with_min_lr", lr_scheduler_kwargs={"min_lr": min_lr}, warmup_steps=0,
                     weight_decay=wd, adam_beta1=0.9, adam_beta2=0.999, adam_epsilon=1e-8, max_grad_norm=clip,
                     optim="adamw_torch", logging_steps=1, report_to=[], save_strategy="no", use_cpu=True, seed=seed,
                     bf16=False, fp16=False, max_length=SEQ, packing=False, assistant_only_loss=True,
                     activation_checkpointing=False, dataset_num_proc=None, disable_tqdm=True)
    trainer = (SFTTrainer if not new_ids else HeadThroughPeftSFTTrainer)(model=model, args=args, train_dataset=datasets.Dataset.from_list(conversations),
                         processing_class=tok, peft_config=lora)
    params = {adapter_name(name): p for name, p in trainer.model.named_parameters() if p.requires_grad}
    if set(params) != set(init):
        sys.exit("PEFT's all-linear adapts other modules than ctrain's:\n only PEFT: %s\n only ctrain: %s"
                 % (sorted(set(params) - set(init)), sorted(set(init) - set(params))))
    with torch.no_grad():
        for name, p in params.items():
            if "lora_B" in name and (p.abs().max() != 0 or init[name].abs().max() != 0):
                sys.exit("%s does not start at zero" % name)
            if "lora_A" in name:  # PEFT's kaiming_uniform(a=sqrt(5)): uniform in ±1/sqrt(in); ctrain's draws too
                bound, ours = p.shape[1] ** -0.5, init[name]
                spread = (ours.std() / p.std()).item()
                if ours.abs().max() > bound * (1 + 1e-6) or ours.abs().max() < 0.9 * bound or abs(spread - 1) > 0.15:
                    sys.exit("%s: ctrain starts it with max |A| %.4g and std %.4g, PEFT uniform in ±%.4g (std %.4g)"
                             % (name, ours.abs().max(), ours.std(), bound, p.std()))
            p.copy_(init[name])
    trainer.train()
    folder = os.path.join(d, "trl_adapter%d" % seed)
    trainer.model.save_pretrained(folder, save_embedding_layers=False)
    adapter = adapter_tensors(folder)
    head = "base_model.model.lm_head.token_adapter.trainable_tokens_delta"
    if new_ids and tied and head in adapter:  # where PEFT writes a tied head's rows, they must be the embedding's
        rows = [v for k, v in adapter.items() if k.endswith("token_adapter.trainable_tokens_delta") and k != head]
        if len(rows) != 1 or not torch.equal(adapter.pop(head), rows[0]):
            sys.exit("PEFT's tied head rows are not its embedding's: %s" % sorted(adapter))
    return {h["step"]: h for h in trainer.state.log_history if "loss" in h}, adapter

if __name__ == "__main__":
    logging.disable(logging.WARNING)
    main()
