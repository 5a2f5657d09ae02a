"""channels_last and torch.inference_mode against facezoo's defaults, for the TP-GAN and GANnotation generators.

    python scripts/bench_layouts.py            # prints one line per method and batch; docs/benchmarks.md quotes it

Each method's module is built as ``scripts/bench.py`` builds it (``model=<method>``, random weights, the first
samples of its training split) and ``predict_batch`` is timed (median of 15 calls for GANnotation, 5 for TP-GAN,
after one warm-up, 2 torch threads) under ``torch.no_grad`` (the default), ``torch.inference_mode``, with the
generator in channels_last memory, with bf16 weights (the fast path) and with both.
"""

from __future__ import annotations

import functools
import importlib.util
import statistics
import sys
import time
from pathlib import Path

import torch

_spec = importlib.util.spec_from_file_location("facezoo_bench_script", Path(__file__).with_name("bench.py"))
bench = sys.modules.setdefault(_spec.name, importlib.util.module_from_spec(_spec))
_spec.loader.exec_module(bench)


def median_time(fn, calls: int) -> float:
    fn()
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    torch.set_num_threads(2)
    for method, calls in (("gannotation", 15), ("tpgan", 5)):
        for batch_size in (1, 8):
            _, model, batch = bench.build([f"model={method}"], batch_size, torch.device("cpu"))
            model.eval()
            run = functools.partial(model.predict_batch, batch)
            seconds = {}
            with torch.no_grad():
                seconds["fp32, no_grad"] = median_time(run, calls)
            with torch.inference_mode():
                seconds["fp32, inference_mode"] = median_time(run, calls)
            model.generator.to(memory_format=torch.channels_last)
            with torch.no_grad():
                seconds["fp32, channels_last"] = median_time(run, calls)
            model.generator.to(memory_format=torch.contiguous_format)
            bench._bf16_generator(model)
            with torch.no_grad():
                seconds["bf16 weights"] = median_time(run, calls)
            model.generator.to(memory_format=torch.channels_last)
            with torch.no_grad():
                seconds["bf16 weights, channels_last"] = median_time(run, calls)
            print(method, f"batch {batch_size}:", ", ".join(f"{k} {v:.4f} s" for k, v in seconds.items()), flush=True)


if __name__ == "__main__":
    main()
