#!/usr/bin/python3
"""The MODELS.md benchmark step in PyTorch, for comparison with bench_clip_step.

    /usr/bin/python3 bench/torch_clip_step.py [--preset clip-tiny|clip-b32] [--batch N]
                                              [--steps N] [--threads N]

The same step as bench/bench_clip_step.cpp, on the reference model of
tools/torch_reference/clip_torch.py (MODELS.md names and shapes): forward of both towers,
CLIP loss + ITM through the fusion model with one cyclic negative per sample (when the model
has fusion layers), backward, one AdamW step (lr 1e-4, weight decay 0.1 on matrices and
embeddings only, as mmgrad's AdamW), inputs random (images N(0, 1), token ids uniform, the
end-of-text token at a uniform position in [1, context)). Float32, eager mode.

Prints ms per step (median of --steps after 2 warm-up steps), samples/s, model GFLOP/s over
the same FLOP count as bench_clip_step (clip_torch.step_gemms mirrors its GEMM list) and
peak resident memory (ru_maxrss, torch's own libraries included; the RSS right after
`import torch` is printed too). Threads: torch.set_num_threads(--threads); OpenBLAS (which
Debian's torch calls for its float32 GEMMs) takes OPENBLAS_NUM_THREADS and
OPENBLAS_CORETYPE from the environment, which bench/compare_torch.sh sets for both sides.
The last line ("RESULT key=value ...") is for compare_torch.sh.
"""
import argparse
import contextlib
import ctypes
import os
import re
import resource
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools", "torch_reference"))
import clip_torch as ct  # noqa: E402


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def blas_summary() -> str:
    """Which BLAS torch was built for, and the OpenBLAS core and thread count in this process."""
    m = re.search(r"BLAS_INFO=(\w+)", torch.__config__.show())
    info = f"torch BLAS_INFO={m.group(1) if m else '?'}"
    for lib in ("libopenblas.so.0", "libblas.so.3"):
        try:
            h = ctypes.CDLL(lib)
            h.openblas_get_corename.restype = ctypes.c_char_p
            core = h.openblas_get_corename().decode()
            threads = str(h.openblas_get_num_threads())
            return f"{info}, openblas core {core}, {threads} threads ({lib})"
        except (OSError, AttributeError):
            continue
    return f"{info}, openblas not found in the process"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--preset", default="clip-tiny")
    ap.add_argument("--batch", type=int, default=-1)
    ap.add_argument("--steps", type=int, default=7)
    ap.add_argument("--threads", type=int,
                    default=int(os.environ.get("MMGRAD_NUM_THREADS", "0")) or os.cpu_count())
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--amp", default="none", help="none or bf16 (torch.autocast, CUDA only)")
    ap.add_argument("--tf32", action="store_true", help="allow TF32 for float32 matmuls (CUDA)")
    args = ap.parse_args()
    dev = torch.device(args.device)
    on_gpu = dev.type == "cuda"
    if on_gpu:
        torch.backends.cuda.matmul.allow_tf32 = args.tf32
        torch.backends.cudnn.allow_tf32 = args.tf32
    rss_import = rss_mib()

    torch.set_num_threads(args.threads)
    c = ct.preset(args.preset)
    B = args.batch if args.batch > 0 else c.batch_size
    torch.manual_seed(0)
    model = ct.ClipModel(c).to(dev)
    decay = [p for _, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for _, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=1e-4, betas=(0.9, 0.999), eps=1e-8)

    images = torch.randn(B, 3, c.image_size, c.image_size)
    ids = torch.randint(0, c.vocab_size - 1, (B, c.context_length))
    ids[ids == c.eot_token_id] = 0
    eot = torch.randint(1, c.context_length, (B,))
    ids[torch.arange(B), eot] = c.eot_token_id
    itm = 1.0 if c.fusion_layers > 0 else 0.0
    images, ids = images.to(dev), ids.to(dev)
    amp = args.amp == "bf16" and on_gpu

    def step():
        opt.zero_grad(set_to_none=True)
        # autocast only when asked: Debian's CPU-only torch refuses even a disabled CUDA autocast.
        with torch.autocast(device_type="cuda", dtype=torch.bfloat16) if amp else contextlib.nullcontext():
            total, _ = ct.compute_losses(model, images, ids, contrastive=1.0, itm=itm, caption=0.0)
        total.backward()
        opt.step()
        if on_gpu:
            torch.cuda.synchronize()

    for _ in range(2):
        step()
    times = []
    for _ in range(max(args.steps, 1)):
        t0 = time.perf_counter()
        step()
        times.append((time.perf_counter() - t0) * 1e3)
    ms = statistics.median(times)
    rss = rss_mib()
    flops = ct.step_flops(c, B)
    params = sum(p.numel() for p in model.parameters())
    gflops = flops / ms * 1e-6

    print("# training step (MODELS.md benchmark), PyTorch " + torch.__version__)
    if on_gpu:
        rss = torch.cuda.max_memory_allocated() / 2**20  # device memory in place of RSS
        print(f"# {torch.cuda.get_device_name()}; amp {args.amp}; tf32 {args.tf32}; 'peak RSS' = peak device memory")
    else:
        print(f"# {blas_summary()}; torch threads: {torch.get_num_threads()}")
    print(f"{'preset':<10} {'batch':>6} {'params':>12} {'ms/step':>10} {'samples/s':>12} {'GFLOP/s':>10} {'peak RSS':>10}")
    print(f"{args.preset:<10} {B:>6} {params:>12} {ms:>10.1f} {B / ms * 1e3:>12.1f} {gflops:>10.1f} {rss:>6.0f} MiB")
    print(f"# model GFLOP per step (all {len(ct.step_gemms(c, B))} GEMM shapes of forward + backward): "
          f"{flops * 1e-9:.3f}; RSS after import torch: {rss_import:.0f} MiB")
    print(f"RESULT impl=torch device={dev.type} amp={args.amp} preset={args.preset} batch={B} params={params} threads={torch.get_num_threads()} "
          f"ms_per_step={ms:.3f} samples_per_s={B / ms * 1e3:.2f} gflop_per_step={flops * 1e-9:.6f} "
          f"model_gflops={gflops:.3f} peak_rss_mib={rss:.1f} import_rss_mib={rss_import:.1f}")


if __name__ == "__main__":
    main()
