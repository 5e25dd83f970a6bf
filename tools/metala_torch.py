"""MetaLA in plain PyTorch: an independent reference for the runtime's tests,
and the model the training scripts train.

Written from the official BICLab/MetaLA code (metala/modeling_metala.py,
norm.py, utils.py, configuration_metala.py) without its CUDA-only
dependencies (flash-linear-attention, causal_conv1d). Module and parameter
names follow the official code, so `state_dict()` keys are the official
checkpoint tensor names. Runs on torch >= 1.13, CPU or GPU.

Two forms of the gated linear attention (GLA) recurrence, chosen per call:
  mode="recurrent": the token-by-token recurrence (the definition; slow).
  mode="chunk":     the chunked parallel form (fast, autograd friendly).
Both compute in float32, or in float64 when the model is float64.

Where this file and the official code differ, it is on purpose:
  * a multi-token call that is given a conv state continues the convolution
    from it (the official code only uses the conv state for single-token
    steps and restarts the convolution from zeros otherwise);
  * the conv state is the last 3 conv inputs, [B, 3, d], oldest first (the
    official cache holds 4, the oldest of which is never read again).
"""

import json
import math
import os

import torch
import torch.nn.functional as F
from torch import nn

try:  # imported as tools.metala_torch or from inside tools/
    from . import safetensors_io
except ImportError:
    import safetensors_io

CONV_KERNEL = 4
DECAY_NORMALIZER = 16  # gk = logsigmoid(k_gate(x)) / 16 in the official code

# Defaults of the official MetaLAConfig.
CONFIG_DEFAULTS = {
    "model_type": "metala",
    "vocab_size": 32000,
    "decoder_embed_dim": 1024,
    "decoder_layers": 24,
    "decoder_attention_heads": 8,
    "glu_act": "silu",
    "glu_dim": 5632,
    "bias": False,
    "norm_type": "simplermsnorm",
    "no_scale_embedding": True,
    "pad_token_id": 2,
    "bos_token_id": 1,
    "eos_token_id": 2,
    "init_std": 0.02,
    "tie_word_embeddings": True,
}


def make_config(**fields):
    """A complete config dict (official field names) from the given fields."""
    cfg = dict(CONFIG_DEFAULTS)
    cfg.update(fields)
    return cfg


# ---------------------------------------------------------------- activations


def activation_fn(name):
    """The GLU activation for `glu_act`, as metala/utils.py get_activation_fn
    maps it (unknown names become the identity there, and here)."""
    if name == "gelu":
        return F.gelu
    if name == "relu":
        return F.relu
    if name == "elu":
        return F.elu
    if name == "sigmoid":
        return torch.sigmoid
    if name == "exp":
        # Shift by the row max (not differentiated through) as the official code does.
        return lambda x: torch.exp(x - x.detach().max(dim=-1, keepdim=True).values)
    if name == "leak":
        return F.leaky_relu
    if name == "1+elu":
        return lambda x: 1 + F.elu(x)
    if name == "2+elu":
        return lambda x: 2 + F.elu(x)
    if name in ("silu", "swish"):
        return F.silu
    if name == "sine":
        return torch.sin
    return lambda x: x


# ---------------------------------------------------------------------- norms


class SimpleRMSNorm(nn.Module):
    """x / sqrt(mean(x^2) + 1e-6), no weight ("simplermsnorm")."""

    def __init__(self, dim, eps=1e-6):
        super().__init__()
        self.eps = eps

    def forward(self, x):
        # The official norm computes in float32 and casts back; float64 stays float64.
        xf = x if x.dtype == torch.float64 else x.float()
        return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)).type_as(x)


def make_norm(norm_type, dim):
    # Any norm_type other than simplermsnorm is nn.LayerNorm(dim) in the official code.
    return SimpleRMSNorm(dim) if norm_type == "simplermsnorm" else nn.LayerNorm(dim)


# ------------------------------------------------------------------------ GLA


def gla_recurrent(q, k, v, gk, scale, state=None):
    """The definition, token by token. q, k, gk: [B, H, T, K]; v: [B, H, T, V];
    state: [B, H, K, V] or None. Returns o [B, H, T, V] and the final state.
        S_t = diag(exp(gk_t)) S_{t-1} + k_t^T v_t ;  o_t = (scale * q_t) S_t"""
    B, H, T, K = q.shape
    V = v.shape[-1]
    S = q.new_zeros(B, H, K, V) if state is None else state.to(q.dtype)
    alpha = torch.exp(gk)
    outs = []
    for t in range(T):
        S = alpha[:, :, t, :, None] * S + k[:, :, t, :, None] * v[:, :, t, None, :]
        outs.append(torch.einsum("bhk,bhkv->bhv", q[:, :, t] * scale, S))
    return torch.stack(outs, dim=2), S


def gla_chunked(q, k, v, gk, scale, state=None, chunk_size=16):
    """The chunked parallel form; same inputs/outputs as gla_recurrent.

    Per chunk of C tokens with b_t the inclusive cumulative log decay inside
    the chunk (non-increasing):
      intra: o_t += sum_{s<=t} [scale * sum_k q_t k_s exp(b_t - b_s)] v_s,
             computed elementwise over (t, s, k), exponents <= 0;
      inter: o_t += (scale * q_t * exp(b_t)) S_n, S_n the state at the chunk start.
    The chunk-start states come without a sequential loop: with P_n the total
    log decay of chunks 0..n-1 and U_m the state contribution of chunk m
    (decayed to its own end),
      S_n = exp(P_n) S_0 + sum_{m<n} exp(P_n - P_{m+1}) U_m,
    again with exponents <= 0. Every exp argument is <= 0, so strong decays
    underflow to 0 instead of overflowing."""
    B, H, T, K = q.shape
    V = v.shape[-1]
    C = chunk_size
    N = (T + C - 1) // C
    pad = N * C - T
    if pad:
        # Padding tokens: q=k=v=0 and log decay 0 leave outputs and state unchanged.
        q, k, v, gk = (F.pad(x, (0, 0, 0, pad)) for x in (q, k, v, gk))
    q = q.reshape(B, H, N, C, K)
    k = k.reshape(B, H, N, C, K)
    v = v.reshape(B, H, N, C, V)
    b = gk.reshape(B, H, N, C, K).cumsum(dim=3)  # inclusive, within each chunk

    # Intra-chunk scores A[t, s], s <= t.
    causal = torch.ones(C, C, dtype=torch.bool, device=q.device).tril()
    diff = b[:, :, :, :, None, :] - b[:, :, :, None, :, :]  # [B,H,N,C(t),C(s),K]
    diff = diff.masked_fill(~causal[:, :, None], float("-inf"))  # s > t: exp -> 0, never +inf
    A = torch.einsum("bhntsk,bhnsk->bhnts", q[:, :, :, :, None, :] * torch.exp(diff), k) * scale
    o = A @ v  # [B,H,N,C,V]

    # Chunk-start states.
    b_last = b[:, :, :, -1, :]  # [B,H,N,K] total log decay of each chunk
    U = (k * torch.exp(b_last[:, :, :, None, :] - b)).transpose(-1, -2) @ v  # [B,H,N,K,V]
    P = torch.cumsum(b_last, dim=2)  # P[m] = total decay of chunks 0..m
    P_start = P - b_last  # decay of chunks 0..n-1 (0 for n=0)
    # W[n, m] = exp(P_start[n] - P[m]) for m < n.
    W = P_start[:, :, :, None, :] - P[:, :, None, :, :]  # [B,H,N(n),N(m),K]
    strict = torch.ones(N, N, dtype=torch.bool, device=q.device).tril(-1)
    W = torch.exp(W.masked_fill(~strict[:, :, None], float("-inf")))
    # S_starts[n] = sum_m W[n,m] * U[m] (per k) -> batched matmul over (b,h,k).
    S_starts = torch.einsum("bhnmk,bhmkv->bhnkv", W, U)
    if state is not None:
        S0 = state.to(q.dtype)
        S_starts = S_starts + torch.exp(P_start)[..., None] * S0[:, :, None]
    o = o + (q * scale * torch.exp(b)) @ S_starts
    S_end = torch.einsum("bhmk,bhmkv->bhkv", torch.exp(P[:, :, -1:, :] - P), U)
    if state is not None:
        S_end = S_end + torch.exp(P[:, :, -1, :])[..., None] * S0
    o = o.reshape(B, H, N * C, V)[:, :, :T]
    return o, S_end


# --------------------------------------------------------------------- layers


class QVMetaLASelfAug(nn.Module):
    """The token mixer (official QVMetaLA_self_aug)."""

    def __init__(self, embed_dim, num_heads):
        super().__init__()
        if embed_dim % 2 or (embed_dim // 2) % num_heads:
            raise ValueError(f"decoder_embed_dim {embed_dim}: d/2 must divide into {num_heads} heads")
        self.embed_dim = embed_dim
        self.num_heads = num_heads
        dk = embed_dim // 2
        self.key_dim = dk // num_heads  # K
        self.head_dim = embed_dim // num_heads  # V
        self.scale = self.key_dim ** -0.5  # flash-linear-attention's default q scale
        self.q_proj = nn.Linear(embed_dim, dk, bias=False)
        self.k_gate = nn.Linear(embed_dim, dk, bias=False)
        self.v_proj = nn.Linear(embed_dim, embed_dim, bias=False)
        self.g_proj = nn.Linear(embed_dim, embed_dim, bias=True)
        self.out_proj = nn.Linear(embed_dim, embed_dim, bias=False)
        self.aug_balance = nn.Parameter(torch.zeros(dk))
        self.conv1d = nn.Conv1d(embed_dim, embed_dim, CONV_KERNEL, groups=embed_dim, bias=False,
                                padding=CONV_KERNEL - 1)

    def short_conv(self, x, conv_state):
        """Causal depthwise conv + SiLU over x [B,T,d] continuing from
        conv_state [B,3,d] (zeros if None). Returns (out, new conv state)."""
        B, T, d = x.shape
        if conv_state is None:
            conv_state = x.new_zeros(B, CONV_KERNEL - 1, d)
        xx = torch.cat([conv_state.to(x.dtype), x], dim=1)  # [B, T+3, d]
        y = F.conv1d(xx.transpose(1, 2), self.conv1d.weight.to(x.dtype), groups=d)  # [B,d,T]
        return F.silu(y.transpose(1, 2)), xx[:, -(CONV_KERNEL - 1):]

    def _heads(self, x, dtype):
        B, T, _ = x.shape
        return x.reshape(B, T, self.num_heads, -1).transpose(1, 2).to(dtype)

    def forward(self, x, state=None, conv_state=None, mode="chunk", chunk_size=16):
        c, new_conv = self.short_conv(x, conv_state)
        q = self.q_proj(c)
        a = self.k_gate(c)
        v = self.v_proj(c)
        g = self.g_proj(c)
        # The official code runs the GLA and the augmentation in float32 (fla
        # kernels), so autocast must not push them down to bf16/f16 here.
        cd = torch.float64 if x.dtype == torch.float64 else torch.float32
        with torch.autocast(device_type=x.device.type, enabled=False):
            gk = F.logsigmoid(a.to(cd)) / DECAY_NORMALIZER
            k = 1 - torch.exp(gk)
            q, k, v, gk = (self._heads(t, cd) for t in (q, k, v, gk))
            if mode == "recurrent":
                o, new_state = gla_recurrent(q, k, v, gk, self.scale, state)
            elif mode == "chunk":
                o, new_state = gla_chunked(q, k, v, gk, self.scale, state, chunk_size)
            else:
                raise ValueError(f"mode must be 'chunk' or 'recurrent', got {mode!r}")
            # Self-augmentation, q unscaled: o += sigmoid((q . (k * aug)) * v), per head.
            aug = self.aug_balance.to(cd).reshape(self.num_heads, 1, self.key_dim)
            w = (q * k * aug).sum(-1, keepdim=True)  # [B,H,T,1]
            o = o + torch.sigmoid(w * v)
            o = F.layer_norm(o, (self.head_dim,), eps=1e-5)
        B, H, T, V = o.shape
        o = o.transpose(1, 2).reshape(B, T, H * V).to(x.dtype)
        return self.out_proj(F.silu(g) * o), new_state, new_conv


class GLU(nn.Module):
    def __init__(self, d1, d2, act, bias=False):
        super().__init__()
        self.l1 = nn.Linear(d1, d2, bias=bias)
        self.l2 = nn.Linear(d1, d2, bias=bias)
        self.l3 = nn.Linear(d2, d1, bias=bias)
        self.act = activation_fn(act)

    def forward(self, x):
        return self.l3(self.act(self.l1(x)) * self.l2(x))


class MetaLADecoderLayer(nn.Module):
    def __init__(self, config):
        super().__init__()
        d = config["decoder_embed_dim"]
        glu_dim = config["glu_dim"] if config["glu_dim"] != -1 else d
        self.token_mixer = QVMetaLASelfAug(d, config["decoder_attention_heads"])
        self.token_norm = make_norm(config["norm_type"], d)
        self.channel_mixer = GLU(d, glu_dim, config["glu_act"], bias=config["bias"])
        self.channel_norm = make_norm(config["norm_type"], d)

    def forward(self, x, state=None, conv_state=None, mode="chunk", chunk_size=16):
        y, state, conv_state = self.token_mixer(self.token_norm(x), state, conv_state, mode, chunk_size)
        x = x + y
        x = x + self.channel_mixer(self.channel_norm(x))
        return x, state, conv_state


class MetaLAModel(nn.Module):
    def __init__(self, config):
        super().__init__()
        d = config["decoder_embed_dim"]
        pad = config.get("pad_token_id")
        # As officially: the pad row of the embedding gets no gradient from the lookup.
        padding_idx = pad if isinstance(pad, int) and 0 <= pad < config["vocab_size"] else None
        self.embed_tokens = nn.Embedding(config["vocab_size"], d, padding_idx)
        self.layers = nn.ModuleList([MetaLADecoderLayer(config) for _ in range(config["decoder_layers"])])
        self.final_norm = make_norm(config["norm_type"], d)
        self.embed_scale = 1.0 if config["no_scale_embedding"] else math.sqrt(d)


class MetaLAForCausalLM(nn.Module):
    """MetaLA language model built from a config dict (official field names;
    missing fields take the official defaults).

    forward(input_ids [B,T] long, states=None, mode="chunk", chunk_size=16)
      -> (logits [B,T,vocab], states)
    states: a list with one (S [B,H,K,V], conv [B,3,d]) tuple per layer, the
    state after the last token; pass it back to continue the sequence. With
    tie_word_embeddings, lm_head.weight IS model.embed_tokens.weight."""

    def __init__(self, config):
        super().__init__()
        self.config = make_config(**config)
        self.model = MetaLAModel(self.config)
        cfg = self.config
        self.lm_head = nn.Linear(cfg["decoder_embed_dim"], cfg["vocab_size"], bias=False)
        if cfg["tie_word_embeddings"]:
            self.lm_head.weight = self.model.embed_tokens.weight
        init_official_(self)

    @property
    def tied(self):
        return self.lm_head.weight is self.model.embed_tokens.weight

    def forward(self, input_ids, states=None, mode="chunk", chunk_size=16):
        m = self.model
        x = m.embed_tokens(input_ids) * m.embed_scale
        new_states = []
        for i, layer in enumerate(m.layers):
            S, conv = states[i] if states is not None else (None, None)
            x, S, conv = layer(x, S, conv, mode, chunk_size)
            new_states.append((S, conv))
        return self.lm_head(m.final_norm(x)), new_states

    def loss(self, input_ids, mode="chunk", chunk_size=16):
        """Mean next-token cross entropy over positions 1..T-1."""
        logits, _ = self(input_ids, mode=mode, chunk_size=chunk_size)
        return F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]).float(), input_ids[:, 1:].reshape(-1))


def init_official_(model):
    """The initialisation the official model ends up with: every Linear and the
    embedding N(0, init_std) (HF _init_weights overrides the xavier init of
    q_proj/k_gate), biases 0, the pad embedding row 0, aug_balance 0, the conv
    kernel at PyTorch's default, LayerNorms weight 1 / bias 0."""
    std = model.config["init_std"]
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, nn.Linear):
                mod.weight.normal_(0.0, std)
                if mod.bias is not None:
                    mod.bias.zero_()
            elif isinstance(mod, nn.Embedding):
                mod.weight.normal_(0.0, std)
                if mod.padding_idx is not None:
                    mod.weight[mod.padding_idx].zero_()
            elif isinstance(mod, QVMetaLASelfAug):
                mod.aug_balance.zero_()


# ---------------------------------------------------------------- checkpoints

# Config fields written to config.json, besides the architecture name.
CONFIG_KEYS = [
    "model_type", "vocab_size", "decoder_embed_dim", "decoder_layers", "decoder_attention_heads",
    "glu_act", "glu_dim", "bias", "norm_type", "no_scale_embedding", "pad_token_id", "bos_token_id",
    "eos_token_id", "init_std", "tie_word_embeddings",
]


def checkpoint_tensors(model, tie=None):
    """{official name: tensor}; lm_head.weight left out when tied."""
    tie = model.tied if tie is None else tie
    sd = model.state_dict()
    if tie:
        sd.pop("lm_head.weight", None)
    return {k: v.detach() for k, v in sd.items()}


def save_checkpoint(model, folder, dtype="F32", shards=1, tie=None, extra_config=None):
    """Writes config.json and model.safetensors (shards == 1) or
    model-0000i-of-0000n.safetensors + model.safetensors.index.json.
    tie=None: as the model is; True: omit lm_head.weight (only valid if it
    equals the embedding); False: write lm_head.weight."""
    os.makedirs(folder, exist_ok=True)
    tie = model.tied if tie is None else tie
    if tie and not model.tied and not torch.equal(model.lm_head.weight, model.model.embed_tokens.weight):
        raise ValueError("tie=True but lm_head.weight differs from the embedding")
    tensors = checkpoint_tensors(model, tie)
    cfg = {k: model.config[k] for k in CONFIG_KEYS}
    cfg["tie_word_embeddings"] = bool(tie)
    cfg["architectures"] = ["MetaLAForCausalLM"]
    cfg["torch_dtype"] = {"F32": "float32", "F16": "float16", "BF16": "bfloat16"}[dtype]
    cfg.update(extra_config or {})
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")
    meta = {"format": "pt"}
    if shards == 1:
        safetensors_io.write(os.path.join(folder, "model.safetensors"), tensors, dtype, meta)
        return
    names = list(tensors)  # state_dict order: embedding first, layers in order, head last
    per = (len(names) + shards - 1) // shards
    weight_map = {}
    total = 0
    for i in range(shards):
        part = names[i * per:(i + 1) * per]
        fname = f"model-{i + 1:05d}-of-{shards:05d}.safetensors"
        total += safetensors_io.write(os.path.join(folder, fname), {n: tensors[n] for n in part}, dtype, meta)
        weight_map.update({n: fname for n in part})
    with open(os.path.join(folder, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)
        f.write("\n")


def read_checkpoint_tensors(folder):
    index = os.path.join(folder, "model.safetensors.index.json")
    if os.path.exists(index):
        with open(index) as f:
            files = sorted(set(json.load(f)["weight_map"].values()))
    else:
        files = ["model.safetensors"]
    tensors = {}
    for fname in files:
        tensors.update(safetensors_io.read(os.path.join(folder, fname)))
    return tensors


def load_checkpoint(folder, dtype=torch.float32):
    """A MetaLAForCausalLM from a checkpoint folder, weights converted to `dtype`.
    The head is tied when lm_head.weight is absent."""
    with open(os.path.join(folder, "config.json")) as f:
        cfg = json.load(f)
    tensors = read_checkpoint_tensors(folder)
    cfg["tie_word_embeddings"] = "lm_head.weight" not in tensors
    model = MetaLAForCausalLM(cfg).to(dtype)
    missing, unexpected = model.load_state_dict({k: v.to(dtype) for k, v in tensors.items()}, strict=False)
    missing = [m for m in missing if not (m == "lm_head.weight" and model.tied)]
    if missing or unexpected:
        raise ValueError(f"{folder}: missing tensors {missing}, unexpected {unexpected}")
    return model


# ------------------------------------------------------------ self test/bench


def _self_test():
    """Checks the chunked form against the recurrence (values, states,
    gradients, initial states, continuation) in float64, and checkpoint
    round trips. Exits non-zero on failure."""
    import tempfile

    torch.manual_seed(0)
    torch.set_default_dtype(torch.float64)
    failures = []

    def check(label, err, tol):
        status = "ok " if err <= tol else "FAIL"
        print(f"{status} {label}: {err:.2e}")
        if err > tol:
            failures.append(label)

    def rel(a, b):
        return float((a - b).abs().max() / b.abs().max().clamp_min(1e-300))

    # Raw GLA, including strong decays and a given initial state.
    for T, C, gscale in [(1, 16, 1), (5, 16, 1), (16, 16, 1), (17, 8, 1), (100, 16, 1), (100, 64, 1), (77, 32, 300)]:
        B, H, K, V = 2, 3, 8, 12
        q, k = torch.randn(B, H, T, K), torch.rand(B, H, T, K)
        v = torch.randn(B, H, T, V)
        gk = F.logsigmoid(torch.randn(B, H, T, K) * gscale) / DECAY_NORMALIZER
        S0 = torch.randn(B, H, K, V)
        o1, s1 = gla_recurrent(q, k, v, gk, K ** -0.5, S0)
        o2, s2 = gla_chunked(q, k, v, gk, K ** -0.5, S0, C)
        check(f"gla T={T} C={C} decay scale {gscale}: output", rel(o2, o1), 1e-12)
        check(f"gla T={T} C={C} decay scale {gscale}: state", rel(s2, s1), 1e-12)

    # float32 with very strong decays: the chunked form and its gradients stay finite.
    q, k, v = (torch.randn(2, 2, 50, 8, dtype=torch.float32, requires_grad=True) for _ in range(3))
    a = (torch.randn(2, 2, 50, 8) * 3000).float().requires_grad_()
    o, s = gla_chunked(q, k, v, F.logsigmoid(a) / DECAY_NORMALIZER, 8 ** -0.5, chunk_size=32)
    (o.sum() + s.sum()).backward()
    finite = all(torch.isfinite(t).all() for t in (o, s, q.grad, k.grad, v.grad, a.grad))
    check("float32 strong decay: output, state, gradients finite", 0.0 if finite else 1.0, 0.0)

    configs = [
        dict(decoder_embed_dim=32, decoder_layers=2, decoder_attention_heads=2, glu_dim=48, vocab_size=50),
        dict(decoder_embed_dim=24, decoder_layers=1, decoder_attention_heads=3, glu_dim=-1, vocab_size=40,
             norm_type="layernorm", bias=True, glu_act="gelu", no_scale_embedding=False, tie_word_embeddings=False),
    ]
    acts = ["silu", "swish", "gelu", "relu", "elu", "sigmoid", "exp", "leak", "1+elu", "2+elu", "sine", "identity"]
    for cfg in configs:
        model = MetaLAForCausalLM(cfg).double()
        with torch.no_grad():
            for p in model.parameters():
                p.normal_(0, 0.5)
        ids = torch.randint(0, cfg["vocab_size"], (2, 45))
        with torch.no_grad():
            l1, st1 = model(ids, mode="recurrent")
            l2, st2 = model(ids, mode="chunk", chunk_size=16)
            check(f"model {cfg['decoder_embed_dim']}: chunk vs recurrent logits", rel(l2, l1), 1e-12)
            check(f"model {cfg['decoder_embed_dim']}: chunk vs recurrent states",
                  max(rel(a[0], b[0]) + rel(a[1], b[1]) for a, b in zip(st2, st1)), 1e-12)
            # Continuation: 30 tokens chunked, 10 chunked from the state, 5 single steps.
            la, st = model(ids[:, :30], mode="chunk")
            lb, st = model(ids[:, 30:40], states=st, mode="chunk")
            parts = [la, lb]
            for t in range(40, 45):
                lc, st = model(ids[:, t:t + 1], states=st, mode="recurrent")
                parts.append(lc)
            check(f"model {cfg['decoder_embed_dim']}: split prefill/decode logits", rel(torch.cat(parts, 1), l1), 1e-12)
        # Gradients agree.
        grads = []
        for mode in ("recurrent", "chunk"):
            model.zero_grad()
            model.loss(ids, mode=mode).backward()
            grads.append(torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None]))
        check(f"model {cfg['decoder_embed_dim']}: chunk vs recurrent gradients", rel(grads[1], grads[0]), 1e-10)
        # Checkpoint round trips.
        for dtype, shards in [("F32", 1), ("F16", 1), ("BF16", 3)]:
            with tempfile.TemporaryDirectory() as tmp:
                save_checkpoint(model, tmp, dtype=dtype, shards=shards)
                back = load_checkpoint(tmp, dtype=torch.float64)
                store = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16}[dtype]
                err = max(float((back.state_dict()[k] - v.to(store).double()).abs().max())
                          for k, v in model.state_dict().items())
                check(f"model {cfg['decoder_embed_dim']}: save/load {dtype} x{shards} (tied={model.tied})", err, 0.0)
                if back.tied != model.tied:
                    failures.append("tying round trip")
    for act in acts:
        m = MetaLAForCausalLM(dict(configs[0], glu_act=act)).double()
        with torch.no_grad():
            lg, _ = m(torch.randint(0, 50, (1, 7)))
        check(f"glu_act {act} runs finite", 0.0 if torch.isfinite(lg).all() else 1.0, 0.0)
    torch.set_default_dtype(torch.float32)
    if failures:
        raise SystemExit(f"{len(failures)} checks failed: {failures}")
    print("all checks passed")


def _bench(device, batch, seq, d, layers, heads, chunk_size, dtype):
    """Times one training step (forward + backward) of the chunked form."""
    import time

    cfg = dict(decoder_embed_dim=d, decoder_layers=layers, decoder_attention_heads=heads, glu_dim=2 * d,
               vocab_size=8192)
    model = MetaLAForCausalLM(cfg).to(device)
    ids = torch.randint(0, 8192, (batch, seq), device=device)
    amp = dtype != "f32"
    ctx = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if amp else None
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    for i in range(6):
        if i == 2:
            sync()
            t0 = time.time()
        if ctx:
            with ctx():
                loss = model.loss(ids, chunk_size=chunk_size)
        else:
            loss = model.loss(ids, chunk_size=chunk_size)
        loss.backward()
    sync()
    dt = (time.time() - t0) / 4
    mem = torch.cuda.max_memory_allocated() / 2 ** 30 if device == "cuda" else float("nan")
    print(f"bench {device} B={batch} T={seq} d={d} L={layers} H={heads} C={chunk_size} {dtype}: "
          f"{dt * 1000:.1f} ms/step, {batch * seq / dt / 1e3:.0f}k tok/s, peak {mem:.1f} GiB")


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description="metala_torch self test / benchmark")
    ap.add_argument("--bench", action="store_true", help="time training steps instead of testing")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seq", type=int, default=512)
    ap.add_argument("--d", type=int, default=256)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--chunk", type=int, default=16)
    ap.add_argument("--dtype", choices=["f32", "bf16"], default="f32")
    a = ap.parse_args()
    if a.bench:
        _bench(a.device, a.batch, a.seq, a.d, a.layers, a.heads, a.chunk, a.dtype)
    else:
        _self_test()
