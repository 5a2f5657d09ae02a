"""GANnotation at 128x128: training-step and inference images/s and peak memory (and, with --official, the
official generator on the same inputs side by side), appended to docs/benchmarks.md.

    python scripts/bench_gannotation.py --append docs/benchmarks.md                            # `make bench`
    python scripts/bench_gannotation.py --official /path/to/ESanchezLozano/GANnotation --append docs/benchmarks.md
    python scripts/bench_gannotation.py --device cuda --repeats 20 --train-repeats 10 --append docs/benchmarks.md

Model: :class:`facezoo.methods.gannotation.module.GANnotation` at the official size (image 128, 66 points,
``conv_dim`` 64, 6 residual blocks, width 1; critic 6 layers), the paper config's loss weights
(adversarial 1, reconstruction / self-consistency / triple 100, tv 1e-5), hinge loss, random init (seed 0).
The LightCNN identity term is off (its weights are not loaded here) and the perceptual weight is 0 in that
config, so no loss network runs. Inputs: ``SyntheticReposing`` 128 px triplets (A, B, C and their landmarks).

Rows, each in its own subprocess (so that its peak memory belongs to it alone):

* ``train``     one training iteration = 1 D step + 1 G step, as ``GANnotation.training_step`` does them on two
  batches but without the Trainer: D on ``discriminator_terms(B, G(A, H_B))`` (G under no_grad), then G on
  ``weighted_sum(generator_terms(batch))`` (4 generator passes: G(A,H_B), G(G(A,H_B),H_A), G(A,H_C),
  G(G(A,H_B),H_C)) with D frozen; both with the module's Adam and grad-norm clipping at ``grad_clip``.
  Heatmap encoding is part of the step (the module computes it). images/s = batch / iteration time.
* ``inference`` the generator's forward under ``torch.no_grad()`` on precomputed inputs: ``(A + 1) / 2`` (the
  release's [0, 1] input range, as ``official_reposing`` feeds it) and the official heatmaps of B's landmarks
  (66 points). The heatmap encoding alone is timed too (``heatmaps images/s``).
* ``official``  ``model.py: Generator`` imported at run time from the --official checkout (nothing of it is
  copied or patched), built with its own random init, then loaded strictly with the facezoo generator's
  weights through ``official_state_dict_from`` (``module.`` prefix stripped, as its ``GANnotation.py`` does).
  Its forward takes ``cat(image, heatmaps)``; it is timed on exactly the inputs of the ``inference`` row,
  and the largest absolute difference between its output and facezoo's ``image`` is reported.

Time: median over ``--repeats`` (inference, official) or ``--train-repeats`` (train) calls after one warm-up
call. Memory ("peak"): what the warm-up and measured calls needed above what the process held just before
them (model and inputs excluded; for train, the Adam state created by the first step included). On the CPU,
the peak RSS is reset first (Linux ``/proc/self/clear_refs``, which ``ru_maxrss`` follows; a note says so
if the kernel refuses, and then the row's peak may be the set-up's), then ``ru_maxrss`` at the end minus
``VmRSS`` before; on a GPU, ``torch.cuda.max_memory_allocated`` minus the memory allocated before. The
"process peak RSS" column is the subprocess's whole peak resident memory (imports, set-up and calls).
The official ``model.py`` is plain PyTorch (torch and the standard library only); if it fails to import with
the installed torch, the row reports the error and nothing is patched.
"""
from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import os
import resource
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import _median_rate, append_section, machine  # noqa: E402  (scripts/bench.py: medians after warm-up, machine line)
from bench_psgan import _rss_mib  # noqa: E402  (current resident memory, MiB)

IMAGE_SIZE = 128
KINDS = ("train", "inference", "official")


def make_batch(batch: int, device) -> dict:
    """``batch`` SyntheticReposing triplets at 128 px, collated and moved to ``device``."""
    import torch

    from facezoo.data.synthetic import SyntheticReposing

    ds = SyntheticReposing(split="train", size=IMAGE_SIZE, length=max(batch, 4), num_identities=4)
    collated = torch.utils.data.default_collate([ds[i] for i in range(batch)])
    return {k: v.to(device) if torch.is_tensor(v) else v for k, v in collated.items()}


def import_official(path: Path):
    """``model.py`` of an official GANnotation checkout, imported as a fresh module (``sys.path`` gets ``path``)."""
    sys.path.insert(0, str(path))
    spec = importlib.util.spec_from_file_location("gannotation_official_model", path / "model.py")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as err:  # reported in the table, nothing is patched
        raise SystemExit(f"OFFICIAL-IMPORT-FAILED {type(err).__name__}: {err}") from None
    return module


def _reset_peak_rss() -> bool:
    """Reset the process's peak resident memory (Linux ``/proc/self/clear_refs`` ``5``, which ``ru_maxrss``
    follows), so that a later ``ru_maxrss`` covers only what ran after; False where the kernel refuses."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def _set_requires_grad(net, flag: bool) -> None:
    for p in net.parameters():
        p.requires_grad_(flag)


def run_one(args) -> dict:
    """Measure one row (``args.one``) at batch ``args.batch``; returns the RESULT dict."""
    import torch

    from facezoo.methods.gannotation.module import GANnotation
    from facezoo.methods.gannotation.official import official_state_dict_from

    device = torch.device(args.device)
    cuda = device.type == "cuda"
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    torch.manual_seed(0)
    model = GANnotation(image_size=IMAGE_SIZE, adversarial="hinge", identity_net={"weights": None},
                        perceptual_net={"weights": None}).to(device)
    b = args.batch
    batch = make_batch(b, device)
    result = {"kind": args.one, "batch": b, "device": device.type,
              "generator_params_M": sum(p.numel() for p in model.generator.parameters()) / 1e6}

    if args.one == "train":
        model.train()
        opt_g, opt_d = model.configure_optimizers()
        clip = model.grad_clip

        def measured():  # D main on one batch, then G main on the next (here: the same one)
            with torch.no_grad():
                fake = model(batch["image"], model.heatmaps(batch["target_landmarks"], IMAGE_SIZE))["image"]
            d_loss = sum(model.discriminator_terms(batch["target"], fake).values())
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            torch.nn.utils.clip_grad_norm_(model.discriminator.parameters(), clip)
            opt_d.step()
            _set_requires_grad(model.discriminator, False)  # as toggled_optimizer(opt_g) does
            g_terms, _ = model.generator_terms(batch)
            g_loss = model.weighted_sum(g_terms)
            opt_g.zero_grad(set_to_none=True)
            g_loss.backward()
            torch.nn.utils.clip_grad_norm_(model.generator.parameters(), clip)
            opt_g.step()
            _set_requires_grad(model.discriminator, True)

        repeats = args.train_repeats
    else:
        model.eval()
        image = (batch["image"] + 1.0) / 2.0  # the release's input range
        heatmaps = model.heatmaps(batch["target_landmarks"], IMAGE_SIZE)
        if args.one == "official":
            module = import_official(Path(args.official))
            official = module.Generator(conv_dim=64, c_dim=66, repeat_num=6).to(device).eval()
            state = official_state_dict_from(model.generator)["state_dict"]
            official.load_state_dict({k.removeprefix("module."): v for k, v in state.items()}, strict=True)
            x = torch.cat([image, heatmaps], 1)

            def measured():
                with torch.no_grad():
                    return official(x)
        else:
            def measured():
                with torch.no_grad():
                    return model.generator(image, heatmaps)["image"]

            landmarks = batch["target_landmarks"]
            result["heatmaps_images_per_s"] = _median_rate(lambda: model.heatmaps(landmarks, IMAGE_SIZE), b,
                                                           args.repeats, sync=sync)
        repeats = args.repeats

    sync()
    setup_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # model, inputs, imports
    if cuda:
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
    else:
        result["peak_reset"] = _reset_peak_rss()
        before = _rss_mib()
    result["images_per_s"] = _median_rate(measured, b, repeats, sync=sync)
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if cuda:
        result["peak_MiB"] = (torch.cuda.max_memory_allocated() - before) / 2**20
    else:
        result["peak_MiB"] = peak_rss - before
    result["process_peak_rss_MiB"] = max(setup_peak, peak_rss)
    if args.one == "official":
        with torch.no_grad():
            diff = measured() - model.generator(image, heatmaps)["image"]
        result["max_abs_diff_vs_facezoo"] = diff.abs().max().item()
    return result


def spawn(kind: str, batch: int, args) -> dict:
    """Run one row in a fresh interpreter; a failed row comes back as ``{"error": ...}``."""
    cmd = [sys.executable, __file__, "--one", kind, "--batch", str(batch), "--device", args.device,
           "--repeats", str(args.repeats), "--train-repeats", str(args.train_repeats)]
    if args.official:
        cmd += ["--official", str(args.official)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "FACEZOO_OFFLINE": "1"})
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    failed = [line for line in (proc.stdout + proc.stderr).splitlines() if "OFFICIAL-IMPORT-FAILED" in line]
    if failed:
        return {"kind": kind, "batch": batch, "error": failed[-1].split("OFFICIAL-IMPORT-FAILED ", 1)[1]}
    tail = " ".join((proc.stderr or proc.stdout).strip().splitlines()[-1:])
    return {"kind": kind, "batch": batch, "error": f"exit {proc.returncode}: {tail}"}


def tables(results: list[dict]) -> list[str]:
    """The markdown tables: facezoo per batch, then facezoo vs official per batch (when measured)."""
    by = {(r["kind"], r["batch"]): r for r in results}
    batches = sorted({r["batch"] for r in results})

    def cell(r, key, f="{:.2f}"):
        if r is None:
            return "–"
        return f"failed: {r['error']}" if "error" in r else f.format(r[key])

    lines = ["| GANnotation 128², width 1 | batch | generator params (M) | train images/s (1 D + 1 G step, hinge) "
             "| train peak (MiB) | inference images/s | inference peak (MiB) | heatmaps images/s "
             "| process peak RSS train / inference (MiB) |", "|---|---|---|---|---|---|---|---|---|"]
    for b in batches:
        t, i = by.get(("train", b)), by.get(("inference", b))
        params = next((r["generator_params_M"] for r in (t, i) if r and "error" not in r), None)
        lines.append(f"| facezoo | {b} | {'–' if params is None else f'{params:.2f}'} | {cell(t, 'images_per_s')} "
                     f"| {cell(t, 'peak_MiB', '{:.0f}')} | {cell(i, 'images_per_s')} | {cell(i, 'peak_MiB', '{:.0f}')} "
                     f"| {cell(i, 'heatmaps_images_per_s', '{:.0f}')} | {cell(t, 'process_peak_rss_MiB', '{:.0f}')} / "
                     f"{cell(i, 'process_peak_rss_MiB', '{:.0f}')} |")
    if not any(r["kind"] == "official" for r in results):
        return lines
    lines += ["", "| generator forward, 128² | batch | facezoo images/s | official model.py images/s "
              "| time official / facezoo | peak MiB facezoo / official | max abs diff |",
              "|---|---|---|---|---|---|---|"]
    for b in batches:
        i, o = by.get(("inference", b)), by.get(("official", b))
        if o is None:
            continue
        ok = i is not None and "error" not in i and "error" not in o
        ratio = f"{i['images_per_s'] / o['images_per_s']:.2f}" if ok else "–"
        diff = f"{o['max_abs_diff_vs_facezoo']:.1e}" if "error" not in o else "–"
        official_peak = f"{o['peak_MiB']:.0f}" if "error" not in o else "–"
        lines.append(f"| side by side | {b} | {cell(i, 'images_per_s')} | {cell(o, 'images_per_s')} | {ratio} "
                     f"| {cell(i, 'peak_MiB', '{:.0f}')} / {official_peak} | {diff} |")
    return lines


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--official", type=Path,
                   help="a checkout of github.com/ESanchezLozano/GANnotation (read at run time)")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--batches", default="1,16", help="comma-separated batch sizes")
    p.add_argument("--repeats", type=int, default=3, help="timed forwards per inference / official row")
    p.add_argument("--train-repeats", type=int, default=1, help="timed iterations per train row (CPU: ~3 s/image)")
    p.add_argument("--append", type=Path, help="markdown file to append the results to")
    p.add_argument("--one", choices=KINDS, help=argparse.SUPPRESS)
    p.add_argument("--batch", type=int, default=1, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.one:
        print("RESULT " + json.dumps(run_one(args)))
        return
    if args.official is not None and not (args.official / "model.py").is_file():
        raise SystemExit(f"--official {args.official}: no model.py there "
                         "(expected an ESanchezLozano/GANnotation checkout)")

    kinds = ["train", "inference"] + (["official"] if args.official else [])
    results = []
    for batch in (int(b) for b in args.batches.split(",") if b):
        for kind in kinds:
            results.append(spawn(kind, batch, args))
            print(json.dumps(results[-1]), flush=True)

    command = "python scripts/bench_gannotation.py " + " ".join(sys.argv[1:])
    memory = "torch.cuda.max_memory_allocated" if args.device == "cuda" else "peak RSS"
    text = "\n".join([
        f"\n## {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC — `{command}`\n",
        f"GANnotation at 128² (scripts/bench_gannotation.py docstring says what each row is), device {args.device}. "
        f"Machine: {machine()}. Medians of {args.train_repeats} train iteration(s) and {args.repeats} forwards, each "
        f"after one warm-up; peak = the measured calls' {memory} above what the process held before them.\n",
        *tables(results),
    ]) + "\n"
    if any(r.get("peak_reset") is False for r in results):
        text += ("\nNote: /proc/self/clear_refs was not writable, so CPU peaks include the set-up's high-water "
                 "mark.\n")
    print(text)
    if args.append:
        append_section(args.append, text)


if __name__ == "__main__":
    main()
