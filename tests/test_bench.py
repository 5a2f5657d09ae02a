"""scripts/bench.py: one benchmark entry for every method (tiny sizes, one repeat, rows in this process)."""

from __future__ import annotations

import importlib.util
import math
import os
import re
import sys

import pytest
from conftest import ROOT

from facezoo.config import build_model, compose

_spec = importlib.util.spec_from_file_location("facezoo_bench_script", ROOT / "scripts" / "bench.py")
bench = sys.modules.setdefault(_spec.name, importlib.util.module_from_spec(_spec))  # dataclasses look it up
_spec.loader.exec_module(bench)

#: tiny settings every method accepts, plus what makes one of them small enough
TINY = ["data.size=64", "model.width=0.125"]
TINY_EXTRA = {"tpgan": ["model.zdim=8", "model.feature_dim=32"],
              "stylegan2": ["model.latent_dim=32", "model.n_mlp=2", "model.channel_multiplier=1"]}
FAST = ["--repeats", "1", "--batches", "1,2", "--train-batch", "2", "--no-isolate", "--raise-errors", "--variants"]


def table_rows(text: str) -> dict[tuple[str, int], list[str]]:
    """``{(row label, batch): cells after the batch}`` of the Markdown table in ``text``."""
    rows = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| ") and len(cells) > 2 and cells[1].isdigit():
            rows[(cells[0], int(cells[1]))] = cells[2:]
    return rows


@pytest.mark.parametrize("method", bench.methods())
def test_bench_method_rows(method, tmp_path):
    out = tmp_path / "benchmarks.md"
    # one method's preset rows (they cost a training step and a few batches of the preset's loop)
    preset = ["--preset", "--loop-batches", "2"] if method == "gannotation" else []
    argv = [f"model={method}", *TINY, *TINY_EXTRA.get(method, []), *FAST, *preset, "--append", str(out)]
    text = bench.main(argv)        # a method trained in stages gets stand-ins for its earlier stages' files

    assert out.read_text().startswith("# Benchmarks\n") and text in out.read_text()
    assert f"— `python scripts/bench.py {' '.join(argv)}`" in text          # the exact command on top
    spec = bench.spec_of(method, compose("train", [f"model={method}"]).model._target_)
    assert "Machine: " in text and f"| {spec.title} 64², width 0.125 |" in text
    rows = table_rows(text)
    labels = {label for label, _ in rows}
    assert ("facezoo inference (`predict_batch`)", 1) in rows and ("facezoo inference (`predict_batch`)", 2) in rows
    train = [label for label in labels if label.startswith("facezoo training step (")]
    assert len(train) == 1 and (train[0], 2) in rows
    at_preset = [label for label in labels if label.startswith("facezoo training step at the CPU preset")]
    assert at_preset == (["facezoo training step at the CPU preset (`experiment=gannotation_cpu`: 64², width 0.125)"]
                         if preset else [])
    loop = [(label, b) for label, b in rows if label.startswith("facezoo training loop at the CPU preset")]
    assert loop == ([("facezoo training loop at the CPU preset (its DataLoader: 1 worker, batches as scheduled)",
                      compose("train", ["experiment=gannotation_cpu"]).data.batch_size)] if preset else [])
    overrides = [f"model={method}", *TINY, *TINY_EXTRA.get(method, [])]
    stand_ins = spec.stand_ins(compose("train", overrides), tmp_path) if spec.stand_ins else []
    assert ("Stand-ins for weight files absent here" in text) == bool(stand_ins)
    if method == "psgan":                     # its VGG16 term is computed (a stand-in when the weights are absent)
        assert "`g.perceptual`" not in text
    model = build_model(*overrides, *stand_ins)                               # the step runs every phase
    assert train[0] == f"facezoo training step ({' → '.join(p.name for p in model.phases if p.at)})"
    assert {(f"facezoo inference, {name}", b) for name in spec.variants for b in (1, 2)} <= set(rows)
    for (label, _), cells in rows.items():                   # time, images/s, memory: measured, finite
        time_s, rate = (float(c) for c in cells[:2])
        assert time_s > 0 and rate > 0 and math.isfinite(time_s * rate)
        assert cells[3:5] == ["–", "–"]                       # no --official: no ratios
        if label.startswith("facezoo training loop"):         # other processes (workers): no memory; its data wait
            found = re.fullmatch(r"waiting for data (\d+)% of the time", cells[5])
            assert cells[2] == "–" and found and 0 <= int(found[1]) <= 100, cells
            continue
        assert float(cells[2]) >= 0                           # memory
        if label.startswith("facezoo inference, "):           # a variant: its difference from the fp32 output
            found = re.fullmatch(r"(\S+) to facezoo fp32 \(PSNR (\S+) dB\)", cells[5])
            assert found and (float(found[2]) > 30 or float(found[1]) < 1e-4), cells[5]
        else:
            assert cells[5] == "–"
    assert ("Official rows skipped" if spec.official else "Official rows: ") in text


def test_make_bench_covers_every_method():
    """`make bench` runs `--list`: every method with a model config, whether or not BENCHES has an entry."""
    listed = bench.methods()
    assert {"tpgan", "psgan", "gannotation"} <= set(listed) and set(bench.BENCHES) <= set(listed)
    assert "tpgan_official" not in listed and "gannotation_official" not in listed   # variants of a method


def test_bench_cli_errors(tmp_path):
    with pytest.raises(SystemExit, match="name a method"):
        bench.main(["--repeats", "1"])
    with pytest.raises(SystemExit, match=re.escape("no psgan/net.py there")):
        bench.main(["model=psgan", "--official", str(tmp_path)])


@pytest.mark.skipif(not os.environ.get("FACEZOO_OFFICIAL_MASKGAN"),
                    reason="FACEZOO_OFFICIAL_MASKGAN (a switchablenorms/CelebAMask-HQ checkout) not set")
def test_maskgan_beside_the_demo_generator(tmp_path):
    """The demo's GlobalGenerator with the module's weights gives the facezoo output (the demo's widths, 64 px)."""
    argv = ["model=maskgan", "data.size=64", "--official", os.environ["FACEZOO_OFFICIAL_MASKGAN"], *FAST,
            "--batches", "1", "--append", str(tmp_path / "b.md")]
    rows = table_rows(bench.main(argv))
    official = rows[("official inference (`MaskGAN_demo/models/networks.py: GlobalGenerator`)", 1)]
    ours = rows[("facezoo inference (`predict_batch`)", 1)]
    assert float(official[0]) > 0 and float(ours[3]) > 0 and float(ours[5]) < 1e-4   # time ratio; max abs diff


@pytest.mark.skipif(not os.environ.get("FACEZOO_OFFICIAL_TPGAN"),
                    reason="FACEZOO_OFFICIAL_TPGAN (an iwtw/pytorch-TP-GAN checkout) not set")
def test_tpgan_beside_the_pytorch_port(tmp_path):
    """--official benchmarks the port's architecture (model=tpgan_iwtw): the port's Generator with the module's
    weights gives the facezoo output."""
    argv = ["model=tpgan", "--official", os.environ["FACEZOO_OFFICIAL_TPGAN"], *FAST, "--batches", "1",
            "--append", str(tmp_path / "b.md")]
    text = bench.main(argv)
    rows = table_rows(text)
    official = rows[("official inference (`network.py: Generator (the PyTorch port)`)", 1)]
    ours = rows[("facezoo inference (`predict_batch`)", 1)]
    assert "`model=tpgan_iwtw" in text and float(official[0]) > 0 and float(ours[5]) < 1e-4


@pytest.mark.skipif(not os.environ.get("FACEZOO_OFFICIAL_PSGAN"),
                    reason="FACEZOO_OFFICIAL_PSGAN (a wtjiang98/PSGAN checkout) not set")
def test_psgan_training_step_beside_the_official_trainer(tmp_path):
    """One iteration of the official Solver.train runs beside facezoo's step at 256², batch 1, and the facezoo row
    gets the ratios to it (a few minutes on 2 cores)."""
    argv = ["model=psgan", "--official", os.environ["FACEZOO_OFFICIAL_PSGAN"], *FAST, "--batches", "1",
            "--train-batch", "1", "--append", str(tmp_path / "b.md")]
    rows = table_rows(bench.main(argv))
    official = rows[("official training step (`psgan/solver.py: Solver.train`)", 1)]
    ours = rows[("facezoo training step (d_a → d_b → g)", 1)]
    assert float(official[0]) > 0 and float(ours[3]) > 0 and float(ours[4]) > 0     # time and memory ratios


def test_the_table_compares_each_row_with_the_official_row_of_its_task_batch_and_config():
    """Inference with official inference, the training step with the official training step of the same batch and
    config; the preset's step (another config) and the loop get no ratio, the compiled step its speed-up."""
    def row(kind, batch, overrides=("model=psgan",)):
        return {"kind": kind, "batch": batch, "overrides": list(overrides)}

    preset = ("model=psgan", "experiment=psgan_cpu")
    rows = [("facezoo inference", row("facezoo", 1), {"time_s": 2.0, "peak_MiB": 100.0}),
            ("official inference", row("official", 1), {"time_s": 4.0, "peak_MiB": 400.0, "max_abs_diff": 1e-5}),
            ("facezoo training step", row("train", 1), {"time_s": 30.0, "peak_MiB": 3000.0}),
            ("official training step", row("official_train", 1), {"time_s": 60.0, "peak_MiB": 6000.0}),
            ("facezoo training step at the CPU preset", row("train", 1, preset), {"time_s": 0.5, "peak_MiB": 50.0}),
            ("compiled", {**row("train", 1, preset), "compile": True},
             {"time_s": 0.25, "first_s": 95.0, "peak_MiB": 80.0}),
            ("facezoo training loop at the CPU preset", row("loop", 8, preset),
             {"time_s": 1.0, "peak_MiB": None, "data_wait_share": 0.075})]
    cells = table_rows("\n".join(bench.method_table("PSGAN", rows)))
    assert cells[("facezoo inference", 1)][3:] == ["0.50", "0.25", "1.0e-05"]
    assert cells[("facezoo training step", 1)][3:] == ["0.50", "0.50", "–"]
    assert cells[("facezoo training step at the CPU preset", 1)][3:] == ["–", "–", "–"]
    assert cells[("compiled", 1)][3:] == ["–", "–", "2.00x the eager step's speed; first step (compiling) 95.0 s"]
    assert cells[("facezoo training loop at the CPU preset", 8)] == ["1.000", "8", "–", "–", "–",
                                                                     "waiting for data 8% of the time"]
