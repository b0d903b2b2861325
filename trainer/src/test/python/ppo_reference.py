"""PPO written out in plain PyTorch 2.13 from OpenRLHF's and TRL 0.x's formulas: the guard PpoParityTest
compares align4j's PPO trainer with.

TRL 1.13 has no PPO (PR #7020 removed it), so nothing runs a library's trainer here: this script is an
independent implementation of the same update, kept deliberately plain (one sequence at a time, no
padding, no batching tricks) so that each line can be read against the formulas:

  rollout (no gradients, dropout off)
    log pi_old, log pi_ref   log-softmax(logits / temperature) at the positions predicting each completion token
    V_old                    value model: score(last_hidden_state) at those same positions
    score                    the reward (a function of the text, or the reward model read on prompt + completion
                             text re-tokenized, without eos), minus missing_eos_penalty for a cut completion
    kl_t                     k1 = log pi_old - log pi_ref, k2 = k1^2 / 2, k3 = exp(-k1) - 1 + k1, clamped to +-10
                             (OpenRLHF compute_approx_kl)
    r_t                      -kl_coef * kl_t, plus the score at the last completion token (OpenRLHF compute_reward)
    whiten_rewards           (r - mean) * rsqrt(var + 1e-8) + mean over all tokens, var unbiased (TRL masked_whiten,
                             shift_mean=False)
    GAE                      delta_t = r_t + gamma V_{t+1} - V_t (V after the last token 0), A_t = delta_t + gamma lam
                             A_{t+1}; returns R = A + V_old (OpenRLHF get_advantages_and_returns)
    advantages               whitened over all tokens of the rollout (TRL masked_whiten)
    adaptive kl_coef         Ziegler et al. 2019: beta *= 1 + clip(KL / target - 1, -0.2, 0.2) * n / horizon, with KL the
                             previous rollout's per-token mean per sample, averaged (OpenRLHF AdaptiveKLController)
  update: num_ppo_epochs passes; each visits the rollout in an order (below) cut into num_mini_batches mini-batches,
  each one optimizer step over grad_accum micro-batches of batch_size samples:
    ratio = exp(clamp(log pi - log pi_old, -20, 20)) (verl's clamp); pg = mean_tokens max(-A ratio, -A clip(ratio, 1 - eps, 1 + eps))
    vf = 0.5 mean_tokens max((V - R)^2, (clip(V, V_old - eps_v, V_old + eps_v) - R)^2)
    loss = pg + vf_coef vf, divided by grad_accum (TRL's token mean per micro-batch; accelerate's division)
    one torch.optim.AdamW over the policy's and the value model's parameters, clip_grad_norm_ over both,
    linear decay of the learning rate per optimizer step.

The only thing shared with align4j is the visiting order, which is specified, not computed, here: the rollout's
samples sorted by a SplitMix64-derived uniform of (seed, -1, generation, epoch) at each sample's index (the
arithmetic of align4j's RowStream, written again below).

Writes trainer/src/test/resources/trl-rl/ppo-<case>.json: settings, prompts, the completion table, every step's
metrics under TRL's names, step 1's gradient norm of every parameter (before clipping).

Rerun (CPU, a minute):
    v/bin/python trainer/src/test/python/ppo_reference.py [CASE ...]
"""

import copy
import json
import math
import os
import random
import sys

import torch
import transformers
from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, PreTrainedTokenizerFast

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from trl_rl_fixtures import FIXTURES, OUT, completion_table, reward_len, reward_model, sums  # noqa: E402

MASK64 = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15


def mix(z):
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


def stream_key(*parts):
    h = 0x243F6A8885A308D3
    for p in parts:
        h = mix((h + GOLDEN + mix(p & MASK64)) & MASK64)
    return h


def uniform(key, position):
    bits = mix((key + GOLDEN * (position + 1)) & MASK64) >> 11
    return (bits + 0.5) * 2.0 ** -53


def visiting_order(n, seed, generation, epoch):
    key = stream_key(seed, -1, generation, epoch)
    return sorted(range(n), key=lambda i: uniform(key, i))


CASES = {
    # 8 prompts, one sample each: 2 micro-batches of 2 per step, 2 mini-batches per epoch, 2 epochs: 4 steps a rollout
    "gpt2-k1-adaptive": dict(rewards=["len"], kl_estimator="k1", kl_coef=0.05, kl_target=0.02, kl_horizon=100,
                             missing_eos_penalty=1.0, gamma=1.0, lam=0.95, whiten_rewards=False, num_generations=1),
    # the reward model as reward and as the value model's start, k3, discounted GAE, whitened rewards, 2 samples/prompt
    "gpt2-k3-rm": dict(rewards=["model"], kl_estimator="k3", kl_coef=0.1, kl_target=None, kl_horizon=10000,
                       missing_eos_penalty=None, gamma=0.99, lam=1.0, whiten_rewards=True, num_generations=2),
}
BATCH, ACCUM, MINI, EPOCHS, ROLLOUTS = 2, 2, 2, 2, 2
TEMPERATURE, CLIP, CLIP_V, VF_COEF, LR, MAX_GRAD_NORM, SEED = 0.7, 0.2, 0.2, 0.1, 1e-3, 1.0, 42
EOS = 2


def token_logps(model, ids, p):
    """log pi of tokens ids[p:] at temperature, and the entropy of each of those positions' distributions."""
    logits = model(torch.tensor([ids])).logits[0, p - 1:len(ids) - 1] / TEMPERATURE
    logp = torch.log_softmax(logits.double(), -1)
    tok = logp.gather(-1, torch.tensor(ids[p:]).unsqueeze(-1)).squeeze(-1)
    entropy = -(logp.exp() * logp).sum(-1)
    return tok, entropy


def token_values(vm, ids, p):
    hidden = vm.transformer(torch.tensor([ids])).last_hidden_state[0, p - 1:len(ids) - 1]
    return vm.score(hidden).squeeze(-1).double()


def kl_of(k1, estimator):
    if estimator == "k1":
        k = k1
    elif estimator == "k2":
        k = k1 * k1 / 2
    else:
        k = torch.exp(-k1) - 1 + k1
    return k.clamp(-10, 10)


def whiten(flat, shift_mean=True):
    mean = flat.mean()
    var = flat.var(unbiased=True) if flat.numel() > 1 else torch.tensor(0.0, dtype=flat.dtype)
    w = (flat - mean) * torch.rsqrt(var + 1e-8)
    return w if shift_mean else w + mean


def run(name):
    c = CASES[name]
    path = FIXTURES + "/gpt2-tiny"
    tok = PreTrainedTokenizerFast.from_pretrained(path)
    rng = random.Random(name)
    g = c["num_generations"]
    rollout_size = BATCH * ACCUM * MINI
    prompts_per_rollout = rollout_size // g
    prompts = sums(prompts_per_rollout * ROLLOUTS, rng, True, tok)
    table = completion_table(prompts, rng)  # G = 4 completions per prompt; sample k takes row k

    policy = AutoModelForCausalLM.from_pretrained(path, attn_implementation="eager").double()
    ref = copy.deepcopy(policy)
    rm = reward_model(tok).double()
    vm = AutoModelForSequenceClassification.from_pretrained(OUT + "/reward-gpt2-tiny").double()
    for m in (policy, ref, rm, vm):
        m.eval()  # dropout off everywhere, as TRL 0.x's PPO (align4j: disable_dropout, its default)
    params = [(n, p) for n, p in policy.named_parameters()] + [("value_model." + n, p) for n, p in vm.named_parameters()]
    opt = torch.optim.AdamW([p for _, p in params], lr=LR, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
    total_steps = ROLLOUTS * EPOCHS * MINI
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1 - s / total_steps)

    steps, norms = [], None
    coef = c["kl_coef"]
    prev = None
    tokens_seen = 0
    step = 0
    for generation in range(ROLLOUTS):
        batch_prompts = prompts[generation * prompts_per_rollout:(generation + 1) * prompts_per_rollout]
        rows = []
        for p_text in batch_prompts:
            for k in range(g):
                rows.append((p_text, table[p_text][k]))
        if prev is not None and c["kl_target"] is not None:
            err = min(0.2, max(-0.2, prev["kl"] / c["kl_target"] - 1))
            coef = coef * (1 + err * prev["n"] / c["kl_horizon"])
        samples = []
        with torch.no_grad():
            for p_text, comp in rows:
                pids = tok(p_text, add_special_tokens=False)["input_ids"]
                ids = pids + comp
                p = len(pids)
                old, _ = token_logps(policy, ids, p)
                refl, _ = token_logps(ref, ids, p)
                values = token_values(vm, ids, p)
                text = tok.decode(comp, skip_special_tokens=True)
                if c["rewards"] == ["len"]:
                    raw = reward_len([p_text], [text], [comp])[0]
                else:
                    enc = tok(p_text + text, add_special_tokens=False, return_tensors="pt")
                    raw = rm(**enc).logits[0, 0].item()
                truncated = len(comp) == 0 or comp[-1] != EOS
                score = raw - (c["missing_eos_penalty"] if truncated and c["missing_eos_penalty"] else 0.0)
                kl = kl_of(old - refl, c["kl_estimator"])
                r = -coef * kl
                r[-1] += score
                samples.append(dict(ids=ids, p=p, comp=comp, old=old, values=values, raw=raw, score=score,
                                    kl=kl, r=r, truncated=truncated))
                tokens_seen += len(ids)
        if c["whiten_rewards"]:
            flat = whiten(torch.cat([s["r"] for s in samples]), shift_mean=False)
            at = 0
            for s in samples:
                s["r"] = flat[at:at + len(s["comp"])]
                at += len(s["comp"])
        for s in samples:
            n = len(s["comp"])
            adv = torch.zeros(n, dtype=torch.float64)
            last = 0.0
            for t in reversed(range(n)):
                next_v = s["values"][t + 1] if t + 1 < n else 0.0
                delta = s["r"][t] + c["gamma"] * next_v - s["values"][t]
                last = delta + c["gamma"] * c["lam"] * last
                adv[t] = last
            s["ret"] = adv + s["values"]
            s["adv_raw"] = adv
        flat = whiten(torch.cat([s["adv_raw"] for s in samples]))
        at = 0
        for s in samples:
            s["adv"] = flat[at:at + len(s["comp"])]
            at += len(s["comp"])
        # the sampler's quantities, as float32 (what align4j keeps in its rollout)
        for s in samples:
            for key in ("old", "values", "ret", "adv"):
                s[key] = s[key].float().double()
        count = len(samples)
        kl_sum = sum(s["kl"].sum().item() for s in samples)
        lengths = [len(s["comp"]) for s in samples]
        term = [len(s["comp"]) for s in samples if not s["truncated"]]
        rollout_metrics = {
            "num_tokens": float(tokens_seen),
            "completions/mean_length": sum(lengths) / count,
            "completions/min_length": float(min(lengths)),
            "completions/max_length": float(max(lengths)),
            "completions/clipped_ratio": (count - len(term)) / count,
            "completions/mean_terminated_length": sum(term) / len(term) if term else 0.0,
            "completions/min_terminated_length": float(min(term)) if term else 0.0,
            "completions/max_terminated_length": float(max(term)) if term else 0.0,
            "objective/kl": kl_sum / count,
            "objective/entropy": sum(-s["old"].sum().item() for s in samples) / count,
            "objective/non_score_reward": -coef * kl_sum / count,
            "objective/rlhf_reward": -coef * kl_sum / count + sum(s["score"] for s in samples) / count,
            "objective/scores": sum(s["score"] for s in samples) / count,
            "objective/kl_coef": coef,
            "val/num_eos_tokens": float(len(term)),
            "rewards/" + ("reward_len" if c["rewards"] == ["len"] else "reward-gpt2-tiny") + "/mean":
                sum(s["raw"] for s in samples) / count,
            "reward": sum(s["raw"] for s in samples) / count,
        }
        prev = dict(kl=sum((s["kl"].mean().item() if len(s["comp"]) else 0.0) for s in samples) / count, n=count)

        for epoch in range(EPOCHS):
            order = visiting_order(rollout_size, SEED, generation, epoch)
            for mb in range(MINI):
                mini = order[mb * BATCH * ACCUM:(mb + 1) * BATCH * ACCUM]
                sums_ = {}
                opt.zero_grad()
                for a in range(ACCUM):
                    micro = [samples[i] for i in mini[a * BATCH:(a + 1) * BATCH]]
                    lps, ents, vals = [], [], []
                    for s in micro:
                        lp, ent = token_logps(policy, s["ids"], s["p"])
                        lps.append(lp)
                        ents.append(ent)
                        vals.append(token_values(vm, s["ids"], s["p"]))
                    lp = torch.cat(lps)
                    ent = torch.cat(ents)
                    v = torch.cat(vals)
                    old = torch.cat([s["old"] for s in micro])
                    adv = torch.cat([s["adv"] for s in micro])
                    v_old = torch.cat([s["values"] for s in micro])
                    ret = torch.cat([s["ret"] for s in micro])
                    ratio = torch.exp(torch.clamp(lp - old, -20, 20))  # verl's clamp of the log-ratio
                    pg1 = -adv * ratio
                    pg2 = -adv * torch.clamp(ratio, 1 - CLIP, 1 + CLIP)
                    pg = torch.max(pg1, pg2).mean()
                    v_clip = v_old + torch.clamp(v - v_old, -CLIP_V, CLIP_V)
                    vf1 = (v - ret) ** 2
                    vf2 = (v_clip - ret) ** 2
                    vf = 0.5 * torch.max(vf1, vf2).mean()
                    loss = pg + VF_COEF * vf
                    (loss / ACCUM).backward()
                    stats = {
                        "loss": loss.item(),
                        "policy/approxkl_avg": (0.5 * (lp - old) ** 2).mean().item(),
                        "policy/clipfrac_avg": (pg2 > pg1).double().mean().item(),
                        "loss/policy_avg": pg.item(),
                        "loss/value_avg": vf.item(),
                        "val/clipfrac_avg": (vf2 > vf1).double().mean().item(),
                        "policy/entropy_avg": ent.mean().item(),
                        "val/ratio": ratio.mean().item(),
                    }
                    for k, x in stats.items():
                        sums_[k] = sums_.get(k, 0.0) + x / ACCUM
                if norms is None:
                    norms = {n: p.grad.norm().item() for n, p in params if p.grad is not None}
                grad_norm = torch.nn.utils.clip_grad_norm_([p for _, p in params], MAX_GRAD_NORM).item()
                row = {"step": step + 1, "learning_rate": sched.get_last_lr()[0], "grad_norm": grad_norm}
                row.update(sums_)
                if epoch == 0 and mb == 0:
                    row.update(rollout_metrics)
                opt.step()
                sched.step()
                step += 1
                steps.append(row)
    settings = dict(batch_size=BATCH, grad_accum=ACCUM, num_mini_batches=MINI, num_ppo_epochs=EPOCHS,
                    max_steps=total_steps, temperature=TEMPERATURE, cliprange=CLIP, cliprange_value=CLIP_V,
                    vf_coef=VF_COEF, learning_rate=LR, max_grad_norm=MAX_GRAD_NORM, seed=SEED,
                    max_completion_length=6)
    settings.update({k: v for k, v in c.items() if k != "rewards" and v is not None})
    doc = {"torch": torch.__version__, "transformers": transformers.__version__, "model": "gpt2-tiny",
           "value_model": "reward-gpt2-tiny", "settings": settings,
           "reward_funcs": ["reward_len" if c["rewards"] == ["len"] else "reward-gpt2-tiny"],
           "prompts": prompts, "completions": table, "steps": steps, "step1_grad_norm_by_param": norms}
    with open(f"{OUT}/ppo-{name}.json", "w") as f:
        json.dump(doc, f, indent=1)
    print(name, "step 1:", {k: round(v, 6) for k, v in steps[0].items() if k in ("loss", "grad_norm")})


if __name__ == "__main__":
    torch.manual_seed(0)
    for n in sys.argv[1:] or list(CASES):
        run(n)
