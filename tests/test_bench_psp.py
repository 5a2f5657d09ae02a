"""scripts/bench_psp.py: the pSp benchmark's rows on tiny networks (facezoo only), its table and CLI errors.

The official rows need a pixel2style2pixel checkout: with ``FACEZOO_OFFICIAL_PSP`` set, the official ops the
benchmark runs (its ``upfirdn2d_native`` and the torch bias + leaky ReLU) are checked against facezoo's in a
subprocess (the import patches ``sys.modules``)."""

from __future__ import annotations

import importlib.util
import math
import os
import subprocess
import sys

import pytest
from conftest import ROOT

_spec = importlib.util.spec_from_file_location("facezoo_bench_psp_script", ROOT / "scripts" / "bench_psp.py")
bench_psp = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_psp)

OFFICIAL = os.environ.get("FACEZOO_OFFICIAL_PSP")


def table_rows(text: str) -> dict[tuple[str, int, int, str], list[str]]:
    """``{(task, output size, batch, implementation): the cells after them}`` of the Markdown table in ``text``."""
    rows = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| ") and len(cells) == 9 and cells[1].isdigit():
            rows[(cells[0], int(cells[1]), int(cells[2]), cells[3])] = cells[4:]
    return rows


def test_bench_psp_tiny_rows(tmp_path):
    out = tmp_path / "benchmarks.md"
    argv = ["--tiny", "--sizes", "32", "--batches", "1", "--train-sizes", "32", "--train-batch", "2", "--repeats", "1",
            "--fast", "--append", str(out)]
    text = bench_psp.main(argv)

    assert out.read_text().startswith("# Benchmarks\n") and text in out.read_text()
    assert "`python scripts/bench_psp.py " + " ".join(argv) + "`" in text     # the exact command on top
    assert "Machine: " in text and "no LPIPS / ID" in text and "torch.optim.Adam" in text
    rows = table_rows(text)
    fast = ("inference", 32, 1, "facezoo fast path (`fast=true`: bf16 weights)")
    assert set(rows) == {("inference", 32, 1, "facezoo"), ("train step", 32, 2, "facezoo"), fast}   # inference only
    for key, cells in rows.items():                     # measured, finite; no official row: no ratios, no diff
        time_s, memory = float(cells[0]), float(cells[1])
        assert time_s > 0 and math.isfinite(time_s) and memory >= 0
        assert cells[2:4] == ["–", "–"]
        assert cells[4] == "–" if key != fast else cells[4].startswith("PSNR ")
    psnr = float(rows[fast][4].split()[1])
    assert 25 < psnr < 200                              # bf16 ran (not identical) and stayed close to fp32


def test_bench_psp_table_ratios():
    """The facezoo row carries official ÷ facezoo time and memory and the output difference; errors show."""
    results = [
        {"impl": "facezoo", "task": "inference", "size": 256, "batch": 1, "time_s": 2.0, "peak_MiB": 100.0},
        {"impl": "official", "task": "inference", "size": 256, "batch": 1, "time_s": 3.0, "peak_MiB": 400.0,
         "max_abs_diff_vs_facezoo": 1.5e-5},
        {"impl": "facezoo_fast", "task": "inference", "size": 256, "batch": 1, "time_s": 1.0, "peak_MiB": 200.0,
         "psnr_vs_fp32": 40.04},
        {"impl": "facezoo", "task": "train step", "size": 256, "batch": 4, "time_s": 10.0, "peak_MiB": 0.0},
        {"impl": "official", "task": "train step", "size": 256, "batch": 4, "error": "killed by SIGKILL (out of "
                                                                                     "memory?)"},
    ]
    rows = table_rows("\n".join(bench_psp.table(results)))
    assert rows[("inference", 256, 1, "facezoo")] == ["2.000", "100", "1.50", "4.00", "1.5e-05"]
    assert rows[("inference", 256, 1, "official models/psp.py (native ops)")][2:] == ["–", "–", "–"]
    assert rows[("inference", 256, 1, "facezoo fast path (`fast=true`: bf16 weights)")] == [
        "1.000", "200", "3.00", "2.00", "PSNR 40.0 dB to facezoo fp32"]
    assert rows[("train step", 256, 4, "facezoo")][2:] == ["–", "–", "–"]    # no official time to divide by
    assert rows[("train step", 256, 4, "official models/psp.py (native ops)")][-1] == "killed by SIGKILL (out of " \
                                                                                       "memory?)"


def test_bench_psp_cli_errors(tmp_path, capsys):
    with pytest.raises(SystemExit):
        bench_psp.main(["--official", str(tmp_path)])
    assert "no models/psp.py there" in capsys.readouterr().err
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "psp.py").write_text("")
    with pytest.raises(SystemExit):
        bench_psp.main(["--official", str(tmp_path), "--tiny"])
    assert "--tiny shrinks the networks" in capsys.readouterr().err


@pytest.mark.skipif(not OFFICIAL, reason="FACEZOO_OFFICIAL_PSP (a pixel2style2pixel checkout) not set")
def test_official_native_ops_match_facezoo():
    """The official side's resampling and activation equal facezoo's (the benchmark compares like with like)."""
    code = f"""
import sys, torch
sys.path.insert(0, {str(ROOT / 'scripts')!r})
from pathlib import Path
import bench_psp
from facezoo.nets import stylegan2 as ours
bench_psp.import_official(Path({OFFICIAL!r}))
model = sys.modules["models.stylegan2.model"]
gen = torch.Generator().manual_seed(0)
x, bias = torch.randn(2, 3, 9, 9, generator=gen), torch.randn(3, generator=gen)
k = ours.make_kernel([1, 3, 3, 1])
for up, down, pad in [(1, 1, (2, 1)), (2, 1, (2, 1)), (1, 2, (1, 1))]:
    kernel = k * up ** 2
    diff = (model.upfirdn2d(x, kernel, up=up, down=down, pad=pad) - ours.upfirdn2d(x, kernel, up, down, pad)).abs()
    assert diff.max() < 1e-5, (up, down, pad, diff.max())
assert torch.allclose(model.FusedLeakyReLU(3)(x), ours.fused_leaky_relu(x, torch.zeros(3)), atol=1e-6)
assert torch.allclose(model.fused_leaky_relu(x, bias), ours.fused_leaky_relu(x, bias), atol=1e-6)
print("ok")
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip().endswith("ok"), proc.stderr[-2000:]
