"""Trains the embedded default model: a small MetaLA on the Brown corpus.

Input: the text files of tools/brown/prepare_brown.mjs (train.txt, valid.txt,
heldout.txt) and the model folder's heldout-sample.txt. Output, in --out: a
Hugging Face style folder (config.json, model.safetensors, tokenizer.json,
tokenizer_config.json), reference.json (held-out perplexities measured here),
train_log.json and loss_curve.svg.

Tokens: a byte-level BPE (tokenizers package) trained on train.txt only. A
text is encoded as ONE string with no special tokens added (the tokenizer has
no post-processor), exactly what the runtime does with `--file`.

Perplexity (the runtime's `metala eval --file F --json` computes the same): the
whole file as one token sequence t_0..t_{T-1}, from the empty state, mean
negative log-likelihood of t_1..t_{T-1} (T-1 predictions), ppl = exp(nll).
Measured on the saved (f16-rounded) weights, in float64 and in float32.

    python3 tools/train/train_lm.py --data build/brown --sample models/metala-brown/heldout-sample.txt --out OUT
"""

import argparse
import json
import math
import os
import random
import time

import torch
import torch.nn.functional as F

from train_common import (Progress, add_residual_dropout, log, lr_at, make_optimizer, metala_torch, pick_device,
                          write_json)
from svg_plot import line_chart

SPECIAL = "<|endoftext|>"


def train_tokenizer(texts, vocab_size):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=2, special_tokens=[SPECIAL],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(texts, trainer)
    return tok


def encode(tok, text):
    return tok.encode(text, add_special_tokens=False).ids


def batches_of_windows(stream, seq, batch, device, gen):
    """Random windows of `seq` tokens from the training stream."""
    n = stream.numel() - seq
    while True:
        starts = torch.randint(0, n, (batch,), generator=gen)
        idx = starts[:, None] + torch.arange(seq)[None, :]
        yield stream[idx].to(device, non_blocking=True)


@torch.no_grad()
def window_loss(model, stream, seq, batch, device):
    """Mean next-token loss over non-overlapping windows (each from the empty
    state): a quick validation figure for choosing the checkpoint."""
    model.eval()
    n = (stream.numel() // seq) * seq
    windows = stream[:n].reshape(-1, seq)
    total, count = 0.0, 0
    for i in range(0, windows.shape[0], batch):
        x = windows[i:i + batch].to(device)
        logits, _ = model(x)
        loss = F.cross_entropy(logits[:, :-1].float().reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1), reduction="sum")
        total += loss.item()
        count += x.shape[0] * (seq - 1)
    model.train()
    return total / count


@torch.no_grad()
def sequence_nll(model, ids, device, segment=2048):
    """Mean nll of ids[1:] given the prefix, the whole list as one sequence,
    run in segments that hand the recurrent state on (same result as one
    call, less memory). Computes in the model's dtype."""
    model.eval()
    x = torch.tensor(ids, dtype=torch.long, device=device)[None]
    states = None
    total = 0.0
    for s in range(0, x.shape[1], segment):
        part = x[:, s:s + segment]
        logits, states = model(part, states=states)
        logp = torch.log_softmax(logits[0].to(torch.float64), dim=-1)
        targets = x[0, s + 1:s + segment + 1]
        k = targets.numel()  # the last position of the file predicts nothing
        total -= logp[torch.arange(k, device=device), targets].sum().item()
    return total / (len(ids) - 1)


def figures(nll, tokens):
    return {"tokens": tokens, "predicted": tokens - 1, "nll": nll, "ppl": math.exp(nll)}


def greedy_sample(model, tok, prompt, n, device):
    model.eval()
    ids = encode(tok, prompt)
    with torch.no_grad():
        logits, states = model(torch.tensor([ids], device=device))
        out = []
        for _ in range(n):
            nxt = int(logits[0, -1].argmax())
            out.append(nxt)
            logits, states = model(torch.tensor([[nxt]], device=device), states=states)
    return prompt + tok.decode(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="build/brown")
    ap.add_argument("--sample", default="models/metala-brown/heldout-sample.txt")
    ap.add_argument("--out", required=True)
    ap.add_argument("--vocab", type=int, default=8192)
    ap.add_argument("--d", type=int, default=256)
    ap.add_argument("--layers", type=int, default=6)
    ap.add_argument("--heads", type=int, default=2)
    ap.add_argument("--glu", type=int, default=768)
    ap.add_argument("--seq", type=int, default=512)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--weight-decay", type=float, default=0.1)
    ap.add_argument("--dropout", type=float, default=0.1)
    ap.add_argument("--max-steps", type=int, default=100000)
    ap.add_argument("--seconds", type=float, default=270)
    ap.add_argument("--eval-every", type=int, default=100)
    ap.add_argument("--dtype", default="F16", choices=["F16", "BF16", "F32"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--chars-limit", type=int, default=0, help="truncate texts (smoke tests only)")
    args = ap.parse_args()

    torch.manual_seed(args.seed)
    random.seed(args.seed)
    device = pick_device()
    cuda = device.type == "cuda"
    os.makedirs(args.out, exist_ok=True)

    def read(path):
        with open(path, encoding="utf-8") as f:
            text = f.read()
        return text[:args.chars_limit] if args.chars_limit else text

    train_text = read(os.path.join(args.data, "train.txt"))
    valid_text = read(os.path.join(args.data, "valid.txt"))
    heldout_text = read(os.path.join(args.data, "heldout.txt"))
    sample_text = read(args.sample)

    t0 = time.time()
    tok = train_tokenizer(train_text.split("\n\n"), args.vocab)
    tok.save(os.path.join(args.out, "tokenizer.json"))
    write_json(os.path.join(args.out, "tokenizer_config.json"), {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "eos_token": SPECIAL,
        "pad_token": SPECIAL,
        "clean_up_tokenization_spaces": False,
        "model_max_length": 1048576,
    })
    eot = tok.token_to_id(SPECIAL)
    train_ids = torch.tensor(encode(tok, train_text), dtype=torch.long)
    valid_ids = torch.tensor(encode(tok, valid_text), dtype=torch.long)
    log(f"tokenizer: {tok.get_vocab_size()} tokens, {time.time() - t0:.1f}s; train {train_ids.numel()} tokens, "
        f"valid {valid_ids.numel()}")

    config = metala_torch.make_config(
        vocab_size=tok.get_vocab_size(), decoder_embed_dim=args.d, decoder_layers=args.layers,
        decoder_attention_heads=args.heads, glu_dim=args.glu, pad_token_id=eot, bos_token_id=None,
        eos_token_id=eot, tie_word_embeddings=True)
    model = metala_torch.MetaLAForCausalLM(config).to(device)
    params = sum(p.numel() for p in model.parameters())
    log(f"model: {params} parameters (tied head counted once)")
    add_residual_dropout(model, args.dropout)
    opt = make_optimizer(model, args.lr, args.weight_decay)
    gen = torch.Generator().manual_seed(args.seed)
    batches = batches_of_windows(train_ids, args.seq, args.batch, device, gen)

    progress = Progress(args.max_steps, args.seconds)
    history = []  # (step, epoch, train loss, valid loss, seconds)
    best = (float("inf"), None, 0)
    running, running_n, step = 0.0, 0, 0
    while progress.fraction(step) < 1.0:
        lr = lr_at(progress.fraction(step), args.lr)
        for g in opt.param_groups:
            g["lr"] = lr
        x = next(batches)
        loss = model.loss(x)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        running = running + loss.detach()  # no host sync per step
        running_n += 1
        if step % args.eval_every == 0 or progress.fraction(step) >= 1.0:
            v = window_loss(model, valid_ids, args.seq, 64, device)
            epoch = step * args.batch * args.seq / train_ids.numel()
            train_loss = float(running) / running_n
            history.append({"step": step, "epoch": round(epoch, 3), "train_loss": train_loss,
                            "valid_loss": v, "seconds": round(progress.elapsed(), 1), "lr": lr})
            log(f"step {step} epoch {epoch:.2f} train {train_loss:.4f} valid {v:.4f} lr {lr:.2e} "
                f"{progress.elapsed():.0f}s")
            running, running_n = 0.0, 0
            if v < best[0]:
                best = (v, {k: t.detach().clone() for k, t in model.state_dict().items()}, step)

    model.load_state_dict(best[1])
    log(f"best valid loss {best[0]:.4f} at step {best[2]}")
    metala_torch.save_checkpoint(model, args.out, dtype=args.dtype)

    # Figures on the saved weights, as the runtime reads them.
    heldout_ids = encode(tok, heldout_text)
    sample_ids = encode(tok, sample_text)
    ref = {"scoring": "whole file as one sequence, no special tokens added, from the empty state; "
                      "nll = mean over t=1..T-1 of -log p(token_t | tokens_<t); ppl = exp(nll)",
           "weights": args.dtype, "parameters": params}
    for dtype, name in ((torch.float64, "float64"), (torch.float32, "float32")):
        saved = metala_torch.load_checkpoint(args.out, dtype=dtype).to(device)
        ref[name] = {"heldout.txt": figures(sequence_nll(saved, heldout_ids, device), len(heldout_ids)),
                     "heldout-sample.txt": figures(sequence_nll(saved, sample_ids, device), len(sample_ids))}
        log(name, json.dumps(ref[name]))
    ref["valid_split"] = figures(sequence_nll(saved, valid_ids.tolist(), device), valid_ids.numel())
    ref["heldout_sample_token_ids"] = sample_ids
    write_json(os.path.join(args.out, "reference.json"), ref)

    train_info = {
        "args": vars(args), "config": config, "parameters": params, "steps": step, "best_step": best[2],
        "train_tokens": train_ids.numel(), "valid_tokens": valid_ids.numel(), "heldout_tokens": len(heldout_ids),
        "seconds": round(progress.elapsed(), 1), "device": torch.cuda.get_device_name() if cuda else "cpu",
        "torch": torch.__version__, "history": history,
        "greedy_sample": greedy_sample(saved, tok, "The jury said", 40, device),
    }
    write_json(os.path.join(args.out, "train_log.json"), train_info)
    with open(os.path.join(args.out, "loss_curve.svg"), "w") as f:
        f.write(line_chart([
            ("train (dropout on)", "#1f77b4", [(h["step"], h["train_loss"]) for h in history]),
            ("validation", "#d62728", [(h["step"], h["valid_loss"]) for h in history]),
        ], "metala-brown: next-token loss", "step", "cross-entropy (nats/token)"))
    log("done", json.dumps({k: train_info[k] for k in ("steps", "best_step", "seconds", "greedy_sample")}))


if __name__ == "__main__":
    main()
