"""cuBLAS f32 on a MetaLA layer's four products, as a bar for the GPU engine's GEMMs.

Times the q/k/v/g projection, the attention out product, the GLU's two
halves (one product) and the down product of a model's shapes with
torch.matmul in f32, TF32 off (so cuBLAS runs its FFMA kernels, the same
arithmetic as the WGSL GEMM), at each prompt length, and prints one JSON
object: each product's best time and TFLOP/s, the four together per 512
tokens, and how much the slowest length's per-token cost exceeds the
fastest's (the GPU engine's "time per token within ±10%" target asks 1.222
of the whole prefill). Run it on the GPU machine beside
`node dist/gpu/bench-main.js`, in the same command: its figures are the
limit that machine's best f32 library reaches in that run.

    python3 tools/cublas_products.py --hidden 1024 --glu 2816 --lengths 512,1024,2048,4096
"""
import argparse
import json

import torch


def products(hidden, glu, key_dim):
    """(name, out columns N, inner K) of one layer's products (spec: q, k_gate, v, g fused; GLU halves fused)."""
    return [("qkvg", 2 * key_dim + 2 * hidden, hidden), ("out", hidden, hidden), ("glu", 2 * glu, hidden), ("down", hidden, glu)]


def best_micros(a, w, reps):
    for _ in range(5):
        torch.matmul(a, w.t())
    times = []
    for _ in range(reps):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        torch.matmul(a, w.t())
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end) * 1e3)
    return min(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hidden", type=int, default=1024)
    ap.add_argument("--glu", type=int, default=2816)
    ap.add_argument("--key-dim", type=int, help="dk, the key dims of all heads (default hidden / 2, as MetaLA ties it)")
    ap.add_argument("--lengths", default="512,1024,2048,4096")
    ap.add_argument("--reps", type=int, default=50)
    args = ap.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("cublas_products.py: no CUDA device")
    torch.backends.cuda.matmul.allow_tf32 = False
    shapes = products(args.hidden, args.glu, args.key_dim or args.hidden // 2)
    rows, per512 = [], {}
    for M in [int(x) for x in args.lengths.split(",")]:
        total = 0.0
        for name, N, K in shapes:
            a = torch.randn(M, K, device="cuda")
            w = torch.randn(N, K, device="cuda")
            us = best_micros(a, w, args.reps)
            total += us
            rows.append({"T": M, "product": name, "N": N, "K": K, "us": round(us, 1), "tflops": round(2 * M * N * K / us / 1e6, 1)})
        per512[M] = total * 512 / M
    fastest = min(per512.values())
    print(json.dumps({
        "device": torch.cuda.get_device_name(),
        "library": "cuBLAS f32 (TF32 off) via torch " + torch.__version__,
        "products": rows,
        "layer_products_us_per_512_tokens": {str(M): round(v, 1) for M, v in per512.items()},
        "slowest_vs_fastest_per_token": round(max(per512.values()) / fastest, 3),
    }))


if __name__ == "__main__":
    main()
