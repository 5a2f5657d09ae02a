"""Speed and memory of facezoo's pieces, appended to docs/benchmarks.md with the machine and the command.

    python scripts/bench.py --append docs/benchmarks.md            # `make bench`
    python scripts/bench.py --device cuda --append docs/benchmarks.md

Each measurement runs in its own subprocess so that its peak memory (CPU: peak RSS; GPU:
torch.cuda.max_memory_allocated) belongs to it alone. Times are medians over repeats after warm-up.
Measured:

* the synthetic renderer: frontalization pairs/s and single faces/s at 128x128, on ONE core;
* TP-GAN at its real size (128x128, width 1) and at the CPU preset (64x64, width 0.125): training
  iterations (1 D + 1 G step) and inference, as images/s.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PRESETS = {  # name → (image_size, width, zdim, feature_dim)
    "tpgan-128-full": (128, 1.0, 100, 256),
    "tpgan-64-cpu-preset": (64, 0.125, 32, 128),
}


def _median_rate(fn, items_per_call: int, repeats: int, warmup: int = 1, sync=lambda: None) -> float:
    for _ in range(warmup):
        fn()
    sync()
    rates = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync()
        rates.append(items_per_call / (time.perf_counter() - t0))
    return statistics.median(rates)


def bench_renderer(args) -> dict:
    import torch

    torch.set_num_threads(1)
    from facezoo.data.synthetic import SyntheticFaces, SyntheticFrontalization

    n = args.renderer_samples
    faces = SyntheticFaces(split="train", size=128, length=10_000, num_identities=100)
    pairs = SyntheticFrontalization(split="train", size=128, length=10_000, num_identities=100)
    counter = iter(range(10**9))
    face_rate = _median_rate(lambda: [faces[next(counter) % 10_000] for _ in range(n)], n, args.repeats)
    pair_rate = _median_rate(lambda: [pairs[next(counter) % 10_000] for _ in range(n)], n, args.repeats)
    return {"what": "synthetic renderer, 128x128, 1 core", "faces_per_s": face_rate,
            "frontalization_pairs_per_s": pair_rate}


def bench_tpgan(args) -> dict:
    import torch

    from facezoo.face.labels import landmarks_68_to_5
    from facezoo.methods.tpgan.module import TPGAN

    size, width, zdim, feat = PRESETS[args.preset]
    device = torch.device(args.device)
    model = TPGAN(image_size=size, num_classes=200, width=width, zdim=zdim, feature_dim=feat,
                  identity_net={"weights": None}).to(device)
    b = args.batch
    g = torch.Generator().manual_seed(0)
    from facezoo.data.synthetic import SyntheticFrontalization

    ds = SyntheticFrontalization(split="train", size=size, length=b, num_identities=4)
    batch = torch.utils.data.default_collate([ds[i] for i in range(b)])
    batch = {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}
    points = landmarks_68_to_5(batch["landmarks"])
    opt_g = torch.optim.Adam(model.generator.parameters(), 1e-4)
    opt_d = torch.optim.Adam(model.discriminator.parameters(), 1e-4)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    def train_iteration():  # the module's step without the Trainer: D main, then G main
        with torch.no_grad():
            fake = model(batch["image"], points)["image"]
        d_loss = model.adv.d(model.discriminator(batch["target"]), model.discriminator(fake))
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        out = model(batch["image"], points)
        g_loss = model.weighted_sum(model.generator_terms(batch, out))
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()

    def inference():
        with torch.no_grad():
            model(batch["image"], points, z=torch.zeros(b, zdim, device=device))

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    model.train()
    train_rate = _median_rate(train_iteration, b, args.repeats, sync=sync)
    train_mem = torch.cuda.max_memory_allocated() if device.type == "cuda" else None
    model.eval()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    infer_rate = _median_rate(inference, b, args.repeats, sync=sync)
    infer_mem = torch.cuda.max_memory_allocated() if device.type == "cuda" else None
    n_params = sum(p.numel() for p in model.generator.parameters())
    return {"what": f"{args.preset}, batch {b}, {device.type}", "train_images_per_s": train_rate,
            "inference_images_per_s": infer_rate, "generator_params_M": n_params / 1e6,
            "gpu_peak_train_MiB": train_mem / 2**20 if train_mem else None,
            "gpu_peak_inference_MiB": infer_mem / 2**20 if infer_mem else None, "seed": int(g.initial_seed())}


def run_one(args) -> None:
    result = bench_renderer(args) if args.one == "renderer" else bench_tpgan(args)
    result["peak_rss_MiB"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("RESULT " + json.dumps(result))


def machine(device: str | None = None) -> str:
    """CPU model, cores, GPU (or "no GPU used" when ``device`` is ``"cpu"``), Python, torch and threads."""
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() and device != "cpu" else "no GPU used"
    return (f"{cpu}, {os.cpu_count()} cores, {gpu}; Python {platform.python_version()}, torch {torch.__version__}, "
            f"torch threads {torch.get_num_threads()}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}")


def spawn(extra: list[str], args) -> dict:
    cmd = [sys.executable, __file__, "--repeats", str(args.repeats), "--renderer-samples",
           str(args.renderer_samples), "--device", args.device, *extra]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "FACEZOO_OFFLINE": "1"})
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode or not lines:
        raise SystemExit(f"bench step {' '.join(extra)} failed:\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1][7:])


def append_section(path: Path, text: str) -> None:
    """Append a results section to the benchmarks page (created with its title when missing)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        path.write_text("# Benchmarks\n\nAppended by `make bench` (scripts/bench*.py); newest last.\n")
    with open(path, "a") as f:
        f.write(text)


def fmt(v) -> str:
    return "–" if v is None else f"{v:.1f}" if isinstance(v, float) else str(v)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--append", type=Path, help="markdown file to append the results to")
    p.add_argument("--device", default="cpu", help="cpu or cuda (TP-GAN rows)")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--renderer-samples", type=int, default=200)
    p.add_argument("--batch-full", type=int, default=4, help="batch of the 128x128 full-width TP-GAN rows")
    p.add_argument("--batch-cpu", type=int, default=16, help="batch of the CPU-preset TP-GAN rows")
    p.add_argument("--only", choices=["renderer", "tpgan"], help="run one group")
    p.add_argument("--one", choices=["renderer", "tpgan"], help=argparse.SUPPRESS)
    p.add_argument("--preset", choices=sorted(PRESETS), help=argparse.SUPPRESS)
    p.add_argument("--batch", type=int, default=4, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.one:
        return run_one(args)

    results = []
    if args.only in (None, "renderer"):
        results.append(spawn(["--one", "renderer"], args))
    if args.only in (None, "tpgan"):
        for preset, batch in (("tpgan-128-full", args.batch_full), ("tpgan-64-cpu-preset", args.batch_cpu)):
            results.append(spawn(["--one", "tpgan", "--preset", preset, "--batch", str(batch)], args))

    command = "python scripts/bench.py " + " ".join(sys.argv[1:])
    lines = [f"\n## {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC — `{command}`\n",
             f"Machine: {machine()}. Medians of {args.repeats} repeats after one warm-up.\n"]
    for r in results:
        if "faces_per_s" in r:
            lines.append(f"- **{r['what']}**: {r['faces_per_s']:.0f} faces/s, {r['frontalization_pairs_per_s']:.0f} "
                         f"frontalization pairs/s (each pair = 2 renders + 2 alignments), peak RSS "
                         f"{r['peak_rss_MiB']:.0f} MiB")
    tp = [r for r in results if "train_images_per_s" in r]
    if tp:
        lines += ["", "| TP-GAN | generator params (M) | train images/s (1 D + 1 G step) | inference images/s "
                  "| peak RSS (MiB) | GPU peak train / inference (MiB) |", "|---|---|---|---|---|---|"]
        for r in tp:
            lines.append(f"| {r['what']} | {r['generator_params_M']:.2f} | {r['train_images_per_s']:.2f} | "
                         f"{r['inference_images_per_s']:.2f} | {r['peak_rss_MiB']:.0f} | "
                         f"{fmt(r['gpu_peak_train_MiB'])} / {fmt(r['gpu_peak_inference_MiB'])} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.append:
        append_section(args.append, text)


if __name__ == "__main__":
    main()
