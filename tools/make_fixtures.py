"""Writes the test fixtures under test/fixtures/ (format: test/fixtures/README.md).

    /usr/bin/python3 tools/make_fixtures.py [--out test/fixtures] [--only NAME ...]

Deterministic: weights and tokens come from numpy's RandomState (a frozen
stream), so every machine writes the same weights. Expected values are
computed in float64 with the token-by-token recurrence, from the weights as
stored (after rounding to the checkpoint dtype), and then cross-checked
against the chunked form, a split prefill/decode and a reload of the written
checkpoint. The script also checks that every part of a layer visibly moves
the logits, so a runtime that drops or misplaces one cannot pass by accident.
"""

import argparse
import json
import math
import os
import shutil
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import metala_torch as mt  # noqa: E402
import safetensors_io  # noqa: E402

torch.set_grad_enabled(False)

STORAGE = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16}
CASE_LENGTHS = [1, 2, 63, 64, 65, 130, 300]
FIXED_CASE = [5, 9, 13]
ABLATION_MIN = 1e-2  # every component must move the logits by more than this (relative)
AGREE_TOL = 1e-9  # float64 chunked vs recurrent vs split, relative

FIXTURES = [
    {
        "name": "tiny-f32",
        "description": "d=64, 2 layers, 2 heads, glu_dim 128, vocab 256, tied head, F32",
        "dtype": "F32",
        "config": dict(vocab_size=256, decoder_embed_dim=64, decoder_layers=2, decoder_attention_heads=2,
                       glu_dim=128, tie_word_embeddings=True),
    },
    {
        "name": "bf16-untied",
        "description": "d=96, 2 layers, 3 heads (K=16, V=32), glu_dim 160, vocab 300, untied lm_head, BF16",
        "dtype": "BF16",
        "config": dict(vocab_size=300, decoder_embed_dim=96, decoder_layers=2, decoder_attention_heads=3,
                       glu_dim=160, tie_word_embeddings=False),
    },
    {
        "name": "strong-decay",
        "description": "d=64, 2 layers, 2 heads, glu_dim 128, vocab 192, tied head, F32; k_gate scaled up so many decays "
                       "alpha = exp(logsigmoid(a)/16) are below 1e-4",
        "dtype": "F32",
        "config": dict(vocab_size=192, decoder_embed_dim=64, decoder_layers=2, decoder_attention_heads=2,
                       glu_dim=128, tie_word_embeddings=True),
        "k_gate_std": 60.0,
    },
    {
        "name": "sharded-f16",
        "description": "d=128, 2 layers, 4 heads (K=16, V=32), glu_dim -1 (= d), vocab 192, untied, F16 in two "
                       "shards with model.safetensors.index.json",
        "dtype": "F16",
        "shards": 2,
        "config": dict(vocab_size=192, decoder_embed_dim=128, decoder_layers=2, decoder_attention_heads=4,
                       glu_dim=-1, tie_word_embeddings=False),
    },
    {
        "name": "layernorm-gelu",
        "description": "d=64, 2 layers, 1 head (K=32, V=64), glu_dim 96, vocab 192, norm_type layernorm (weights "
                       "and biases), glu_act gelu (erf form), bias true, no_scale_embedding false (embeddings "
                       "times sqrt(d)), untied, F32",
        "dtype": "F32",
        "config": dict(vocab_size=192, decoder_embed_dim=64, decoder_layers=2, decoder_attention_heads=1,
                       glu_dim=96, norm_type="layernorm", glu_act="gelu", bias=True, no_scale_embedding=False,
                       tie_word_embeddings=False),
    },
]


def weight_std(name, shape, cfg, spec):
    """Scales chosen so that every part of a layer matters to the logits."""
    d = cfg["decoder_embed_dim"]
    if name == "model.embed_tokens.weight":
        return 1.0 if cfg["no_scale_embedding"] else 1.0 / math.sqrt(d)
    if name == "lm_head.weight":
        return 1.0 / math.sqrt(d)
    if name.endswith("k_gate.weight"):
        return spec.get("k_gate_std", 2.0 / math.sqrt(shape[1]))
    if name.endswith("aug_balance"):
        return 4.0
    if name.endswith("conv1d.weight"):
        return 0.6
    if name.endswith(".bias"):
        return 0.5
    if name.endswith("norm.weight"):
        return 0.3  # around 1, see fill_weights
    if len(shape) == 2:
        return 1.5 / math.sqrt(shape[1])
    raise ValueError(f"no scale for {name}")


def fill_weights(model, spec, seed):
    """Random weights, rounded to the storage dtype, model in float64."""
    rng = np.random.RandomState(seed)
    cfg = model.config
    store = STORAGE[spec["dtype"]]
    model.double()
    params = dict(model.named_parameters())  # a tied head appears once, as the embedding
    for name in sorted(params):
        p = params[name]
        w = rng.standard_normal(tuple(p.shape)) * weight_std(name, p.shape, cfg, spec)
        if name.endswith("norm.weight"):
            w = w + 1.0
        p.copy_(torch.from_numpy(w).to(store).to(torch.float64))


def random_cases(vocab, seed):
    rng = np.random.RandomState(seed + 1000)
    cases = [rng.randint(0, vocab, size=n).tolist() for n in CASE_LENGTHS]
    return cases + [list(FIXED_CASE)]


def run(model, tokens, mode="recurrent", states=None):
    ids = torch.tensor([tokens], dtype=torch.long)
    logits, st = model(ids, states=states, mode=mode)
    return logits[0], st


def rel_err(a, b):
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-30))


def nll(logits, tokens):
    if len(tokens) < 2:
        return None
    lp = torch.log_softmax(logits[:-1].double(), dim=-1)
    tgt = torch.tensor(tokens[1:], dtype=torch.long)
    return float(-lp[torch.arange(len(tokens) - 1), tgt].mean())


def check_forms_agree(model, tokens, ref_logits, ref_states):
    """Chunked form (two chunk sizes) and a split prefill + step decode agree with the recurrence."""
    worst = 0.0
    for cs in (16, 64):
        lg, st = model(torch.tensor([tokens]), mode="chunk", chunk_size=cs)
        worst = max(worst, rel_err(lg[0], ref_logits))
        for (S, c), (S0, c0) in zip(st, ref_states):
            worst = max(worst, rel_err(S, S0), rel_err(c, c0) if c0.abs().max() > 0 else float((c - c0).abs().max()))
    if len(tokens) >= 3:
        cut = len(tokens) * 2 // 3
        lg1, st = run(model, tokens[:cut], "chunk")
        parts = [lg1]
        for t in tokens[cut:]:
            lg, st = run(model, [t], "recurrent", st)
            parts.append(lg)
        worst = max(worst, rel_err(torch.cat(parts), ref_logits))
        for (S, c), (S0, c0) in zip(st, ref_states):
            worst = max(worst, rel_err(S, S0))
    if worst > AGREE_TOL:
        raise SystemExit(f"forms disagree: relative error {worst:.3e} > {AGREE_TOL}")
    return worst


def ablations(model):
    """(label, function that breaks one component in place) pairs."""
    cfg = model.config
    out = []
    for i, layer in enumerate(model.model.layers):
        tm, cm = layer.token_mixer, layer.channel_mixer
        out += [
            (f"L{i} aug_balance=0", lambda tm=tm: tm.aug_balance.zero_()),
            (f"L{i} conv=identity", lambda tm=tm: (tm.conv1d.weight.zero_(), tm.conv1d.weight[:, 0, 3].fill_(1.0))),
            (f"L{i} g_proj.bias=0", lambda tm=tm: tm.g_proj.bias.zero_()),
            (f"L{i} k_gate=0", lambda tm=tm: tm.k_gate.weight.zero_()),
            (f"L{i} q_proj=0", lambda tm=tm: tm.q_proj.weight.zero_()),
            (f"L{i} token_mixer out=0", lambda tm=tm: tm.out_proj.weight.zero_()),
            (f"L{i} GLU out=0", lambda cm=cm: cm.l3.weight.zero_()),
            (f"L{i} q scale=1", lambda tm=tm: setattr(tm, "scale", 1.0)),
        ]
        if cfg["bias"]:
            out += [(f"L{i} GLU {n}.bias=0", lambda cm=cm, n=n: getattr(cm, n).bias.zero_()) for n in ("l1", "l2", "l3")]
        if cfg["norm_type"] != "simplermsnorm":
            for n in ("token_norm", "channel_norm"):
                norm = getattr(layer, n)
                out += [(f"L{i} {n}.weight=1", lambda norm=norm: norm.weight.fill_(1.0)),
                        (f"L{i} {n}.bias=0", lambda norm=norm: norm.bias.zero_())]
    if cfg["norm_type"] != "simplermsnorm":
        fn = model.model.final_norm
        out += [("final_norm.weight=1", lambda: fn.weight.fill_(1.0)), ("final_norm.bias=0", lambda: fn.bias.zero_())]
    if not model.tied:
        out.append(("lm_head := embedding", lambda: model.lm_head.weight.copy_(model.model.embed_tokens.weight)))
    if not cfg["no_scale_embedding"]:
        out.append(("no embed scale", lambda: setattr(model.model, "embed_scale", 1.0)))
    return out


def check_ablations(model, tokens):
    """Breaks each component in turn (restoring it after) and measures how far the logits move."""
    base, _ = run(model, tokens, "chunk")
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    attrs = [(m, a, getattr(m, a)) for m in model.modules() for a in ("scale", "embed_scale") if hasattr(m, a)]
    results = []
    for label, breaker in ablations(model):
        breaker()
        lg, _ = run(model, tokens, "chunk")
        results.append((label, rel_err(lg, base)))
        model.load_state_dict(weights)
        for m, a, v in attrs:
            setattr(m, a, v)
    # The GLA state carries information beyond the 4-token conv window.
    short, _ = run(model, tokens[-4:], "chunk")
    results.append(("history beyond conv window", rel_err(short[-1], base[-1])))
    weak = [(l, r) for l, r in results if not r > ABLATION_MIN]
    return results, weak


def decay_fraction(model, tokens, threshold=1e-4):
    """Fraction of all decays alpha (every layer, position, key dim) below threshold."""
    small = total = 0
    x = model.model.embed_tokens(torch.tensor([tokens])) * model.model.embed_scale
    states = None
    for layer in model.model.layers:
        c, _ = layer.token_mixer.short_conv(layer.token_norm(x), None)
        alpha = torch.exp(torch.nn.functional.logsigmoid(layer.token_mixer.k_gate(c)) / mt.DECAY_NORMALIZER)
        small += int((alpha < threshold).sum())
        total += alpha.numel()
        x, _, _ = layer(x, None, None, "chunk")
    return small / total


def make_fixture(spec, out_root, seed):
    name = spec["name"]
    folder = os.path.join(out_root, name)
    if os.path.isdir(folder):
        shutil.rmtree(folder)
    model = mt.MetaLAForCausalLM(mt.make_config(**spec["config"]))
    fill_weights(model, spec, seed)
    model.eval()
    mt.save_checkpoint(model, folder, dtype=spec["dtype"], shards=spec.get("shards", 1))

    # What a loader sees must be exactly these weights.
    loaded = mt.load_checkpoint(folder, dtype=torch.float64)
    for k, v in model.state_dict().items():
        if not torch.equal(loaded.state_dict()[k], v):
            raise SystemExit(f"{name}: {k} does not round-trip through the checkpoint")
    if loaded.tied != model.tied:
        raise SystemExit(f"{name}: head tying does not round-trip")

    cases = random_cases(model.config["vocab_size"], seed)
    tensors = {}
    entries = []
    worst = 0.0
    for i, tokens in enumerate(cases):
        logits, states = run(model, tokens, "recurrent")
        if not torch.isfinite(logits).all():
            raise SystemExit(f"{name}: case {i} has non-finite logits")
        worst = max(worst, check_forms_agree(model, tokens, logits, states))
        tensors[f"logits.{i}"] = logits.float()
        for l, (S, conv) in enumerate(states):
            tensors[f"state.{i}.layer{l}.S"] = S[0].float()
            tensors[f"state.{i}.layer{l}.conv"] = conv[0].float()
        entries.append({"tokens": tokens, "nll": nll(logits, tokens), "logits": f"logits.{i}", "state": f"state.{i}"})
    safetensors_io.write(os.path.join(folder, "expected.safetensors"), tensors, "F32")
    with open(os.path.join(folder, "expected.json"), "w") as f:
        # One case per line keeps the file readable with long token lists.
        f.write('{"description": %s,\n "cases": [\n  ' % json.dumps(spec["description"]))
        f.write(",\n  ".join(json.dumps(e) for e in entries))
        f.write("\n ]\n}\n")

    results, weak = check_ablations(model, cases[CASE_LENGTHS.index(130)])
    frac = decay_fraction(model, cases[CASE_LENGTHS.index(300)])
    size = sum(os.path.getsize(os.path.join(folder, f)) for f in os.listdir(folder))
    print(f"{name}: {len(cases)} cases, {size / 1e6:.2f} MB, forms agree to {worst:.1e}, "
          f"alpha<1e-4: {100 * frac:.1f}%, nll(300 tokens) {entries[CASE_LENGTHS.index(300)]['nll']:.3f}")
    print("   smallest ablation effects: " + ", ".join(f"{l} {r:.3f}" for l, r in sorted(results, key=lambda x: x[1])[:4]))
    if weak:
        raise SystemExit(f"{name}: components that barely change the logits: {weak}")
    if spec.get("k_gate_std") and frac < 0.2:
        raise SystemExit(f"{name}: only {100 * frac:.1f}% of decays below 1e-4")
    return size


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "fixtures"))
    ap.add_argument("--only", nargs="*", help="fixture names to (re)write")
    args = ap.parse_args()
    total = 0
    for idx, spec in enumerate(FIXTURES):
        if args.only and spec["name"] not in args.only:
            continue
        total += make_fixture(spec, os.path.abspath(args.out), seed=idx + 1)
    print(f"total {total / 1e6:.2f} MB (torch {torch.__version__})")


if __name__ == "__main__":
    main()
