#!/usr/bin/env python3
"""Reference side of ctrain's GRPO/RLOO loss test against TRL (tests/test_grpo_ref.c).

usage: grpo_trl_ref.py CASES.json

CASES.json holds the inputs (rewards of 2 prompts x G completions, the [B,T] completion mask,
the policy's, the old policy's and the reference's per-token log-probabilities) and ctrain's
results: advantages for every scale_rewards and for RLOO (with and without its KL penalty and
normalize_advantages), and for every loss_type x beta x num_iterations the loss, its gradient
with respect to the per-token log-probabilities and the metrics; the same for RLOO's loss.

The script runs TRL's own code on the same inputs:
  - the loss: GRPOTrainer._compute_loss and RLOOTrainer._compute_loss themselves, called on a
    stand-in `self` that holds the knobs and whose _get_per_token_logps_and_entropies returns
    the given log-probabilities as a leaf tensor (so autograd gives the gradient, with
    old_per_token_logps = None for num_iterations 1: TRL's detached current log-probs);
  - the advantages: the lines of _generate_and_score_completions that compute them, read out of
    the installed trainer files (inspect.getsource) and executed as they are.
and compares everything to 1e-6, relative to each array's largest value. Both sides compute in
double; what remains (measured: 4e-8) is TRL's own float32 steps: nanstd's Bessel factor
count/(count - 1) is an int division (float32: 6/5 = 1.2000000477), and the clip ratios are
bool.float() means. Prints the TRL version.

Where torch or trl is not importable it prints "SKIP: ..." and exits 0.
"""
import inspect
import json
import math
import sys
import textwrap
import types

try:
    import torch
    import trl
    from trl.trainer import grpo_trainer, rloo_trainer
    from trl.trainer.utils import nanstd
except ImportError as e:
    print("SKIP: the Python module %s is not importable (make test-ref, or pip install torch trl)" % e.name)
    sys.exit(0)

TOL = 1e-6  # relative: max |ctrain - TRL| / max |TRL| over each array (a scalar: over it and 1e-3)
failures = []
worst_seen = [0.0]


def close(what, got, want):
    if want is None or got is None:
        if not (want is None and got is None):
            failures.append("%s: ctrain %r, TRL %r" % (what, got, want))
        return
    if isinstance(want, (list, tuple)):
        scale = max(max(abs(w) for w in want), 1e-12)
        worst = max(abs(g - w) for g, w in zip(got, want)) / scale
        worst_seen[0] = max(worst_seen[0], worst)
        if len(got) != len(want) or not worst <= TOL:
            failures.append("%s: max relative |ctrain - TRL| = %g\n  ctrain %s\n  TRL    %s" % (what, worst, got, want))
        return
    err = abs(got - want) / max(abs(want), 1e-3)
    worst_seen[0] = max(worst_seen[0], err)
    if not err <= TOL:
        failures.append("%s: ctrain %.12g, TRL %.12g" % (what, got, want))


class Identity:
    """accelerate's Accelerator on one process."""
    num_processes = 1

    def gather(self, x):
        return x

    def gather_for_metrics(self, x):
        return x

    def reduce(self, x, reduction="sum"):
        return x


def stand_in(cases, knobs, logp):
    s = types.SimpleNamespace(**knobs)
    s.accelerator = Identity()
    s.model = types.SimpleNamespace(training=True)
    s._metrics = {"train": {}, "eval": {}}
    for mode in s._metrics:
        s._metrics[mode] = __import__("collections").defaultdict(list)
    s._get_per_token_logps_and_entropies = lambda *a, **k: (logp, torch.zeros_like(logp), None)
    s.aux_loss_enabled = False
    s._entropy_bonus_enabled = False
    s.current_gradient_accumulation_steps = 1
    return s


def tensor(cases, name):
    B, T = cases["B"], cases["T"]
    x = torch.tensor(cases[name], dtype=torch.float64)
    return x.view(B, T) if x.numel() == B * T else x


def check_loss(cases, c):
    B, T = cases["B"], cases["T"]
    logp = tensor(cases, "logp").clone().requires_grad_(True)
    mask = tensor(cases, "mask").long()
    mu2 = c["num_iterations"] == 2
    inputs = {
        "prompt_ids": torch.zeros(B, 1, dtype=torch.long),
        "prompt_mask": torch.ones(B, 1, dtype=torch.long),
        "completion_ids": torch.zeros(B, T, dtype=torch.long),
        "completion_mask": mask,
        "advantages": torch.tensor(c["advantages"], dtype=torch.float64),
    }
    eps, eps_high = cases["epsilon"], cases["epsilon_high"]
    if c["algo"] == "grpo":
        knobs = dict(top_entropy_quantile=1.0, off_policy_mask_threshold=None, importance_sampling_level="token",
                     beta=c["beta"], loss_type=c["loss_type"], epsilon_low=eps, epsilon_high=eps_high,
                     use_vllm=False, vllm_importance_sampling_correction=False,
                     max_completion_length=cases["max_completion_length"],
                     args=types.SimpleNamespace(use_bias_correction_kl=False, delta=None, steps_per_generation=1))
        if mu2:
            inputs["old_per_token_logps"] = tensor(cases, "old_logp")
        if c["beta"] != 0:
            inputs["ref_per_token_logps"] = tensor(cases, "ref_logp")
        inputs["num_items_in_batch"] = torch.tensor(cases["num_items_in_batch"], dtype=torch.float64)
        s = stand_in(cases, knobs, logp)
        loss = grpo_trainer.GRPOTrainer._compute_loss(s, None, inputs)
        name = "grpo loss_type=%s beta=%g num_iterations=%d" % (c["loss_type"], c["beta"], c["num_iterations"])
    else:
        knobs = dict(epsilon_low=eps, epsilon_high=eps_high, router_aux_loss_coef=0.0)
        old = tensor(cases, "old_logp") if mu2 else logp.detach()
        inputs["old_logps"] = (old * mask).sum(1)
        s = stand_in(cases, knobs, logp)
        loss = rloo_trainer.RLOOTrainer._compute_loss(s, None, inputs)
        name = "rloo num_iterations=%d" % c["num_iterations"]
    loss.backward()
    close(name + " loss", c["loss"], loss.item())
    close(name + " d loss/d logp", c["grad"], logp.grad.flatten().tolist())
    for key in ["kl", "clip_ratio/low_mean", "clip_ratio/high_mean", "clip_ratio/region_mean", "clip_ratio/low_min",
                "clip_ratio/high_max"]:
        trl_values = s._metrics["train"].get(key)
        close("%s metric %s" % (name, key), c.get(key), trl_values[0] if trl_values else None)


def source_block(cls, first, last):
    """The lines of cls._generate_and_score_completions from the one containing `first` to the one containing
    `last`, dedented: TRL's own advantage code."""
    lines = inspect.getsource(cls._generate_and_score_completions).splitlines()
    start = next(i for i, line in enumerate(lines) if first in line)
    end = next(i for i in range(start, len(lines)) if last in lines[i])
    block = lines[start:end + 1]
    # the block ends inside an if/elif chain: keep it whole by cutting at the first line back at its indentation
    return textwrap.dedent("\n".join(block))


def check_advantages(cases, a):
    B, G = cases["B"], cases["G"]
    rewards_per_func = torch.tensor(cases["rewards"], dtype=torch.float64).unsqueeze(1)
    ns = dict(torch=torch, nanstd=nanstd, device="cpu", rewards_per_func=rewards_per_func, num_generations=G,
              unscorable_mask=torch.zeros(B, dtype=torch.bool), gather=lambda x: x)
    if a["algo"] == "grpo":
        ns["self"] = types.SimpleNamespace(multi_objective_aggregation="sum_then_normalize",
                                           scale_rewards=a["scale_rewards"],
                                           reward_weights=torch.ones(1, dtype=torch.float64))
        code = source_block(grpo_trainer.GRPOTrainer, "if self.multi_objective_aggregation == \"sum_then_normalize\":",
                            "is_std_zero = torch.isclose(std_rewards, torch.zeros_like(std_rewards))")
        exec(code + "\n", ns)
        name = "grpo advantages scale_rewards=%s" % a["scale_rewards"]
    else:
        mask = tensor(cases, "mask")
        ns["self"] = types.SimpleNamespace(reward_weights=torch.ones(1, dtype=torch.float64), reward_clip_range=None,
                                           beta=a["beta"], normalize_advantages=bool(a["normalize_advantages"]))
        ns.update(old_per_token_logps=tensor(cases, "old_logp"), ref_per_token_logps=tensor(cases, "ref_logp"),
                  completion_mask=mask)
        code = source_block(rloo_trainer.RLOOTrainer, "rewards = (rewards_per_func * self.reward_weights",
                            "is_std_zero = torch.isclose(std_rewards, torch.zeros_like(std_rewards))")
        exec(code + "\n", ns)
        name = "rloo advantages normalize_advantages=%d beta=%g" % (a["normalize_advantages"], a["beta"])
        if a["beta"] != 0:
            per_token_kl = ns["per_token_kl"]
            close(name + " metric kl", a.get("kl"),
                  ((per_token_kl * mask).sum() / mask.sum().clamp(min=1.0)).item())
    close(name, a["values"], ns["advantages"].tolist())
    close(name + " frac_reward_zero_std", a["frac_reward_zero_std"], ns["is_std_zero"].float().mean().item())


def main():
    with open(sys.argv[1]) as f:
        cases = json.load(f)
    print("TRL %s, torch %s" % (trl.__version__, torch.__version__))
    for a in cases["advantages"]:
        check_advantages(cases, a)
    for c in cases["losses"]:
        check_loss(cases, c)
    n = len(cases["advantages"]) + len(cases["losses"])
    if failures:
        print("\n".join(failures))
        print("%d mismatches over %d cases" % (len(failures), n))
        sys.exit(1)
    print("%d cases (losses, gradients, metrics, advantages) equal TRL's: largest relative difference %.3g "
          "(tolerance %g)" % (n, worst_seen[0], TOL))


if __name__ == "__main__":
    main()
