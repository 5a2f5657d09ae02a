"""PSGAN generator forward at 256x256: facezoo's memory-efficient AMM vs the dense official formulation
(and, with --official, the official generator itself), appended to docs/benchmarks.md.

    python scripts/bench_psgan.py --append docs/benchmarks.md                       # `make bench`
    python scripts/bench_psgan.py --official /path/to/wtjiang98/PSGAN --append docs/benchmarks.md
    python scripts/bench_psgan.py --device cuda --append docs/benchmarks.md

Rows (generator width 1, random Xavier init, seed 0, inputs = SyntheticMakeup 256 px faces with their parsing
and landmarks, `torch.no_grad()`):

* ``facezoo sdpa``     PSGANGenerator(amm="sdpa"): AMM through scaled_dot_product_attention;
* ``facezoo chunked``  PSGANGenerator(amm="chunked"): explicit softmax over 1024 source pixels at a time;
* ``dense``            PSGANGenerator(amm="dense"): the official formulation, a dense (3, HW, HW) matrix per image;
* ``official``         psgan/net.py ``Generator`` imported at run time from the --official checkout (nothing of it
  is copied or patched), loaded with the facezoo generator's weights through ``official_state_dict_from``, fed
  the official pre-processing output (region masks (3, 1, 256, 256), normalised relative positions
  (3, 136, 64, 64)). It handles one image per call, so batch 8 is 8 calls. The row also reports the largest
  absolute difference between its output and facezoo's on the same weights and inputs.

Each row runs in its own subprocess. Time: median of ``--repeats`` forwards after one warm-up. Memory: on the
CPU, the forward's peak resident memory above what the process held just before its first forward
(``ru_maxrss`` at the end minus ``VmRSS`` before; model and inputs excluded); on a GPU,
``torch.cuda.max_memory_allocated`` minus the memory allocated before the first forward.

The official net.py imports ``load_state_dict_from_url`` and ``model_urls`` from ``torchvision.models.vgg``,
which current torchvision no longer has (they serve only its VGG helper, not the generator). The import is
tried as is; if it fails, the failure is reported, and ``--torchvision-shim`` (opt-in) sets those two names on
torchvision's module (``torch.hub.load_state_dict_from_url`` and ``{}``) before importing again.
"""
from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import append_section, machine  # noqa: E402  (scripts/bench.py)

ROOT = Path(__file__).resolve().parents[1]
IMAGE_SIZE = 256
IMPLS = ("sdpa", "chunked", "dense")


def _rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def make_inputs(batch: int, device):
    """SyntheticMakeup faces at 256 px: images, landmarks and PSGAN region masks of source and reference."""
    import torch

    from facezoo.data.synthetic import SyntheticMakeup
    from facezoo.methods.psgan.networks import region_masks_from_parsing

    ds = SyntheticMakeup(split="test", size=IMAGE_SIZE, length=max(batch, 8), num_identities=8)
    batch_dict = torch.utils.data.default_collate([ds[i] for i in range(batch)])
    x, y = batch_dict["image"], batch_dict["reference"]
    lx, ly = batch_dict["landmarks"].float(), batch_dict["reference_landmarks"].float()
    rx = region_masks_from_parsing(batch_dict["mask"], lx)
    ry = region_masks_from_parsing(batch_dict["reference_mask"], ly)
    return [t.to(device) for t in (x, y, lx, ly, rx, ry)]


def official_preprocess(landmarks, regions):
    """The official ``PreProcess.process`` output for one image: masks (3, 1, H, W), diff (3, 136, 64, 64)."""
    import torch
    import torch.nn.functional as F

    from facezoo.methods.psgan.networks import relative_position_features

    diff = relative_position_features(landmarks[None], IMAGE_SIZE // 4, IMAGE_SIZE)[0]
    masks = F.interpolate(regions[None], size=(IMAGE_SIZE // 4, IMAGE_SIZE // 4))[0]
    diff = diff[None] * masks[:, None]
    norm = diff.norm(dim=1, keepdim=True)
    diff = diff / torch.where(norm == 0, torch.full_like(norm, 1e10), norm)
    return regions[:, None], diff


def import_official(path: Path, shim: bool):
    """Import ``psgan/net.py`` of an official checkout; returns (module, note)."""
    sys.path.insert(0, str(path))                      # net.py imports ops.spectral_norm and concern.track
    note = ""

    def load():
        spec = importlib.util.spec_from_file_location("psgan_official_net", path / "psgan" / "net.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    try:
        return load(), note
    except ImportError as err:
        note = f"plain import fails: {type(err).__name__}: {err}"
        if not shim:
            raise SystemExit(f"OFFICIAL-IMPORT-FAILED {note}") from None
    import torch
    import torchvision.models.vgg as tv_vgg

    tv_vgg.load_state_dict_from_url = torch.hub.load_state_dict_from_url
    tv_vgg.model_urls = {}
    return load(), note + " -> imported with --torchvision-shim"


def run_one(args) -> dict:
    import torch

    from facezoo.methods.psgan.networks import PSGANGenerator, init_xavier
    from facezoo.methods.psgan.official import official_state_dict_from

    device = torch.device(args.device)
    cuda = device.type == "cuda"
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    torch.manual_seed(0)
    impl = "sdpa" if args.one == "official" else args.one
    ours = init_xavier(PSGANGenerator(amm=impl)).to(device).eval()
    inputs = make_inputs(args.batch, device)
    result = {"impl": args.one, "batch": args.batch, "device": device.type}

    if args.one == "official":
        module, result["note"] = import_official(Path(args.official), args.torchvision_shim)
        official = module.Generator().to(device).eval()
        official.load_state_dict(official_state_dict_from(ours), strict=True)
        x, y, lx, ly, rx, ry = inputs
        prepared = [(x[i:i + 1], y[i:i + 1], *official_preprocess(lx[i], rx[i]), *official_preprocess(ly[i], ry[i]))
                    for i in range(args.batch)]

        def forward():
            return torch.cat([official(c, s, mc, ms, dc, ds) for c, s, mc, dc, ms, ds in prepared])
    else:
        def forward():
            return ours(*inputs)

    with torch.no_grad():
        sync()
        if cuda:
            torch.cuda.reset_peak_memory_stats()
            before = torch.cuda.memory_allocated()
        else:
            before = _rss_mib()
        output = forward()
        sync()
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            forward()
            sync()
            times.append(time.perf_counter() - start)
        if cuda:
            result["peak_MiB"] = (torch.cuda.max_memory_allocated() - before) / 2**20
        else:
            result["peak_MiB"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - before
        result["time_s"] = statistics.median(times)
        if args.one == "official":
            result["max_abs_diff_vs_facezoo"] = (output - ours(*inputs)).abs().max().item()
    return result


def spawn(impl: str, batch: int, args) -> dict:
    cmd = [sys.executable, __file__, "--one", impl, "--batch", str(batch), "--device", args.device,
           "--repeats", str(args.repeats)]
    if args.official:
        cmd += ["--official", str(args.official)]
    if args.torchvision_shim:
        cmd.append("--torchvision-shim")
    env = {**os.environ, "FACEZOO_OFFLINE": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    failed = [line for line in (proc.stdout + proc.stderr).splitlines() if "OFFICIAL-IMPORT-FAILED" in line]
    if failed:
        return {"impl": impl, "batch": batch, "device": args.device,
                "error": failed[-1].split("OFFICIAL-IMPORT-FAILED ", 1)[1]}
    tail = " ".join((proc.stderr or proc.stdout).strip().splitlines()[-1:])
    return {"impl": impl, "batch": batch, "device": args.device, "error": f"exit {proc.returncode}: {tail}"}


def table(results: list[dict]) -> list[str]:
    label = {"sdpa": "facezoo sdpa", "chunked": "facezoo chunked", "dense": "dense (official formulation)",
             "official": "official psgan/net.py"}
    lines = ["| generator forward, 256², width 1 | batch | time (s) | peak memory (MiB) | time / facezoo sdpa "
             "| memory / facezoo sdpa | max abs diff vs facezoo |", "|---|---|---|---|---|---|---|"]
    base = {r["batch"]: r for r in results if r["impl"] == "sdpa" and "error" not in r}
    for r in results:
        if "error" in r:
            lines.append(f"| {label[r['impl']]} | {r['batch']} | – | – | – | – | failed: {r['error']} |")
            continue
        b = base.get(r["batch"])
        ratio_t = f"{r['time_s'] / b['time_s']:.2f}" if b else "–"
        ratio_m = f"{r['peak_MiB'] / max(b['peak_MiB'], 1e-9):.1f}" if b else "–"
        diff = f"{r['max_abs_diff_vs_facezoo']:.1e}" if "max_abs_diff_vs_facezoo" in r else "–"
        lines.append(f"| {label[r['impl']]} | {r['batch']} | {r['time_s']:.2f} | {r['peak_MiB']:.0f} | {ratio_t} "
                     f"| {ratio_m} | {diff} |")
    notes = sorted({r["note"] for r in results if r.get("note")})
    return lines + [""] + [f"Official import: {n}." for n in notes]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--official", type=Path, help="a checkout of github.com/wtjiang98/PSGAN (read at run time)")
    p.add_argument("--torchvision-shim", action="store_true",
                   help="if the official net.py fails to import, provide the two removed torchvision names")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--batches", default="1,8", help="comma-separated batch sizes")
    p.add_argument("--impls", default=",".join(IMPLS), help=f"comma-separated subset of {IMPLS}")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--append", type=Path, help="markdown file to append the results to")
    p.add_argument("--one", choices=[*IMPLS, "official"], help=argparse.SUPPRESS)
    p.add_argument("--batch", type=int, default=1, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.one:
        print("RESULT " + json.dumps(run_one(args)))
        return
    if args.official is not None and not (args.official / "psgan" / "net.py").is_file():
        raise SystemExit(f"--official {args.official}: no psgan/net.py there (expected a wtjiang98/PSGAN checkout)")

    impls = [i for i in args.impls.split(",") if i] + (["official"] if args.official else [])
    results = []
    for batch in (int(b) for b in args.batches.split(",")):
        for impl in impls:
            results.append(spawn(impl, batch, args))
            print(json.dumps(results[-1]), flush=True)

    command = "python scripts/bench_psgan.py " + " ".join(sys.argv[1:])
    text = "\n".join([
        f"\n## {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC — `{command}`\n",
        f"PSGAN generator forward (scripts/bench_psgan.py docstring says what each row is). Machine: "
        f"{machine(args.device)}. Median of {args.repeats} forwards after one warm-up; memory = the forward's "
        f"peak above the memory held before it ({'max_memory_allocated' if args.device == 'cuda' else 'peak RSS'}).\n",
        *table(results),
    ]) + "\n"
    print(text)
    if args.append:
        append_section(args.append, text)


if __name__ == "__main__":
    main()
