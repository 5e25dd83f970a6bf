"""Helpers shared by train_lm.py and train_mqar.py: the model import, the
learning-rate schedule, training-only dropout, and result files."""

import json
import math
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import metala_torch  # noqa: E402  (tools/metala_torch.py: the one PyTorch MetaLA of the project)


def pick_device():
    """The GPU when there is one. Training runs in float32 (TF32 matmuls), not
    autocast: autocast would run the GLA's einsums in bf16, while the official
    kernels and the runtime keep the recurrence in f32."""
    if torch.cuda.is_available():
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        return torch.device("cuda")
    return torch.device("cpu")


class Progress:
    """Training ends at whichever comes first, a step count or a wall-clock
    budget; the schedule follows the fraction done, so a slower machine gets
    the same schedule shape in fewer steps."""

    def __init__(self, max_steps, seconds):
        self.max_steps = max_steps
        self.seconds = seconds
        self.start = time.time()

    def elapsed(self):
        return time.time() - self.start

    def fraction(self, step):
        return min(1.0, max(step / self.max_steps, self.elapsed() / self.seconds))


def lr_at(fraction, peak, warmup=0.03, floor=0.1):
    """Linear warm-up, then cosine decay to floor * peak."""
    if fraction < warmup:
        return peak * fraction / warmup
    t = (fraction - warmup) / (1 - warmup)
    return peak * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * t)))


def add_residual_dropout(model, p):
    """Dropout on the embedding output and on each mixer's output, during
    training only. Done with forward hooks so that the model (and so the
    checkpoint and the runtime) stays exactly the official architecture."""
    if p <= 0:
        return

    def on_tensor(module, inputs, output):
        return F.dropout(output, p, module.training)

    def on_mixer(module, inputs, output):
        return (F.dropout(output[0], p, module.training),) + tuple(output[1:])

    model.model.embed_tokens.register_forward_hook(on_tensor)
    for layer in model.model.layers:
        layer.token_mixer.register_forward_hook(on_mixer)
        layer.channel_mixer.register_forward_hook(on_tensor)


def make_optimizer(model, lr, weight_decay):
    """AdamW; no decay on biases, aug_balance and the conv kernels (1-D or tiny)."""
    decay, plain = [], []
    for name, p in model.named_parameters():
        (decay if p.dim() == 2 else plain).append(p)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": plain, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.95), eps=1e-8)


def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=1)
        f.write("\n")


def log(*parts):
    print(*parts, flush=True)
