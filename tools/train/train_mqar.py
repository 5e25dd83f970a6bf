"""Trains a 2-layer MetaLA on Zoology's multi-query associative recall (MQAR)
and scores it on the test set that the TypeScript generator wrote
(`metala mqar --write-set FILE ...`, src/mqar/generate.ts), so that PyTorch
and the runtime score exactly the same examples.

Training data is drawn fresh every step, on the GPU, with the same layout and
distributions as the TypeScript generator (and Zoology's multiquery_ar):
N distinct keys from [1, V/2), N distinct values from [V/2, V), the pairs,
then each key once more at gap slots drawn without replacement with
p(g) ~ a*g^(a-1), every other position a uniform random token; the loss is on
the queried positions only. Each batch has one (length, pairs) setting drawn
from --mixture (Zoology too trains on a mixture of shorter, easier settings);
the test uses the set's own.

Output in --out: config.json, model.safetensors, reference.json (the task,
the set's sha256, PyTorch's accuracy in float64 and float32 on the saved
weights, correct queries per example), train_log.json, accuracy_curve.svg.

    python3 tools/train/train_mqar.py --set build/mqar/set-....json --out OUT --d 128
"""

import argparse
import hashlib
import json
import os
import random
import struct

import torch
import torch.nn.functional as F

from train_common import Progress, log, lr_at, make_optimizer, metala_torch, pick_device, write_json
from svg_plot import line_chart


def load_set(path):
    with open(path) as f:
        s = json.load(f)
    if s.get("format") != "metala-mqar-set/1":
        raise SystemExit(f"{path}: not a metala MQAR set (format {s.get('format')!r})")
    words = []
    for ex in s["examples"]:
        words.extend(ex["inputs"])
        for p, v in ex["queries"]:
            words.extend((p, v))
    digest = hashlib.sha256(struct.pack(f"<{len(words)}i", *words)).hexdigest()
    if digest != s["sha256"]:
        raise SystemExit(f"{path}: sha256 {digest} does not match the recorded {s['sha256']}")
    return s


def draw_batch(batch, seq, pairs, vocab, power_a, device):
    """One training batch: inputs [B, L] and labels [B, L] (-100 = not scored)."""
    half = vocab // 2
    keys = torch.rand(batch, half - 1, device=device).topk(pairs, dim=1).indices + 1
    values = torch.rand(batch, vocab - half, device=device).topk(pairs, dim=1).indices + half
    context = 2 * pairs
    space = (seq - context) // 2
    g = torch.arange(1, space + 1, device=device, dtype=torch.float64)
    logw = torch.log(power_a * g ** (power_a - 1)).float()
    # Gumbel top-k = successive draws without replacement, proportional to the weights, in draw order.
    gumbel = -torch.log(-torch.log(torch.rand(batch, space, device=device).clamp_min(1e-20)))
    gaps = (logw[None] + gumbel).topk(pairs, dim=1).indices
    inputs = torch.zeros(batch, seq, dtype=torch.long, device=device)
    inputs[:, 0:context:2] = keys
    inputs[:, 1:context:2] = values
    pos = context + 2 * gaps
    inputs.scatter_(1, pos, keys)
    labels = torch.full((batch, seq), -100, dtype=torch.long, device=device)
    labels.scatter_(1, pos, values)
    filler = torch.randint(0, vocab, (batch, seq), device=device)
    inputs = torch.where(inputs == 0, filler, inputs)
    return inputs, labels


@torch.no_grad()
def batch_accuracy(model, x, y, chunk=64):
    """Accuracy on generated (validation) batches: picks the checkpoint without looking at the test set."""
    model.eval()
    right, total = 0, 0
    for i in range(0, x.shape[0], chunk):
        logits, _ = model(x[i:i + chunk])
        mask = y[i:i + chunk] != -100
        right += int((logits.argmax(-1)[mask] == y[i:i + chunk][mask]).sum())
        total += int(mask.sum())
    model.train()
    return right / total


@torch.no_grad()
def score_set(model, s, device, batch=50):
    """Argmax at every queried position (first index on a tie, as the runtime)."""
    model.eval()
    per_example, margins = [], []
    examples = s["examples"]
    for i in range(0, len(examples), batch):
        part = examples[i:i + batch]
        x = torch.tensor([ex["inputs"] for ex in part], device=device)
        logits, _ = model(x)
        for j, ex in enumerate(part):
            pos = torch.tensor([q[0] for q in ex["queries"]], device=device)
            want = torch.tensor([q[1] for q in ex["queries"]], device=device)
            lg = logits[j, pos]
            pred = lg.argmax(-1)
            per_example.append(int((pred == want).sum()))
            top2 = lg.topk(2, dim=-1).values
            margins.append(float((top2[:, 0] - top2[:, 1]).min()))
    model.train()
    correct = sum(per_example)
    total = sum(len(ex["queries"]) for ex in examples)
    return {"correct": correct, "total": total, "accuracy": correct / total, "per_example": per_example,
            "min_top2_margin": min(margins)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--set", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--d", type=int, default=128)
    ap.add_argument("--heads", type=int, default=1)
    ap.add_argument("--glu", type=int, default=0, help="0: 2*d")
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--mixture", default="64:4,128:8,256:16,256:32,512:64,512:64",
                    help="training (sequence length:pairs) settings, one drawn per batch")
    ap.add_argument("--batch-tokens", type=int, default=65536, help="tokens per batch; batch = this / length")
    ap.add_argument("--lr", type=float, default=1e-2)
    ap.add_argument("--weight-decay", type=float, default=0.1)
    ap.add_argument("--max-steps", type=int, default=1000000)
    ap.add_argument("--seconds", type=float, default=270)
    ap.add_argument("--eval-every", type=int, default=250)
    ap.add_argument("--valid-examples", type=int, default=256)
    ap.add_argument("--dtype", default="F16", choices=["F16", "BF16", "F32"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--stop-at", type=float, default=0.995, help="end early at this validation accuracy")
    args = ap.parse_args()

    torch.manual_seed(args.seed)
    random.seed(args.seed)
    device = pick_device()
    cuda = device.type == "cuda"
    s = load_set(args.set)
    task = s["task"]
    vocab, seq, power_a = task["vocab_size"], task["seq_len"], task["power_a"]
    mixture = [tuple(int(v) for v in m.split(":")) for m in args.mixture.split(",")]
    os.makedirs(args.out, exist_ok=True)

    config = metala_torch.make_config(
        vocab_size=vocab, decoder_embed_dim=args.d, decoder_layers=args.layers, decoder_attention_heads=args.heads,
        glu_dim=args.glu or 2 * args.d, pad_token_id=None, bos_token_id=None, eos_token_id=None,
        tie_word_embeddings=True)
    model = metala_torch.MetaLAForCausalLM(config).to(device)
    params = sum(p.numel() for p in model.parameters())
    log(f"mqar d={args.d} heads={args.heads} seq={seq} pairs={task['num_kv_pairs']}: {params} parameters")
    opt = make_optimizer(model, args.lr, args.weight_decay)
    valid_x, valid_y = draw_batch(args.valid_examples, seq, task["num_kv_pairs"], vocab, power_a, device)

    progress = Progress(args.max_steps, args.seconds)
    history, step = [], 0
    running, running_n = 0.0, 0
    best = (-1.0, None, 0)
    rng = random.Random(args.seed)
    while progress.fraction(step) < 1.0:
        lr = lr_at(progress.fraction(step), args.lr)
        for g in opt.param_groups:
            g["lr"] = lr
        mseq, mpairs = rng.choice(mixture)
        x, y = draw_batch(args.batch_tokens // mseq, mseq, mpairs, vocab, power_a, device)
        logits, _ = model(x)
        loss = F.cross_entropy(logits.float().reshape(-1, vocab), y.reshape(-1), ignore_index=-100)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        running = running + loss.detach()
        running_n += 1
        if step % args.eval_every == 0 or progress.fraction(step) >= 1.0:
            acc = batch_accuracy(model, valid_x, valid_y)
            history.append({"step": step, "train_loss": float(running) / running_n, "valid_accuracy": acc,
                            "seconds": round(progress.elapsed(), 1), "lr": lr})
            log(f"step {step} loss {float(running) / running_n:.4f} acc {acc:.4f} lr {lr:.2e} {progress.elapsed():.0f}s")
            running, running_n = 0.0, 0
            if acc >= best[0]:
                best = (acc, {k: t.detach().clone() for k, t in model.state_dict().items()}, step)
            if acc >= args.stop_at:
                break

    model.load_state_dict(best[1])
    metala_torch.save_checkpoint(model, args.out, dtype=args.dtype)
    ref = {"task": task, "seed": s["seed"], "sha256": s["sha256"], "weights": args.dtype, "parameters": params,
           "paper": "MetaLA paper Table A7: 90.4% at model dim 128, sequence length 512, 80 pairs"}
    for dtype, name in ((torch.float64, "float64"), (torch.float32, "float32")):
        saved = metala_torch.load_checkpoint(args.out, dtype=dtype).to(device)
        ref[name] = dict(score_set(saved, s, device), examples=len(s["examples"]))
        log(name, json.dumps({k: v for k, v in ref[name].items() if k != "per_example"}))
    ref["pytorch"] = ref["float64"]
    write_json(os.path.join(args.out, "reference.json"), ref)
    write_json(os.path.join(args.out, "train_log.json"), {
        "args": vars(args), "config": config, "parameters": params, "steps": step, "best_step": best[2],
        "seconds": round(progress.elapsed(), 1), "device": torch.cuda.get_device_name() if cuda else "cpu",
        "torch": torch.__version__, "history": history})
    with open(os.path.join(args.out, "accuracy_curve.svg"), "w") as f:
        f.write(line_chart([("validation accuracy", "#2ca02c", [(h["step"], h["valid_accuracy"]) for h in history])],
                           f"MQAR d={args.d}, length {seq}, {task['num_kv_pairs']} pairs", "step", "accuracy"))
    log("done", json.dumps({"steps": step, "best_step": best[2], "seconds": round(progress.elapsed(), 1)}))


if __name__ == "__main__":
    main()
