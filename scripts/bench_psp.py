"""pSp speed and memory: facezoo's encoder + decoder and training step beside the official pSp, same weights and inputs.

    python scripts/bench_psp.py                                                    # facezoo only
    python scripts/bench_psp.py --official /path/to/eladrich/pixel2style2pixel
    python scripts/bench_psp.py --official PATH --sizes 256 --batches 1 --train-sizes '' --repeats 2
    python scripts/bench_psp.py --official PATH --device cuda --append docs/benchmarks.md

The model (``facezoo.methods.psp.networks.PSP``): a ``GradualStyleEncoder`` (IR-SE50 body, ``irse50=False``) on a
config-f ``facezoo.nets.stylegan2.Generator(size, 512, 8, channel_multiplier=2)`` decoder, ``start_from_latent_avg``
(``latent_avg`` estimated from 10^4 mapped samples), random init under ``torch.manual_seed(0)``; inputs and targets
are seeded 256x256 RGB in [-1, 1]; fp32. Rows:

* ``inference``: ``PSP.forward(x, resize=False, randomize_noise=False)`` (encoder + decoder, the decoder's fixed
  noise) in eval mode under ``torch.no_grad()`` at each output size of ``--sizes`` (default 256 and 1024) and batch
  of ``--batches`` (default 1 and 8);
* ``train step``: one step of the pSp coach (``training/coach.py: Coach.train``) at each output size of
  ``--train-sizes`` (default 256), batch ``--train-batch`` (default 4): ``zero_grad``, ``forward(x,
  return_latents=True)`` (``face_pool`` to 256, fresh noise, everything in train mode), the loss
  ``L2(ŷ, y) + 0.005 · w_norm`` (``calc_loss`` with ``--l2_lambda 1 --w_norm_lambda 0.005``, the README's value
  for its frontalization, sketch, segmentation and super-resolution recipes), backward and an optimizer step on the
  encoder's parameters. The LPIPS and ID terms are left out (their AlexNet / ArcFace weights are not on the benchmark
  machines). Both sides use ``torch.optim.Adam`` (lr 1e-4; the coach's ``--optim_name adam``, not its default
  Ranger) so that the optimizer is not what is measured.
  As in the coach, the official decoder's parameters keep ``requires_grad`` (its backward also computes their
  gradients, which are never used); facezoo's ``PSP`` freezes them (``train_decoder=False``).

``--official PATH`` adds the official rows: ``models/psp.py: pSp`` imported from the checkout, built from the
facezoo model's weights saved as an official release (``facezoo.methods.psp.official.official_checkpoint_from``)
and loaded through its own ``--checkpoint_path`` (``pSp.load_weights``, strict). Its ``models/stylegan2/op``
package is imported with ``torch.utils.cpp_extension.load`` patched out (no CUDA build) and run on the
checkout's own native code: ``op/upfirdn2d.py: upfirdn2d_native`` (its module does not import the
``torch.nn.functional`` the function uses, so ``F`` is set on it), called in the (N·C, H, W, 1) layout it expects;
``op/fused_act.py`` has no native path, so the fused bias + leaky ReLU is plain ``F.leaky_relu(x + bias, 0.2) ·
√2``; the training loss uses the checkout's ``criteria/w_norm.py: WNormLoss``. Nothing of it is copied. The facezoo
row of each (task, size, batch) gets the official ÷ facezoo ratios of time and memory and, for inference, the
largest |difference| between the two outputs.

Each row runs in its own subprocess (``--one``). Time: median of ``--repeats`` calls after one warm-up; memory:
peak above what the process held before the calls (``scripts/bench.py: measure``; the training step's includes the
optimizer state its warm-up call creates), after the memory the set-up freed was handed back to the OS
(:func:`release_freed_memory`: otherwise the official side, whose set-up saves and loads a release, reuses its
garbage and its CPU peak reads several times too low). ``--max-seconds`` skips the remaining batches of a
(task, size) once a row's median exceeded it (default: no limit). ``--tiny`` shrinks both networks (a test setting;
facezoo only).
"""
from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import math
import os
import shlex
import subprocess
import sys
import tempfile
import types
from pathlib import Path
from unittest import mock

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench import append_section, machine, measure  # noqa: E402  (scripts/bench.py)

STYLE_DIM, N_MLP, CHANNEL_MULTIPLIER = 512, 8, 2
INPUT_SIZE = 256                # the official encoder input and face_pool side
N_MEAN_LATENT = 10_000
L2_LAMBDA, W_NORM_LAMBDA, LEARNING_RATE = 1.0, 0.005, 1e-4
#: ``--tiny``: decoder (style_dim, n_mlp, channel_multiplier, narrow), encoder width, input / pool side
TINY = {"decoder": (32, 2, 1, 1 / 32), "width": 0.0625, "input_size": 64}


# ------------------------------------------------------------------------------------------ the official side
def import_official(path: Path):
    """(``models.psp`` module, ``criteria.w_norm`` module) of a pixel2style2pixel checkout on its native ops.

    ``op/fused_act.py`` and ``op/upfirdn2d.py`` call ``torch.utils.cpp_extension.load`` at import; with it patched
    to return ``None`` they import. Their CUDA functions are then replaced, in the modules that call them, by the
    checkout's ``upfirdn2d_native`` and a torch bias + leaky ReLU (the checkout has no native fused activation).
    ``psp.py`` calls only ``matplotlib.use('Agg')``; a stand-in is used when matplotlib is not installed.
    """
    import torch.nn.functional as F
    import torch.utils.cpp_extension as cpp_extension

    checkout = str(path.resolve())
    if checkout not in sys.path:
        sys.path.insert(0, checkout)
    try:
        importlib.import_module("matplotlib")
    except ImportError:
        sys.modules["matplotlib"] = types.SimpleNamespace(use=lambda *args, **kwargs: None)
    with mock.patch.object(cpp_extension, "load", lambda *args, **kwargs: None):
        psp = importlib.import_module("models.psp")
    upfirdn_module = sys.modules["models.stylegan2.op.upfirdn2d"]
    fused_module = sys.modules["models.stylegan2.op.fused_act"]
    model_module = sys.modules["models.stylegan2.model"]
    if not hasattr(upfirdn_module, "F"):              # upfirdn2d_native uses F without importing it
        upfirdn_module.F = F
    native = upfirdn_module.upfirdn2d_native

    def upfirdn2d(input, kernel, up=1, down=1, pad=(0, 0)):
        batch, channel, height, width = input.shape
        out = native(input.reshape(-1, height, width, 1), kernel, up, up, down, down, pad[0], pad[1], pad[0], pad[1])
        return out.reshape(batch, channel, out.shape[1], out.shape[2])

    def fused_leaky_relu(input, bias, negative_slope=0.2, scale=2 ** 0.5):
        return F.leaky_relu(input + bias.view(1, -1, *([1] * (input.ndim - 2))), negative_slope) * scale

    model_module.upfirdn2d = upfirdn2d
    model_module.fused_leaky_relu = fused_leaky_relu
    fused_module.fused_leaky_relu = fused_leaky_relu   # FusedLeakyReLU.forward looks it up here
    return psp, importlib.import_module("criteria.w_norm")


# ------------------------------------------------------------------------------------------------ the rows
def build_facezoo(size: int, args):
    """The facezoo pSp of the benchmark (random init under ``torch.manual_seed(0)``), on the CPU."""
    import torch

    from facezoo.methods.psp.networks import PSP
    from facezoo.nets.stylegan2 import Generator

    torch.manual_seed(0)
    if args.tiny:
        style_dim, n_mlp, multiplier, narrow = TINY["decoder"]
        decoder = Generator(size, style_dim, n_mlp, channel_multiplier=multiplier, narrow=narrow)
        side, width = TINY["input_size"], TINY["width"]
    else:
        decoder = Generator(size, STYLE_DIM, N_MLP, channel_multiplier=CHANNEL_MULTIPLIER)
        side, width = INPUT_SIZE, 1.0
    return PSP(decoder, "GradualStyleEncoder", start_from_latent_avg=True, irse50=False, n_mean_latent=N_MEAN_LATENT,
               pool_size=side, input_size=side, width=width)


def build_official(model, args):
    """The official ``pSp`` loaded from ``model`` saved as a release, through its ``--checkpoint_path``."""
    import torch

    from facezoo.methods.psp.official import official_checkpoint_from

    psp, w_norm = import_official(Path(args.official))
    ckpt = official_checkpoint_from(model, {
        "dataset_type": "ffhq_encode", "optim_name": "adam", "learning_rate": LEARNING_RATE, "l2_lambda": L2_LAMBDA,
        "w_norm_lambda": W_NORM_LAMBDA, "lpips_lambda": 0.0, "id_lambda": 0.0, "train_decoder": False})
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "psp_bench.pt"
        torch.save(ckpt, path)
        opts = dict(ckpt["opts"], checkpoint_path=str(path), device=args.device)
        net = psp.pSp(argparse.Namespace(**opts))
    return net, w_norm.WNormLoss(start_from_latent_avg=True)


def release_freed_memory() -> None:
    """Hand memory freed during the set-up back to the OS (glibc ``malloc_trim``), so that on the CPU the rows'
    peaks count what the calls need rather than what they reuse of the set-up's garbage (the official side's set-up,
    a release saved and loaded, frees far more than facezoo's)."""
    import ctypes
    import gc

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):               # not glibc: peaks may read low, for both sides alike
        pass


def run_one(args) -> dict:
    import torch
    import torch.nn.functional as F

    from facezoo import losses

    torch.set_num_threads(args.threads or torch.get_num_threads())
    device = torch.device(args.device)
    size, batch = args.size, args.batch
    result = {"impl": args.one, "task": args.task, "size": size, "batch": batch, "device": device.type}
    ours = build_facezoo(size, args)
    side = TINY["input_size"] if args.tiny else INPUT_SIZE
    gen = torch.Generator().manual_seed(1)
    x = (torch.rand(batch, 3, side, side, generator=gen) * 2 - 1).to(device)
    y = (torch.rand(batch, 3, side, side, generator=gen) * 2 - 1).to(device)
    if args.one in ("facezoo", "facezoo_fast"):
        net, params = ours.to(device), ours.trainable_parameters()
        if args.one == "facezoo_fast":
            net.fast_path()

        def w_norm(latents):
            return losses.w_norm(latents, ours.latent_avg)
    else:
        net, official_w_norm = build_official(ours, args)
        net, params = net.to(device), list(net.encoder.parameters())   # coach.configure_optimizers

        def w_norm(latents):
            return official_w_norm(latents, net.latent_avg)

    if args.task == "inference":
        net.eval()

        def step():
            with torch.no_grad():
                return net(x, resize=False, randomize_noise=False)
    else:
        net.train()
        optimizer = torch.optim.Adam(params, lr=LEARNING_RATE)

        def step():
            optimizer.zero_grad(set_to_none=True)
            y_hat, latents = net(x, return_latents=True)
            loss = L2_LAMBDA * F.mse_loss(y_hat, y) + W_NORM_LAMBDA * w_norm(latents)
            loss.backward()
            optimizer.step()
            return loss.detach()

    release_freed_memory()
    measured = measure(step, args.repeats, device)
    result["time_s"], result["peak_MiB"] = measured["time_s"], measured["peak_MiB"]
    if args.one == "facezoo_fast":
        exact = build_facezoo(size, args).to(device).eval()
        with torch.no_grad():
            reference = exact(x, resize=False, randomize_noise=False)
        mse = float((measured["output"].float() - reference).pow(2).mean())
        result["psnr_vs_fp32"] = 10 * math.log10(4 / mse) if mse > 0 else float("inf")
    if args.one == "official" and args.task == "inference":
        ours = ours.to(device).eval()
        with torch.no_grad():
            reference = ours(x, resize=False, randomize_noise=False)
        result["max_abs_diff_vs_facezoo"] = float((measured["output"] - reference).abs().max())
    return result


def spawn(impl: str, task: str, size: int, batch: int, args) -> dict:
    cmd = [sys.executable, __file__, "--one", impl, "--task", task, "--size", str(size), "--batch", str(batch),
           "--device", args.device, "--repeats", str(args.repeats)]
    if impl == "official":
        cmd += ["--official", str(args.official)]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    if args.tiny:
        cmd += ["--tiny"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "FACEZOO_OFFLINE": "1"})
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    if proc.returncode == -9:
        error = "killed by SIGKILL (out of memory?)"
    else:
        error = f"exit {proc.returncode}: " + " ".join((proc.stderr or proc.stdout).strip().splitlines()[-1:])
    return {"impl": impl, "task": task, "size": size, "batch": batch, "error": error}


def _ratio(official: float, facezoo: float) -> str:
    return f"{official / facezoo:.2f}" if facezoo > 0 else "–"


def table(results: list[dict]) -> list[str]:
    """Markdown rows; a facezoo row carries the official ÷ facezoo ratios and the output difference."""
    lines = ["| task | output size | batch | implementation | median time (s) | peak memory (MiB) | official ÷ facezoo "
             "time | official ÷ facezoo memory | max abs diff vs official |", "|---|---|---|---|---|---|---|---|---|"]

    def key(r):
        return r["task"], r["size"], r["batch"]

    official = {key(r): r for r in results if r["impl"] == "official"}
    names = {"facezoo": "facezoo", "facezoo_fast": "facezoo fast path (`fast=true`: bf16 weights)",
             "official": "official models/psp.py (native ops)"}
    for r in results:
        name = names[r["impl"]]
        if "error" in r or "skipped" in r:
            lines.append(f"| {r['task']} | {r['size']} | {r['batch']} | {name} | – | – | – | – | "
                         f"{r.get('error') or r['skipped']} |")
            continue
        ratios, diff = ["–", "–"], "–"
        o = official.get(key(r))
        if r["impl"] != "official" and o is not None and "time_s" in o:
            ratios = [_ratio(o["time_s"], r["time_s"]), _ratio(o["peak_MiB"], r["peak_MiB"])]
            if r["impl"] == "facezoo" and "max_abs_diff_vs_facezoo" in o:
                diff = f"{o['max_abs_diff_vs_facezoo']:.2g}"
        if "psnr_vs_fp32" in r:
            diff = f"PSNR {r['psnr_vs_fp32']:.1f} dB to facezoo fp32"
        lines.append(f"| {r['task']} | {r['size']} | {r['batch']} | {name} | {r['time_s']:.3f} | "
                     f"{r['peak_MiB']:.0f} | {ratios[0]} | {ratios[1]} | {diff} |")
    return lines


def _ints(text: str) -> list[int]:
    return [int(s) for s in text.split(",") if s.strip()]


def main(argv=None) -> str | None:
    """Run the benchmark; returns the Markdown section (also printed, and appended with ``--append``)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--official", type=Path, help="eladrich/pixel2style2pixel checkout")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--sizes", default="256,1024", help="inference output sizes ('' for none)")
    parser.add_argument("--batches", default="1,8", help="inference batch sizes")
    parser.add_argument("--train-sizes", default="256", help="training-step output sizes ('' for none)")
    parser.add_argument("--train-batch", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--max-seconds", type=float, default=0.0,
                        help="skip the rest of a (task, size) once one of its medians exceeds this (0: never)")
    parser.add_argument("--append", type=Path, help="append the section to this Markdown file")
    parser.add_argument("--fast", action="store_true",
                        help="add the inference fast path (PSP.fast_path: bf16 weights, encoder channels_last) rows")
    parser.add_argument("--tiny", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--task", default="inference", help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.one:
        print("RESULT " + json.dumps(run_one(args)))
        return None
    if args.official is not None and not (args.official / "models" / "psp.py").is_file():
        parser.error(f"--official {args.official}: no models/psp.py there (expected a checkout of "
                     "github.com/eladrich/pixel2style2pixel)")
    if args.official is not None and args.tiny:
        parser.error("--tiny shrinks the networks, which the official pSp cannot (512-d styles, IR-SE50)")
    if args.repeats < 1 or args.train_batch < 1:
        parser.error("--repeats and --train-batch must be >= 1")
    impls = ["facezoo"] + (["facezoo_fast"] if args.fast else []) + (["official"] if args.official else [])
    plan = [("inference", s, b) for s in _ints(args.sizes) for b in _ints(args.batches)]
    plan += [("train step", s, args.train_batch) for s in _ints(args.train_sizes)]
    results, slow = [], set()
    for task, size, batch in plan:
        for impl in impls:
            if impl == "facezoo_fast" and task != "inference":         # an inference path
                continue
            if (task, size, impl) in slow:
                results.append({"impl": impl, "task": task, "size": size, "batch": batch,
                                "skipped": f"skipped: a smaller batch took over {args.max_seconds:g} s"})
            else:
                results.append(spawn(impl, task, size, batch, args))
            r = results[-1]
            if args.max_seconds and r.get("time_s", 0) > args.max_seconds:
                slow.add((task, size, impl))
            print(json.dumps(r), flush=True)
    command = shlex.join(["python", "scripts/bench_psp.py", *(argv if argv is not None else sys.argv[1:])])
    side = TINY["input_size"] if args.tiny else INPUT_SIZE
    networks = ("--tiny: GradualStyleEncoder of width 1/16 + a narrow StyleGAN2 decoder" if args.tiny
                else "GradualStyleEncoder + config-f StyleGAN2 decoder")
    notes = (f"{networks}, start_from_latent_avg, random init, {side}x{side} RGB inputs, fp32. Train step: L2 + "
             f"{W_NORM_LAMBDA:g} w-norm (no LPIPS / ID: their weights are not here), torch.optim.Adam on the encoder "
             "for both sides (decoder frozen in facezoo; the official one still computes its unused gradients, as "
             "in its coach). CPU peaks after malloc_trim of the set-up's freed memory. Official: models/psp.py with "
             "its own upfirdn2d_native and a torch bias + leaky ReLU (its fused_act.py has no native path). "
             "Ratios > 1: facezoo is faster / smaller.")
    section = "\n".join([f"\n## pSp ({dt.date.today().isoformat()})\n", f"`{command}`\n",
                         f"Machine: {machine(args.device)}\n", notes + "\n", *table(results), ""])
    print(section)
    if args.append:
        append_section(args.append, section)
    return section


if __name__ == "__main__":
    main()
