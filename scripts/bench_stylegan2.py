"""StyleGAN2 speed and memory: facezoo's generator / training step beside rosinality's on the same weights and inputs.

    python scripts/bench_stylegan2.py                                              # facezoo only
    python scripts/bench_stylegan2.py --official /path/to/rosinality/stylegan2-pytorch
    python scripts/bench_stylegan2.py --official PATH --sizes 256 --train-sizes 64,256 --repeats 3
    python scripts/bench_stylegan2.py --official PATH --device cuda --append docs/benchmarks.md

Rows (config-f architecture: style 512, 8 mapping layers, channel multiplier 2; random init, ``torch.manual_seed(0)``;
rosinality's networks get facezoo's weights through ``load_state_dict(strict=True)``; fp32):

* ``generator``: ``g([z], randomize_noise=False)`` in eval mode under ``torch.no_grad()`` at each of ``--sizes``
  (default 256 and 1024) and ``--batches`` (default 1 and 8);
* ``train step``: one D phase and one G phase of rosinality ``train.py`` (non-saturating logistic loss; forward and
  backward, ``requires_grad`` toggled as there, no optimizer step, no regularisation) at each of ``--train-sizes``
  (default 64 and 256), batch ``--train-batch`` (default 4, one minibatch-stddev group), ``Discriminator(size, 2)``.

``--official PATH`` adds the rosinality rows: ``model.py`` from the checkout, its ``op`` package executed with
``torch.utils.cpp_extension.load`` patched out (no CUDA build), so on CPU its own ``upfirdn2d_native`` and torch
``fused_leaky_relu`` paths run; on other devices the dispatchers are pointed at those same native functions.
Nothing of it is copied. The rosinality row also reports the largest |difference| between its generator output and
facezoo's.

Each row runs in its own subprocess (``--one``). Time: median of ``--repeats`` calls after one warm-up; memory:
peak above what the process held before the calls (``scripts/bench.py: measure``). ``--max-seconds`` skips the
remaining rows of a (task, size) once a row's median exceeded it (default: no limit).
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench import append_section, machine, measure  # noqa: E402  (scripts/bench.py)

STYLE_DIM, N_MLP, CHANNEL_MULTIPLIER = 512, 8, 2


def import_rosinality(path: Path, device: str):
    """rosinality ``model.py`` with its ``op`` package on its native (non-CUDA-extension) code paths."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_stylegan2", HERE / "fixtures" / "make_stylegan2.py")
    fixtures = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fixtures)
    model = fixtures.import_rosinality(path)
    if device != "cpu":
        import torch.nn.functional as F

        upfirdn_module = sys.modules["op.upfirdn2d"]
        fused_module = sys.modules["op.fused_act"]

        def upfirdn2d(input, kernel, up=1, down=1, pad=(0, 0)):
            pad = (pad[0], pad[1], pad[0], pad[1]) if len(pad) == 2 else pad
            return upfirdn_module.upfirdn2d_native(input, kernel, up, up, down, down, *pad)

        def fused_leaky_relu(input, bias=None, negative_slope=0.2, scale=2**0.5):
            if bias is not None:
                input = input + bias.view(1, -1, *([1] * (input.ndim - 2)))
            return F.leaky_relu(input, negative_slope) * scale

        model.upfirdn2d = upfirdn2d
        model.fused_leaky_relu = fused_leaky_relu
        fused_module.fused_leaky_relu = fused_leaky_relu
    return model


def build(impl: str, size: int, args, with_d: bool):
    """(generator, discriminator or None, facezoo generator for the difference or None) with shared weights."""
    import torch

    from facezoo.nets.stylegan2 import Discriminator, Generator

    device = torch.device(args.device)
    torch.manual_seed(0)
    g = Generator(size, STYLE_DIM, N_MLP, channel_multiplier=CHANNEL_MULTIPLIER)
    d = Discriminator(size, channel_multiplier=CHANNEL_MULTIPLIER) if with_d else None
    if impl == "facezoo":
        return g.to(device), (d.to(device) if d is not None else None), None
    model = import_rosinality(Path(args.official), args.device)
    og = model.Generator(size, STYLE_DIM, N_MLP, channel_multiplier=CHANNEL_MULTIPLIER)
    og.load_state_dict(g.state_dict(), strict=True)
    od = None
    if with_d:
        od = model.Discriminator(size, channel_multiplier=CHANNEL_MULTIPLIER)
        od.load_state_dict(d.state_dict(), strict=True)
        od = od.to(device)
    return og.to(device), od, g.to(device)


def requires_grad(module, flag: bool) -> None:
    for p in module.parameters():
        p.requires_grad = flag


def run_one(args) -> dict:
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(args.threads or torch.get_num_threads())
    device = torch.device(args.device)
    size, batch = args.size, args.batch
    result = {"impl": args.one, "task": args.task, "size": size, "batch": batch, "device": device.type}
    g, d, ours = build(args.one, size, args, with_d=args.task == "train")
    gen = torch.Generator().manual_seed(1)
    z = torch.randn(batch, STYLE_DIM, generator=gen).to(device)

    if args.task == "generator":
        g.eval()

        def step():
            with torch.no_grad():
                return g([z], randomize_noise=False)[0]
    else:
        real = torch.randn(batch, 3, size, size, generator=gen).to(device)
        g.train()
        d.train()

        def step():
            # D phase (rosinality train.py): generator frozen, logistic loss on fake and real
            requires_grad(g, False)
            requires_grad(d, True)
            fake = g([z])[0]
            d_loss = F.softplus(d(fake)).mean() + F.softplus(-d(real)).mean()
            d.zero_grad(set_to_none=True)
            d_loss.backward()
            # G phase: discriminator frozen, non-saturating loss
            requires_grad(g, True)
            requires_grad(d, False)
            fake = g([z])[0]
            g_loss = F.softplus(-d(fake)).mean()
            g.zero_grad(set_to_none=True)
            g_loss.backward()
            return g_loss.detach()

    measured = measure(step, args.repeats, device)
    result["time_s"], result["peak_MiB"] = measured["time_s"], measured["peak_MiB"]
    if ours is not None and args.task == "generator":
        ours.eval()
        with torch.no_grad():
            result["max_abs_diff_vs_facezoo"] = float((measured["output"] - ours([z], randomize_noise=False)[0])
                                                      .abs().max())
    return result


def spawn(impl: str, task: str, size: int, batch: int, args) -> dict:
    cmd = [sys.executable, __file__, "--one", impl, "--task", task, "--size", str(size), "--batch", str(batch),
           "--device", args.device, "--repeats", str(args.repeats)]
    if args.official:
        cmd += ["--official", str(args.official)]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "FACEZOO_OFFLINE": "1"})
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    if proc.returncode == -9:
        error = "killed by SIGKILL (out of memory?)"
    else:
        error = f"exit {proc.returncode}: " + " ".join((proc.stderr or proc.stdout).strip().splitlines()[-1:])
    return {"impl": impl, "task": task, "size": size, "batch": batch, "error": error}


def table(results: list[dict]) -> list[str]:
    lines = ["| task | size | batch | implementation | median time (s) | peak memory (MiB) | rosinality time / "
             "facezoo time | max abs diff vs facezoo |", "|---|---|---|---|---|---|---|---|"]
    def key(r):
        return r["task"], r["size"], r["batch"]

    base = {key(r): r for r in results if r["impl"] == "facezoo" and "error" not in r}
    for r in results:
        name = "facezoo" if r["impl"] == "facezoo" else "rosinality model.py (native ops)"
        if "error" in r or "skipped" in r:
            lines.append(f"| {r['task']} | {r['size']} | {r['batch']} | {name} | – | – | – | "
                         f"{r.get('error') or r['skipped']} |")
            continue
        b = base.get(key(r))
        ratio = f"{r['time_s'] / b['time_s']:.2f}" if b and r["impl"] != "facezoo" else "–"
        diff = f"{r['max_abs_diff_vs_facezoo']:.2g}" if "max_abs_diff_vs_facezoo" in r else "–"
        lines.append(f"| {r['task']} | {r['size']} | {r['batch']} | {name} | {r['time_s']:.3f} | "
                     f"{r['peak_MiB']:.0f} | {ratio} | {diff} |")
    return lines


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--official", type=Path, help="rosinality/stylegan2-pytorch checkout")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--sizes", default="256,1024", help="generator sizes")
    parser.add_argument("--batches", default="1,8", help="generator batch sizes")
    parser.add_argument("--train-sizes", default="64,256", help="training-step sizes ('' for none)")
    parser.add_argument("--train-batch", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--max-seconds", type=float, default=0.0,
                        help="skip the rest of a (task, size) once one of its medians exceeds this (0: never)")
    parser.add_argument("--append", type=Path, help="append the section to this Markdown file")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--task", default="generator", help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.one:
        print("RESULT " + json.dumps(run_one(args)))
        return
    impls = ["facezoo"] + (["rosinality"] if args.official else [])
    plan = [("generator", int(s), int(b)) for s in args.sizes.split(",") if s for b in args.batches.split(",")]
    plan += [("train", int(s), args.train_batch) for s in args.train_sizes.split(",") if s]
    results, slow = [], set()
    for task, size, batch in plan:
        for impl in impls:
            if (task, size, impl) in slow:
                results.append({"impl": impl, "task": task, "size": size, "batch": batch,
                                "skipped": f"skipped: a smaller batch took over {args.max_seconds:g} s"})
            else:
                results.append(spawn(impl, task, size, batch, args))
            r = results[-1]
            if args.max_seconds and r.get("time_s", 0) > args.max_seconds:
                slow.add((task, size, impl))
            print(json.dumps(r), flush=True)
    command = "python scripts/bench_stylegan2.py " + " ".join(argv if argv is not None else sys.argv[1:])
    section = "\n".join([f"\n## StyleGAN2 ({dt.date.today().isoformat()})\n", f"`{command}`\n",
                         f"Machine: {machine(args.device)}\n", *table(results), ""])
    print(section)
    if args.append:
        append_section(args.append, section)


if __name__ == "__main__":
    main()
