"""Speed and memory of a facezoo method (and, with --official, of the official network beside it), as Markdown.

    python scripts/bench.py model=psgan                                   # the method's own config (256², width 1)
    python scripts/bench.py model=psgan --official /path/to/wtjiang98/PSGAN --append docs/benchmarks.md
    python scripts/bench.py model=gannotation data.size=64 model.width=0.25 --repeats 5
    python scripts/bench.py model=tpgan --device cuda --batches 1,8,32
    python scripts/bench.py model=renderer                                # the synthetic-data renderers
    python scripts/bench.py --list                                        # the methods (`make bench` runs each)

``model=<name>`` is a facezoo model config (``conf/model/<name>.yaml``, e.g. ``tpgan``, ``tpgan_official``,
``psgan``, ``gannotation``); further ``key=value`` arguments are Hydra overrides of the training config
(``facezoo.config.compose("train", ...)``), so the module and its data are built exactly as
``python -m facezoo.train`` would build them (random init, ``torch.manual_seed(0)``; frozen loss networks whose
weights are absent are switched off, and the table says so).

Rows (inputs: the first samples of the config's training split, collated; all in fp32, TF32 off on a GPU):

* ``facezoo inference``: the method's inference call (``model.predict_batch(batch)``) in eval mode
  under ``torch.no_grad()``, at each of ``--batches`` (default 1 and 8);
* ``official inference`` (with ``--official PATH``): the official network, imported at run time from the
  checkout (nothing of it is copied or patched), loaded with the facezoo module's weights through the method's
  ``official.py`` key map and fed the same inputs in its own format; the facezoo row gets the time and memory
  ratios to it and the largest absolute difference between the two outputs;
* ``facezoo training step``: every phase of the module (``model.phases``, each ``repeat`` times) on one batch of
  ``--train-batch`` (default 8, or the official trainer's batch: ``BenchSpec.train_batch``), i.e. the base's
  ``training_step`` without its ``every`` / ``at`` schedule, run inside a one-batch Lightning ``Trainer`` (manual
  optimization, ``toggled_optimizer``, clipping and logging as in training); its memory includes the optimizer
  state the first step creates;
* ``official training step`` (with ``--official PATH``, where the official code has a trainer that runs here:
  PSGAN's ``Solver.train``): one iteration of the official training loop on the same batch, the stand-ins around
  it (stubbed imports, CUDA calls on the CPU) listed in the section's note; the facezoo training row gets the
  ratios to it;
* with ``--preset``: the training step again at the method's CPU preset's size and width
  (``experiment=<method>_cpu``), the configuration the presets of docs/results.md train, and the preset's
  ``training loop``: its own DataLoader (renderer, workers, batch size) and phase schedule for 2 + ``--loop-batches``
  batches in a Lightning ``Trainer``, timed per batch by a callback after 2 warm-up batches; the row gives the
  median time per batch and the share of the time spent between two steps, i.e. waiting for data (the batch's
  rendering in the main process, or the wait for a worker's); with ``--compile`` also the preset's training step
  with ``compile=true`` (``facezoo.train.compile_networks``), its speed relative to the eager step and the time of
  its first (compiling) step;
* with ``--variants``: the method's alternative implementations beside the inference rows (every method's bf16
  fast path, ``fast=true`` in ``facezoo.infer``; PSGAN: also the chunked and the dense AMM, the dense one being the
  official formulation), each with its
  largest absolute difference from, and PSNR to, the facezoo fp32 output.

A method may need weight files that are not here: ones an earlier training stage makes (pSp's StyleGAN2 decoder,
MaskGAN's stage-1 MaskVAE) or a loss network's (PSGAN's VGG16); when they are absent, random ones of the configured
architecture stand in (``BenchSpec.stand_ins``: the networks' time does not depend on their weights) and the
section says so.

Time: median of ``--repeats`` calls (``--train-repeats`` for the training step) after one warm-up call;
images/s = batch / median time. Memory: what the warm-up and measured calls needed above what the process held
just before them (model and inputs excluded): on the CPU the peak resident memory (``VmHWM`` reset through
``/proc/self/clear_refs``) minus ``VmRSS`` before; on a GPU ``torch.cuda.max_memory_allocated`` minus the memory
allocated before. Each row runs in its own subprocess so that its peak belongs to it alone (``--no-isolate``
runs them in this process: faster, but a row may reuse memory an earlier one freed, so its peak reads low).

``model=renderer`` measures the synthetic-data renderers instead: samples/s of every ``conf/data/synthetic_*``
view at 128² (``data.size=...`` changes it) on one torch thread.

Every method is benchmarked the same way; :data:`BENCHES` holds only what differs (the official side, another
inference call, variants, stand-ins), so a new method needs no entry until it has one of those.

``--append FILE`` appends the section (command line, machine, table) to FILE; ``make bench`` runs the renderer
and every method with a model config named after it (``--list``), with ``--official`` where
``FACEZOO_OFFICIAL_<METHOD>`` or ``OFFICIAL_DIR/<method>`` names a checkout.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import copy
import datetime as dt
import importlib.util
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

RENDERER = "renderer"


# ------------------------------------------------------------------------------------------------ measuring
def _status_mib(key: str) -> float | None:
    """A memory line of ``/proc/self/status`` (``VmRSS``, ``VmHWM``) in MiB; None off Linux."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def _reset_peak_rss() -> bool:
    """Reset the process's peak resident memory (Linux ``/proc/self/clear_refs`` ``5``); False if refused."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def measure(fn: Callable[[], object], repeats: int, device) -> dict:
    """Time ``fn`` (one warm-up call, then the median of ``repeats`` calls) and its peak memory.

    Returns:
        ``{"time_s", "first_s", "peak_MiB", "peak_reset", "output"}``: the median seconds per call, the seconds
        of the warm-up call, the calls' peak memory above what the process held before them (MiB), whether the
        CPU peak could be reset first, and the last call's return value.
    """
    import torch

    cuda = device.type == "cuda"
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    sync()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        reset = True
    else:
        reset = _reset_peak_rss()
        before = _status_mib("VmRSS") or 0.0
    start = time.perf_counter()
    output = fn()
    sync()
    first = time.perf_counter() - start
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        output = fn()
        sync()
        times.append(time.perf_counter() - start)
    if cuda:
        peak = (torch.cuda.max_memory_allocated() - before) / 2**20
    else:
        hwm = _status_mib("VmHWM") if reset else None
        peak = (hwm if hwm is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024) - before
    return {"time_s": statistics.median(times), "first_s": first, "peak_MiB": max(peak, 0.0), "peak_reset": reset,
            "output": output}


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


def append_section(path: Path, text: str) -> None:
    """Append a results section to the benchmarks page (created with its title when missing)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        path.write_text("# Benchmarks\n\nAppended by `make bench` (scripts/bench.py); newest last.\n")
    with open(path, "a") as f:
        f.write(text)


# ------------------------------------------------------------------------------------------ official sides
class OfficialError(RuntimeError):
    """The official network cannot run here (import failure, a configuration it does not have); one line."""


def _import_file(name: str, path: Path) -> object:
    """Import the Python file ``path`` as module ``name`` (a fresh module, not cached in ``sys.modules``)."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _psgan_official_fits(model, batch: Mapping) -> None:
    size = batch["image"].shape[-1]
    if size != 256 or model.hparams.width != 1:
        raise OfficialError(f"the official Generator is fixed at 256² and width 1 (its get_weight hard-codes 64² "
                            f"features), got data.size={size}, model.width={model.hparams.width}")


def _psgan_official_inputs(landmarks, regions):
    """One face in the official ``PreProcess.process`` format: region masks ``(3, 1, H, W)`` and the normalised
    relative positions ``(3, 136, H/4, W/4)``, from its ``(68, 2)`` landmarks and ``(3, H, W)`` regions."""
    import torch
    import torch.nn.functional as F

    from facezoo.methods.psgan.networks import relative_position_features

    size = regions.shape[-1]
    diff = relative_position_features(landmarks[None], size // 4, size)[0]
    masks = F.interpolate(regions[None], size=(size // 4, size // 4))[0]
    diff = diff[None] * masks[:, None]
    norm = diff.norm(dim=1, keepdim=True)
    return regions[:, None], diff / torch.where(norm == 0, torch.full_like(norm, 1e10), norm)


def psgan_official(checkout: Path, model, batch: Mapping) -> tuple[Callable, str]:
    """``psgan/net.py: Generator`` of a wtjiang98/PSGAN checkout with the module's generator weights.

    It is fed the official ``PreProcess.process`` output per image (region masks ``(3, 1, H, W)``, normalised
    relative positions ``(3, 136, H/4, W/4)``; computed before timing) and handles one image per call, so a
    batch of 8 is 8 calls. The official net.py imports ``load_state_dict_from_url`` and ``model_urls`` from
    ``torchvision.models.vgg``, which current torchvision no longer has (they serve only its VGG helper): when
    the plain import fails, those two names are set on torchvision's module (``torch.hub``'s function and
    ``{}``) and the import is retried; the note says so.
    """
    import torch

    from facezoo.methods.psgan.official import official_state_dict_from

    _psgan_official_fits(model, batch)
    sys.path.insert(0, str(checkout))  # net.py imports ops.spectral_norm and concern.track
    note = ("imported unmodified; one image per call on pre-processed inputs (region masks and relative positions "
            "computed before timing, which facezoo's predict_batch computes inside)")
    try:
        module = _import_file("psgan_official_net", checkout / "psgan" / "net.py")
    except ImportError as err:
        import torchvision.models.vgg as tv_vgg

        tv_vgg.load_state_dict_from_url = torch.hub.load_state_dict_from_url
        tv_vgg.model_urls = {}
        module = _import_file("psgan_official_net", checkout / "psgan" / "net.py")
        note += (f"; its plain import fails ({type(err).__name__}: {err}), so it was imported after setting "
                 "torchvision.models.vgg.load_state_dict_from_url / model_urls")
    official = module.Generator().to(batch["image"].device).eval()
    official.load_state_dict(official_state_dict_from(model.generator), strict=True)
    x, y = model.faces(batch)
    prepared = [(x.image[i:i + 1], y.image[i:i + 1], *_psgan_official_inputs(x.landmarks[i], x.regions[i]),
                 *_psgan_official_inputs(y.landmarks[i], y.regions[i])) for i in range(x.image.shape[0])]

    def forward():
        return torch.cat([official(c, s, mc, ms, dc, ds) for c, s, mc, dc, ms, ds in prepared])

    return forward, note


def psgan_official_train(checkout: Path, model, batch: Mapping) -> tuple[Callable, str]:
    """One iteration of the official training loop (``psgan/solver.py: Solver.train``) on the same triple.

    ``step()`` runs ``Solver.train`` over a one-batch loader for one epoch: D_A, D_B, then G with its adversarial,
    identity, histogram-matching (lips, skin, eyes; ``ops/histogram_matching.py`` matches on the CPU in Python),
    cycle and VGG16 terms, the official defaults of ``psgan/config.py`` (256², batch 1). The official files run
    unmodified; what stands in around them, all outside the timed arithmetic, is listed in the returned note.
    """
    import shutil
    import tempfile
    import types

    import torch
    import torchvision

    if batch["image"].shape[0] != 1:
        raise OfficialError("the official trainer runs batch 1 only (ops/histogram_loss.py squeezes the batch "
                            "dimension): run with --train-batch 1")
    _psgan_official_fits(model, batch)
    sys.path.insert(0, str(checkout))                             # it imports ops.*, concern.*, tools.*

    class CfgNode(dict):                                          # fvcore's config node, as far as config.py uses it
        __getattr__, __setattr__ = dict.__getitem__, dict.__setitem__

    package = types.ModuleType("psgan")                           # psgan/__init__.py imports the dlib face tools
    package.__path__ = [str(checkout / "psgan")]
    stubs = {"psgan": package, "psgan.preprocess": types.ModuleType("psgan.preprocess"),
             "torchgpipe": types.ModuleType("torchgpipe"), "tools.plot": types.ModuleType("tools.plot"),
             "fvcore": types.ModuleType("fvcore"), "fvcore.common": types.ModuleType("fvcore.common"),
             "fvcore.common.config": types.ModuleType("fvcore.common.config")}
    stubs["psgan.preprocess"].PreProcess = None                   # inference only
    stubs["torchgpipe"].GPipe = None                              # imported, never used
    stubs["fvcore.common.config"].CfgNode = CfgNode
    for name in ("plot", "tick", "flush"):                        # the loss plots (matplotlib is not installed)
        setattr(stubs["tools.plot"], name, lambda *args, **kwargs: None)
    saved = {name: sys.modules.get(name) for name in stubs}
    sys.modules.update(stubs)
    import torchvision.models.vgg as tv_vgg

    tv_vgg.model_urls = {"vgg16": "random"}                       # its VGG16 with random weights (no download)
    tv_vgg.load_state_dict_from_url = lambda url, progress=True: torchvision.models.vgg16().state_dict()
    try:
        config = importlib.import_module("psgan.config")._C
        solver_module = importlib.import_module("psgan.solver")
        config.LOG.LOG_PATH = tempfile.mkdtemp(prefix="facezoo-bench-psgan-official-")
        atexit.register(shutil.rmtree, config.LOG.LOG_PATH, ignore_errors=True)
        with _patched(torch.cuda, device_count=lambda: 1, is_available=lambda: False):  # it divides by the count
            solver = solver_module.Solver(config, device=str(batch["image"].device))
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module
    solver.criterionGAN.Tensor = torch.FloatTensor                # it was given torch.cuda.FloatTensor
    solver.vis_train = solver.save_models = lambda *args: None    # the first iteration's image and weight files
    solver.num_epochs, solver.num_epochs_decay = 1, 0
    x, y = model.faces(batch)
    masks_s, dist_s = _psgan_official_inputs(x.landmarks[0], x.regions[0])
    masks_r, dist_r = _psgan_official_inputs(y.landmarks[0], y.regions[0])
    solver.data_loader_train = [([x.image, masks_s[None], dist_s[None]], [y.image, masks_r[None], dist_r[None]])]

    def step():
        with _patched(torch.Tensor, cuda=lambda self, *args, **kwargs: self), contextlib.redirect_stdout(None):
            solver.train()                                        # histogram_matching ends with .cuda()
        return None

    note = ("`psgan/solver.py: Solver.train` for one iteration of a one-triple loader, the defaults of "
            "psgan/config.py; stubs for modules it imports but does not train with (psgan/__init__.py's dlib tools, "
            "torchgpipe, fvcore's config node, the matplotlib loss plots), its VGG16 with random weights (no "
            "download), torch.cuda.FloatTensor targets as CPU tensors, `.cuda()` as a no-op, and the first "
            "iteration's image and snapshot writes skipped")
    return step, note


@contextlib.contextmanager
def _patched(owner, **attributes):
    """Set attributes of ``owner`` for the ``with`` block, then restore them."""
    old = {name: getattr(owner, name) for name in attributes}
    for name, value in attributes.items():
        setattr(owner, name, value)
    try:
        yield
    finally:
        for name, value in old.items():
            setattr(owner, name, value)


def tpgan_official(checkout: Path, model, batch: Mapping) -> tuple[Callable, str]:
    """``network.py: Generator`` of an iwtw/pytorch-TP-GAN checkout with the module's generator weights.

    The authors' code is TensorFlow; this PyTorch port is what runs beside facezoo, and only facezoo's port
    architecture (``model=tpgan_iwtw``) has its function. It is imported under the PyTorch 0.3 behaviour it was
    written for (``scripts/fixtures/make_tpgan_iwtw.py: port_runtime``: bilinear up-sampling on the corner grid,
    the ``init.kaiming_normal`` alias), kept for the rest of the process, and run in eval mode without dropout,
    fed what facezoo's ``predict_batch`` computes inside (the image's 1/2 and 1/4 copies, the four part patches
    around its landmarks, the fixed noise) computed before timing.
    """
    import torch.nn.functional as F

    from facezoo.methods.tpgan.module import five_points, part_centers
    from facezoo.methods.tpgan.networks import ARCHS, PART_NAMES
    from facezoo.methods.tpgan.official import to_official_state_dict

    g, size = model.generator, batch["image"].shape[-1]
    if g.arch != ARCHS["iwtw"] or size != 128 or model.hparams.width != 1 or not g.use_local:
        raise OfficialError(f"the port's Generator is fixed at 128², width 1, with its own architecture: run "
                            f"model=tpgan_iwtw (got data.size={size}, model.width={model.hparams.width}, "
                            f"model.arch {'iwtw' if g.arch == ARCHS['iwtw'] else 'not iwtw'})")
    fixture = _import_file("facezoo_make_tpgan_iwtw", Path(__file__).parent / "fixtures" / "make_tpgan_iwtw.py")
    runtime = fixture.port_runtime(checkout)
    network = runtime.__enter__()
    atexit.register(runtime.__exit__, None, None, None)  # open until the process ends: closing it restores PyTorch
    official = network.Generator(zdim=model.hparams.zdim, num_classes=model.hparams.num_classes,
                                 use_batchnorm=model.hparams.norm == "batch")
    official.load_state_dict(to_official_state_dict(g), strict=True)
    official = official.to(batch["image"].device).eval()
    image = batch["image"]
    patches = model.crop_parts(image, part_centers(five_points(batch)))
    inputs = (image, *(F.interpolate(image, size=(size // k, size // k), mode="bilinear", align_corners=True)
                       for k in (2, 4)), *(patches[name] for name in PART_NAMES), model._fixed_noise(image.shape[0]))
    return (lambda: official(*inputs, use_dropout=False)[0]), (
        "imported unmodified under port_runtime's PyTorch 0.3 behaviour (scripts/fixtures/make_tpgan_iwtw.py); fed "
        "the 1/2 and 1/4 images, part patches and noise computed before timing (facezoo's predict_batch computes "
        "them inside)")


def gannotation_official(checkout: Path, model, batch: Mapping) -> tuple[Callable, str]:
    """``model.py: Generator`` of an ESanchezLozano/GANnotation checkout with the module's generator weights.

    Built with the module's channels, heatmap count and residual blocks, loaded strictly through
    ``official_state_dict_from`` (``module.`` prefix stripped, as its ``GANnotation.py`` does); its forward
    takes ``cat(image, heatmaps)`` and returns the image, fed exactly the inputs ``predict_batch`` gives the
    facezoo generator (heatmaps computed before timing).
    """
    import torch

    from facezoo.methods.gannotation.official import official_state_dict_from

    sys.path.insert(0, str(checkout))
    module = _import_file("gannotation_official_model", checkout / "model.py")
    generator = model.generator
    official = module.Generator(conv_dim=generator.stem.conv.out_channels, c_dim=generator.num_points,
                                repeat_num=len(generator.bottleneck)).to(batch["image"].device).eval()
    state = official_state_dict_from(generator)["state_dict"]
    official.load_state_dict({k.removeprefix("module."): v for k, v in state.items()}, strict=True)
    image = batch["image"]
    inputs = torch.cat([image, model.heatmaps(batch["target_landmarks"], image.shape[-1])], 1)
    return (lambda: official(inputs)), ("imported unmodified; fed cat(image, heatmaps) with the heatmaps computed "
                                        "before timing (facezoo's predict_batch encodes them inside)")


def maskgan_official(checkout: Path, model, batch: Mapping) -> tuple[Callable, str]:
    """``MaskGAN_demo/models/networks.py: GlobalGenerator`` of a switchablenorms/CelebAMask-HQ checkout (the
    dense mapping network) with the module's generator weights.

    Built as the demo's ``define_G`` builds it (instance norm without affine) with the module's channels,
    downsamplings and residual blocks, loaded strictly through ``to_official_state_dict``, and fed what the demo's
    ``Pix2PixHDModel.inference`` feeds it: the edited and the source masks one-hot (``scatter_``, computed before
    timing; facezoo's ``predict_batch`` one-hots inside) and the source image.
    """
    import functools

    import torch
    from torch import nn

    from facezoo.methods.maskgan.official import to_official_state_dict

    demo = checkout / "MaskGAN_demo" if (checkout / "MaskGAN_demo").is_dir() else checkout
    module = _import_file("maskgan_demo_networks", demo / "models" / "networks.py")
    g = model.generator
    ngf = next(m for m in g.backbone.stem.modules() if isinstance(m, nn.Conv2d)).out_channels
    norm = functools.partial(nn.InstanceNorm2d, affine=False)
    official = module.GlobalGenerator(g.num_labels, 3, ngf, g.n_downsample, len(g.backbone.blocks), norm)
    try:
        official.load_state_dict(to_official_state_dict(g), strict=True)
    except RuntimeError as err:     # the demo's label / style encoders have fixed widths and depth
        raise OfficialError(f"the demo's GlobalGenerator cannot take this configuration's weights "
                            f"({' '.join(str(err).split())[:160]})") from None
    official = official.to(batch["image"].device).eval()

    def one_hot(labels):
        b, h, w = labels.shape
        return torch.zeros(b, g.num_labels, h, w, device=labels.device).scatter_(1, labels[:, None], 1.0)

    edited, source = one_hot(batch.get("target_mask", batch["mask"])), one_hot(batch["mask"])
    return (lambda: official(edited, source, batch["image"])), ("imported unmodified; fed one-hot masks computed "
                                                                "before timing (facezoo's predict_batch one-hots "
                                                                "inside)")


def maskgan_stage1_stand_in(cfg, folder: Path) -> list[str]:
    """Stage 2 loads the stage-1 MaskVAE from a file (``model.frozen.mask_vae.build.path``). When that file is
    absent, a randomly initialised MaskVAE of the configured architecture (seed 0), saved in the demo's format in
    ``folder``, stands in for it: the benchmark times the networks, not what they learnt."""
    import torch

    from facezoo.methods.maskgan.networks import MaskVAE
    from facezoo.methods.maskgan.official import to_official_state_dict

    build = cfg.model.frozen.mask_vae.build
    if Path(build.path).is_file():
        return []
    torch.manual_seed(0)
    vae = MaskVAE(ngf=build.ngf, ndf=build.ndf, latent_dim=build.latent_dim, resolution=cfg.data.size)
    path = folder / "mask_vae_stand_in.pth"
    torch.save(to_official_state_dict(vae), path)
    return [f"model.frozen.mask_vae.build.path={path}"]


def psgan_vgg16_stand_in(cfg, folder: Path) -> list[str]:
    """PSGAN's perceptual term needs torchvision's ImageNet VGG16 (``model.frozen.perceptual_loss``); when it is
    not found, a randomly initialised VGG16 (seed 0) in torchvision's format stands in, so that the training step
    computes the term, as the official one does with its (here also random) VGG16."""
    import torch
    import torchvision

    from facezoo.nets.weights import WeightsNotFoundError, resolve_weights

    try:
        resolve_weights("vgg16")
        return []
    except WeightsNotFoundError:
        pass
    torch.manual_seed(0)
    path = folder / "vgg16_stand_in.pth"                          # its `features` (all the loss keeps), 59 MB
    features = torchvision.models.vgg.make_layers(torchvision.models.vgg.cfgs["D"])
    torch.save({f"features.{k}": v for k, v in features.state_dict().items()}, path)
    return [f"model.frozen.perceptual_loss.build.weights={path}"]


def psp_decoder_stand_in(cfg, folder: Path) -> list[str]:
    """pSp decodes with a StyleGAN2 file (``model.decoder``, by default the StyleGAN2 CPU preset's export). When that
    file is absent, the preset's generator with random weights (seed 0) at ``data.size``, written in rosinality's
    format in ``folder``, stands in for it."""
    import torch

    from facezoo.config import build_model
    from facezoo.nets.stylegan2 import save_rosinality

    if Path(cfg.model.decoder).is_file():
        return []
    torch.manual_seed(0)
    g_ema = build_model("experiment=stylegan2_cpu", f"data.size={cfg.data.size}").generator_ema
    path = folder / "stylegan2_stand_in.pt"
    save_rosinality(path, g_ema, g_ema.mean_latent(1000)[0])
    return [f"model.decoder={path}"]


# ----------------------------------------------------------------------------------------------- registry
def predict(model, batch: Mapping):
    """The default inference call: ``model.predict_batch(batch)``."""
    return model.predict_batch(batch)


@dataclass(frozen=True)
class Official:
    """The official side of a method.

    Attributes:
        repo: the GitHub repository a ``--official`` checkout is of.
        marker: a file every checkout has (checked before running).
        label: what runs, for the table (``"psgan/net.py: Generator"``).
        build: ``(checkout, model, batch) -> (forward, note)``; ``forward()`` returns the official output for
            the batch, comparable with the method's inference output; raises :class:`OfficialError`.
        train: ``(checkout, model, batch) -> (step, note)`` where the official code has a trainer: ``step()`` runs
            one iteration of its training loop on the batch; ``train_label`` says what runs.
        model: the model config whose network the official one computes, when it is not ``model=<method>``
            (TP-GAN: the port's architecture); ``--official`` benchmarks it in place of ``model=<method>``.
    """

    repo: str
    marker: str
    label: str
    build: Callable[[Path, object, Mapping], tuple[Callable[[], object], str]]
    train: Callable[[Path, object, Mapping], tuple[Callable[[], object], str]] | None = None
    train_label: str = ""
    model: str | None = None


def _amm(mode: str) -> Callable:
    def set_mode(model) -> None:
        from facezoo.methods.psgan.networks import AMM

        model.generator.amm = AMM(mode)

    return set_mode


@dataclass(frozen=True)
class BenchSpec:
    """What a method contributes to the benchmark: only what differs between methods.

    Attributes:
        title: the method's name in tables.
        inference: ``(model, batch) -> output image`` (default ``model.predict_batch``); ``inference_label``
            says what it is.
        official: the official network to run beside it, or None (then a note says there is none).
        no_official: the note's reason when ``official`` is None.
        variants: alternative implementations, ``{label: fn(model) -> None}`` changing the built module in
            place, measured beside the inference rows with ``--variants``.
        overrides: Hydra overrides the benchmark puts before the command line's.
        stand_ins: ``(composed cfg, temporary folder) -> overrides``: weight files that are absent here (an earlier
            training stage's, a loss network's), written into the folder with random weights, and the overrides
            that point the config at them.
        train_batch: the batch of the training-step rows (``--train-batch`` overrides it).

    The inputs are the first samples of the config's training split, and the training step is every phase of
    the module on one batch, for every method.
    """

    title: str
    inference: Callable[[object, Mapping], object] = predict
    inference_label: str = "predict_batch"
    official: Official | None = None
    no_official: str = ""
    variants: Mapping[str, Callable[[object], None]] = field(default_factory=dict)
    overrides: Sequence[str] = ()
    stand_ins: Callable[[object, Path], list[str]] | None = None
    train_batch: int = 8


BF16_WEIGHTS = "fast path (`fast=true`: bf16 weights)"


def _bf16_generator(model) -> None:
    from facezoo.nets.precision import bf16_fast_path

    bf16_fast_path(model.generator)


#: method (``facezoo.methods.<method>``) → what its benchmark needs beyond the default (:func:`spec_of`): an
#: official side, another inference call, variants. A method without an entry gets the default.
BENCHES: dict[str, BenchSpec] = {
    "tpgan": BenchSpec(
        "TP-GAN", official=Official("iwtw/pytorch-TP-GAN", "network.py", "network.py: Generator (the PyTorch port)",
                                    tpgan_official, model="tpgan_iwtw"),
        variants={BF16_WEIGHTS: _bf16_generator}),
    "psgan": BenchSpec(
        "PSGAN", official=Official("wtjiang98/PSGAN", "psgan/net.py", "psgan/net.py: Generator", psgan_official,
                                   psgan_official_train, "psgan/solver.py: Solver.train"),
        train_batch=1,  # the official trainer's (batch 8 at 256², width 1 does not fit in 24 GB here: 19 GB, killed)
        stand_ins=psgan_vgg16_stand_in,
        variants={"fast path (`fast=true`: bf16 MDNet/MANet, fp32 AMM)": lambda model: model.generator.fast_path(),
                  "AMM chunked": _amm("chunked"), "AMM dense (the official formulation)": _amm("dense")}),
    "gannotation": BenchSpec(
        "GANnotation",
        official=Official("ESanchezLozano/GANnotation", "model.py", "model.py: Generator", gannotation_official),
        variants={BF16_WEIGHTS: _bf16_generator}),
    "psp": BenchSpec("pSp", no_official="none in scripts/bench.py: scripts/bench_psp.py runs pSp beside the official "
                            "models/psp.py", stand_ins=psp_decoder_stand_in),
    "maskgan": BenchSpec(
        "MaskGAN",
        official=Official("switchablenorms/CelebAMask-HQ", "MaskGAN_demo/models/networks.py",
                          "MaskGAN_demo/models/networks.py: GlobalGenerator", maskgan_official),
        variants={BF16_WEIGHTS: lambda model: model.generator.fast_path()},
        stand_ins=maskgan_stage1_stand_in),
}




def spec_of(method: str, target: str = "") -> BenchSpec:
    """:data:`BENCHES` ``[method]``, or the default: ``predict_batch``, titled by the module class, no official side."""
    if method in BENCHES:
        return BENCHES[method]
    return BenchSpec(target.rsplit(".", 1)[-1] or method, no_official="none in scripts/bench.py for this method")


def methods() -> list[str]:
    """Every method with a model config named after it (``conf/model/<method>.yaml``; ``make bench`` runs these)."""
    from facezoo.checkpoints import method_of
    from facezoo.config import config_names

    return [m for m in config_names("model") if method_of(_compose([f"model={m}"]).model._target_) == m]


# ---------------------------------------------------------------------------------------------------- rows
_COMPOSED: dict = {}


def _compose(overrides: Sequence[str]):
    """``facezoo.config.compose("train", overrides)``, composed once per distinct list (a copy each call)."""
    from facezoo.config import compose

    key = tuple(overrides)
    if key not in _COMPOSED:
        _COMPOSED[key] = compose("train", list(overrides))
    return copy.deepcopy(_COMPOSED[key])


def method_of_overrides(overrides: Sequence[str]) -> str:
    """The method of the composed ``model`` config (``facezoo.methods.<method>``), or ``"renderer"``."""
    if f"model={RENDERER}" in overrides:
        return RENDERER
    from facezoo.checkpoints import method_of

    return method_of(_compose(overrides).model._target_)


def build(overrides: Sequence[str], batch_size: int, device):
    """``(cfg, model, batch)``: the module of the composed config (seed 0) and ``batch_size`` training samples."""
    import torch
    from hydra.utils import instantiate

    cfg = _compose(overrides)
    torch.manual_seed(0)
    model = instantiate(cfg.model, _convert_="all").to(device)
    dataset = instantiate(cfg.data, _convert_="all").dataset("train")
    samples = [dataset[i % len(dataset)] for i in range(batch_size)]
    batch = torch.utils.data.default_collate(samples)
    batch = {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}
    return cfg, model, batch


def _no_tf32() -> None:
    import torch

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False


def run_inference(row: dict) -> dict:
    """A ``facezoo`` / ``variant`` / ``official`` inference row."""
    import torch

    device = torch.device(row["device"])
    cfg, model, batch = build(row["overrides"], row["batch"], device)
    spec = spec_of(row["method"], cfg.model._target_)
    model.eval()
    if row["kind"] == "variant":
        with torch.no_grad():
            fp32 = spec.inference(model, batch)
        spec.variants[row["variant"]](model)
    if row["kind"] == "official":
        try:
            forward, note = spec.official.build(Path(row["official"]), model, batch)
        except OfficialError as err:
            return {"error": str(err)}
    else:
        forward, note = (lambda: spec.inference(model, batch)), None
    with torch.no_grad():
        result = measure(forward, row["repeats"], device)
        output = result.pop("output")
        if row["kind"] == "official":
            result["max_abs_diff"] = (output - spec.inference(model, batch)).abs().max().item()
        if row["kind"] == "variant":         # images in [-1, 1]: PSNR with a peak-to-peak of 2
            mse = (output.float() - fp32).pow(2).mean().item()
            result["max_abs_diff"] = (output.float() - fp32).abs().max().item()
            result["psnr_vs_fp32"] = 10 * math.log10(4 / mse) if mse > 0 else math.inf
    return {**result, "note": note}


def run_train(row: dict) -> dict:
    """The ``train`` row: every phase of the module on one batch, inside a one-batch Lightning Trainer."""
    import logging

    import lightning as L
    import torch

    device = torch.device(row["device"])
    _, model, batch = build(row["overrides"], row["batch"], device)
    model.train()
    if row.get("compile"):
        from facezoo.train import compile_networks

        compile_networks(model)
    phases = [p for p in model.phases if p.at]  # a phase with at=() never runs
    result: dict = {}

    def all_phases():
        model.seed_step()
        step = model.prepare_batch(batch)
        optimizers = model.named_optimizers()
        for phase in phases:
            for _ in range(phase.repeat):
                model.run_phase(phase, step, optimizers)

    def training_step(batch_, batch_idx=0):  # the whole measurement runs inside the Trainer's first step
        result.update(measure(all_phases, row["repeats"], device))
        result.pop("output")

    model.training_step = training_step
    for name in ("lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)
    trainer = L.Trainer(accelerator=device.type, devices=1, max_epochs=1, limit_train_batches=1, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                        num_sanity_val_steps=0, limit_val_batches=0, callbacks=[])
    loader = torch.utils.data.DataLoader([{k: v.cpu() if torch.is_tensor(v) else v for k, v in batch.items()}],
                                         batch_size=None)
    trainer.fit(model, train_dataloaders=loader)
    if "time_s" not in result:
        raise RuntimeError("the Trainer did not run the training step")
    result["phases"] = [p.name + (f"×{p.repeat}" if p.repeat > 1 else "") for p in phases]
    result["schedule"] = [f"{p.name} on {len(p.at)} of every {p.every} batches" for p in phases if p.every > 1]
    result["terms_off"] = dict(model.terms_off)
    result["params_M"] = {name: sum(p.numel() for p in child.parameters()) / 1e6
                          for name, child in model.named_children()
                          if f"{name}." not in model.frozen_prefixes and any(True for _ in child.parameters())}
    return result


def run_official_train(row: dict) -> dict:
    """The ``official training step`` row: one iteration of the official training loop on the same batch."""
    import torch

    device = torch.device(row["device"])
    cfg, model, batch = build(row["overrides"], row["batch"], device)
    spec = spec_of(row["method"], cfg.model._target_)
    try:
        step, note = spec.official.train(Path(row["official"]), model, batch)
    except OfficialError as err:
        return {"error": str(err)}
    result = measure(step, row["repeats"], device)
    result.pop("output")
    return {**result, "note": note}


def run_loop(row: dict) -> dict:
    """The ``loop`` row: the config's own training loop (its DataLoader, workers, batch size and phase schedule)
    for ``row["warmup"] + row["repeats"]`` batches in a Lightning Trainer; the median time per batch and the
    share of the measured batches' time spent between two steps, i.e. waiting for the next batch."""
    import logging

    import lightning as L
    import torch

    from facezoo.config import instantiate_data, instantiate_model

    class BatchTimer(L.Callback):
        """Per batch after the warm-up: the seconds since the previous batch ended (fetching this one, or
        waiting for a worker's) and the seconds of the step itself."""

        def __init__(self):
            self.waits, self.steps, self.end, self.start = [], [], None, None

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            self.start = time.perf_counter()
            if batch_idx >= row["warmup"]:
                self.waits.append(self.start - self.end)

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            self.end = time.perf_counter()
            if batch_idx >= row["warmup"]:
                self.steps.append(self.end - self.start)

    cfg = _compose(row["overrides"])
    torch.manual_seed(0)
    model, datamodule = instantiate_model(cfg.model), instantiate_data(cfg.data)
    timer = BatchTimer()
    for name in ("lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)
    trainer = L.Trainer(accelerator=row["device"], devices=1, max_epochs=1,
                        limit_train_batches=row["warmup"] + row["repeats"], logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                        num_sanity_val_steps=0, limit_val_batches=0, callbacks=[timer])
    trainer.fit(model, datamodule=datamodule)
    if len(timer.steps) < row["repeats"]:
        raise RuntimeError(f"the loop ran {len(timer.steps)} measured batches, not {row['repeats']}")
    batch_times = [w + s for w, s in zip(timer.waits, timer.steps)]
    return {"time_s": statistics.median(batch_times), "peak_MiB": None,
            "data_wait_share": sum(timer.waits) / sum(batch_times), "wait_s": statistics.median(timer.waits)}


def run_renderer(row: dict) -> dict:
    """One synthetic view: ``row["samples"]`` samples per call on one torch thread."""
    import torch
    from hydra.utils import instantiate

    torch.set_num_threads(1)
    cfg = _compose([f"data={row['data']}", *row["overrides"]])
    dataset = instantiate(cfg.data, _convert_="all").dataset("train")
    counter = iter(range(10**9))
    n = row["samples"]
    result = measure(lambda: [dataset[next(counter) % len(dataset)] for _ in range(n)], row["repeats"],
                     torch.device("cpu"))
    result.pop("output")
    return {**result, "size": int(cfg.data.size), "view": type(dataset).__name__}


def run_row(row: dict) -> dict:
    """Measure one row in this process; errors come back as ``{"error": ...}``."""
    os.environ.setdefault("FACEZOO_OFFLINE", "1")
    _no_tf32()
    try:
        if row["kind"] == "renderer":
            return run_renderer(row)
        if row["kind"] == "loop":
            return run_loop(row)
        if row["kind"] == "official_train":
            return run_official_train(row)
        return run_train(row) if row["kind"] == "train" else run_inference(row)
    except Exception as err:  # reported in the table
        if row.get("raise"):
            raise
        while err.__cause__ is not None:  # the root cause (Hydra wraps a constructor's error)
            err = err.__cause__
        return {"error": f"{type(err).__name__}: {str(err).strip().splitlines()[0] if str(err).strip() else ''}"}


def spawn_row(row: dict) -> dict:
    """Measure one row in a fresh interpreter (``--row``), so that its peak memory belongs to it alone."""
    env = {**os.environ, "FACEZOO_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, __file__, "--row", json.dumps(row)], capture_output=True, text=True,
                          env=env)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    tail = " ".join((proc.stderr or proc.stdout).strip().splitlines()[-1:])
    return {"error": f"exit {proc.returncode}: {tail}"}


# -------------------------------------------------------------------------------------------------- tables
def _f(value, fmt: str = "{:.3g}") -> str:
    return "–" if value is None else fmt.format(value)


def _seconds(t: float) -> str:
    return f"{t:.3f}" if t < 10 else f"{t:.1f}"


def _rate(r: float) -> str:
    return f"{r:.3g}" if r < 100 else f"{r:.0f}"


def method_table(title: str, rows: list[tuple[str, dict, dict]]) -> list[str]:
    """Markdown lines: one line per ``(label, row, result)``; facezoo rows get the ratios to the official row
    of their batch."""
    head = (f"| {title} | batch | median time (s) | images/s | peak memory (MiB) | time / official "
            f"| memory / official | max abs diff vs official |")
    lines = [head, "|---|---|---|---|---|---|---|---|"]
    def task(row):  # a facezoo row is compared with the official row of the same task, batch and config
        training = row["kind"] in ("train", "official_train")
        return "train" if training else "inference", row["batch"], tuple(row["overrides"])

    official = {task(row): res for _, row, res in rows
                if row["kind"] in ("official", "official_train") and "error" not in res}
    for label, row, res in rows:
        b = row["batch"]
        if "error" in res:
            lines.append(f"| {label} | {b} | – | – | – | – | – | failed: {res['error']} |")
            continue
        o = official.get(task(row)) if row["kind"] in ("facezoo", "variant", "train") else None
        ratio_t = _f(res["time_s"] / o["time_s"], "{:.2f}") if o else "–"
        ratio_m = _f(res["peak_MiB"] / o["peak_MiB"], "{:.2f}") if o and o["peak_MiB"] >= 1 else "–"
        diff = _f(o.get("max_abs_diff"), "{:.1e}") if o and row["kind"] == "facezoo" else "–"
        if row["kind"] == "variant" and "psnr_vs_fp32" in res:
            diff = f"{res['max_abs_diff']:.1e} to facezoo fp32 (PSNR {res['psnr_vs_fp32']:.1f} dB)"
        if "data_wait_share" in res:
            diff = f"waiting for data {100 * res['data_wait_share']:.0f}% of the time"
        if row.get("compile"):
            eager = next((r for _, e, r in rows if e["kind"] == "train" and e["overrides"] == row["overrides"]
                          and not e.get("compile") and "time_s" in r), None)
            speed = f"{eager['time_s'] / res['time_s']:.2f}x the eager step's speed; " if eager else ""
            diff = f"{speed}first step (compiling) {_seconds(res['first_s'])} s"
        lines.append(f"| {label} | {b} | {_seconds(res['time_s'])} | {_rate(b / res['time_s'])} | "
                     f"{_f(res['peak_MiB'], '{:.0f}')} | {ratio_t} | {ratio_m} | {diff} |")
    return lines


def bench_method(method: str, args, overrides: list[str]) -> str:
    """Run the rows of one method; the Markdown section (without its heading)."""
    spec = spec_of(method, _compose(overrides).model._target_)
    if args.official and spec.official and spec.official.model and f"model={method}" in overrides:
        overrides = [f"model={spec.official.model}" if o == f"model={method}" else o for o in overrides]
    overrides = [*spec.overrides, *overrides]
    with tempfile.TemporaryDirectory(prefix="facezoo-bench-") as folder:
        stand_ins = spec.stand_ins(_compose(overrides), Path(folder)) if spec.stand_ins else []
        return _bench_method(spec, method, args, [*overrides, *stand_ins], stand_ins)


def _bench_method(spec: BenchSpec, method: str, args, overrides: list[str], stand_ins: list[str]) -> str:
    cfg = _compose(overrides)
    run = run_row if args.no_isolate else spawn_row
    common = {"method": method, "overrides": overrides, "device": args.device, "raise": args.raise_errors}
    official = str(args.official) if args.official else None
    planned: list[tuple[str, dict]] = []
    for b in args.batches:
        planned.append((f"facezoo inference (`{spec.inference_label}`)",
                        {**common, "kind": "facezoo", "batch": b, "repeats": args.repeats}))
        if args.variants:
            planned += [(f"facezoo inference, {name}", {**common, "kind": "variant", "variant": name, "batch": b,
                                                        "repeats": args.repeats}) for name in spec.variants]
        if official and spec.official:
            planned.append((f"official inference (`{spec.official.label}`)",
                            {**common, "kind": "official", "official": official, "batch": b,
                             "repeats": args.repeats}))
    from facezoo.config import CONF_DIR

    preset = f"{method}_cpu"
    if args.preset and (CONF_DIR / "experiment" / f"{preset}.yaml").is_file():
        preset_cfg = _compose([*overrides, f"experiment={preset}"])
        width = preset_cfg.model.get("width", None)
        preset_step = {**common, "overrides": [*overrides, f"experiment={preset}"], "kind": "train",
                       "batch": args.train_batch or 8, "repeats": args.train_repeats}
        planned.append((f"facezoo training step at the CPU preset (`experiment={preset}`: {preset_cfg.data.size}²"
                        + (f", width {width:g}" if width is not None else "") + ")", preset_step))
        if args.compile:
            planned.append(("facezoo training step at the CPU preset, `compile=true`",
                            {**preset_step, "compile": True}))
        workers = preset_cfg.data.get("num_workers", 0)
        planned.append((f"facezoo training loop at the CPU preset (its DataLoader: {workers} worker"
                        f"{'' if workers == 1 else 's'}, batches as scheduled)",
                        {**common, "overrides": [*overrides, f"experiment={preset}"], "kind": "loop",
                         "batch": int(preset_cfg.data.batch_size), "warmup": 2, "repeats": args.loop_batches}))
    train_batch = args.train_batch or spec.train_batch
    planned.append(("facezoo training step", {**common, "kind": "train", "batch": train_batch,
                                              "repeats": args.train_repeats}))
    if official and spec.official and spec.official.train:
        planned.append((f"official training step (`{spec.official.train_label}`)",
                        {**common, "kind": "official_train", "official": official, "batch": train_batch,
                         "repeats": args.train_repeats}))
    rows = []
    for label, row in planned:
        result = run(row)
        print(json.dumps({"row": label, "batch": row["batch"], **result}), file=sys.stderr, flush=True)
        rows.append((label, row, result))

    at = next(i for i, (label, _, _) in enumerate(rows) if label == "facezoo training step")
    train = rows[at][2]
    if "phases" in train:
        rows[at] = (f"facezoo training step ({' → '.join(train['phases'])})", rows[at][1], train)
    size, width = cfg.data.size, cfg.model.get("width", None)
    desc = f"{spec.title} {size}²" + (f", width {width:g}" if width is not None else "")
    memory = ("torch.cuda.max_memory_allocated" if args.device == "cuda" else
              "peak resident memory (VmHWM, reset before the row)")
    isolation = ("each row in its own process" if not args.no_isolate else
                 "all rows in one process (--no-isolate: a row may reuse memory an earlier one freed)")
    params = ", ".join(f"{k} {v:.2f} M" for k, v in train.get("params_M", {}).items())
    text = [f"`{' '.join(overrides)}` (`facezoo.config.compose(\"train\", ...)`) → `{cfg.model._target_}` at "
            f"{size}²" + (f", width {width:g}" if width is not None else "") + f"; fp32 (TF32 off), device "
            f"{args.device}" + (f"; parameters: {params}" if params else "") + ".",
            f"Inference = `{spec.inference_label}` in eval mode under no_grad; training step = every phase of the "
            f"module on one batch in a one-batch Lightning Trainer (optimizer state included in its memory). "
            f"Median of {args.repeats} calls ({args.train_repeats} for the training step) after one warm-up; "
            f"images/s = batch / median time; peak memory = the calls' {memory} above what the process held "
            f"before them, {isolation}.", ""]
    text += method_table(desc, rows)
    notes = []
    if stand_ins:
        notes.append("Stand-ins for weight files absent here (random weights): "
                     + ", ".join(f"`{o}`" for o in stand_ins) + ".")
    if train.get("terms_off"):
        notes.append("Loss terms off in the training step: " + "; ".join(f"`{k}` ({v})" for k, v in
                                                                          train["terms_off"].items()) + ".")
    if train.get("schedule"):
        notes.append("The training step runs every phase once; in training " + ", ".join(train["schedule"])
                     + ", so an average batch costs less.")
    if spec.official is None:
        notes.append(f"Official rows: {spec.no_official}" + (" (--official ignored)." if official else "."))
    elif not official:
        notes.append(f"Official rows skipped: no `--official PATH` (a checkout of github.com/{spec.official.repo}; "
                     f"`make bench` takes it from FACEZOO_OFFICIAL_{method.upper()} or OFFICIAL_DIR/{method}).")
    else:
        found = sorted({res["note"] for label, row, res in rows
                        if row["kind"] in ("official", "official_train") and res.get("note")})
        commit = _git_commit(Path(official))
        notes.append(f"Official: `{spec.official.label}` of github.com/{spec.official.repo}"
                     + (f" @ {commit}" if commit else "") + f" ({official}), loaded with the facezoo module's "
                     f"weights, same inputs in its format; " + "; ".join(found or ["–"]) + ".")
    if any(res.get("peak_reset") is False for _, _, res in rows):
        notes.append("/proc/self/clear_refs was not writable: CPU peaks may include the set-up's high-water mark.")
    return "\n".join(text + [""] + notes) + "\n"


def bench_renderer(args, overrides: list[str]) -> str:
    """Run one row per synthetic view; the Markdown section (without its heading)."""
    from facezoo.config import config_names

    run = run_row if args.no_isolate else spawn_row
    overrides = [o for o in overrides if o != f"model={RENDERER}"]
    if not any(o.startswith("data.size=") for o in overrides):
        overrides.append("data.size=128")
    lines = ["| synthetic view, 1 torch thread | size | samples per call | median time (s) | samples/s "
             "| peak memory (MiB) |", "|---|---|---|---|---|---|"]
    for data in (n for n in config_names("data") if n.startswith("synthetic_")):
        row = {"kind": "renderer", "data": data, "overrides": overrides, "samples": args.renderer_samples,
               "repeats": args.repeats, "raise": args.raise_errors}
        res = run(row)
        print(json.dumps({"row": data, **res}), file=sys.stderr, flush=True)
        if "error" in res:
            lines.append(f"| `data={data}` | – | {args.renderer_samples} | – | – | failed: {res['error']} |")
            continue
        lines.append(f"| `data={data}` ({res['view']}) | {res['size']} | {args.renderer_samples} | "
                     f"{_seconds(res['time_s'])} | {_rate(args.renderer_samples / res['time_s'])} | "
                     f"{res['peak_MiB']:.0f} |")
    head = (f"Synthetic renderers (`facezoo.data.synthetic`, train split), one torch thread. Median of "
            f"{args.repeats} calls after one warm-up; peak memory = the calls' peak resident memory above what the "
            f"process held before them" + (" (all views in one process)." if args.no_isolate else
                                           ", each view in its own process."))
    return head + "\n\n" + "\n".join(lines) + "\n"


def _git_commit(path: Path) -> str | None:
    """The short commit of the checkout ``path`` when it is the top of a git work tree, else None."""
    try:
        out = subprocess.run(["git", "-C", str(path), "rev-parse", "--show-toplevel", "--short", "HEAD"],
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    lines = out.stdout.split()
    if out.returncode or len(lines) != 2 or Path(lines[0]).resolve() != path.resolve():
        return None
    return lines[1]


# ---------------------------------------------------------------------------------------------------- main
def parse_args(argv: Sequence[str] | None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("overrides", nargs="*", help="model=<name> (or renderer) and Hydra overrides, e.g. data.size=64")
    p.add_argument("--official", type=Path, help="a checkout of the method's official repository (read at run time)")
    p.add_argument("--append", type=Path, help="Markdown file to append the section to")
    p.add_argument("--repeats", type=int, default=3, help="timed calls per inference row (after one warm-up)")
    p.add_argument("--train-repeats", type=int, help="timed training steps (default: --repeats)")
    p.add_argument("--batches", default="1,8", help="comma-separated inference batch sizes")
    p.add_argument("--train-batch", type=int, help="batch of the training-step rows (default: the method's "
                                                   "BenchSpec.train_batch, 8 unless its official trainer's differs)")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--variants", action="store_true", help="also measure the method's alternative implementations")
    p.add_argument("--preset", action="store_true",
                   help="also measure the training step at the method's CPU preset (experiment=<method>_cpu)")
    p.add_argument("--loop-batches", type=int, default=10,
                   help="measured batches of the preset's training loop (--preset; after 2 warm-up batches)")
    p.add_argument("--compile", action="store_true",
                   help="with --preset: also the preset's training step with compile=true (torch.compile; the "
                        "warm-up step compiles)")
    p.add_argument("--renderer-samples", type=int, default=100, help="samples per call of the renderer rows")
    p.add_argument("--no-isolate", action="store_true", help="run every row in this process (quick, memory less exact)")
    p.add_argument("--raise-errors", action="store_true", help="raise a failing row's exception instead of "
                                                                "reporting it in the table")
    p.add_argument("--list", action="store_true", help="print the methods of BENCHES and exit")
    p.add_argument("--row", help=argparse.SUPPRESS)
    args = p.parse_intermixed_args(argv)
    args.batches = [int(b) for b in str(args.batches).split(",") if b]
    args.train_repeats = args.repeats if args.train_repeats is None else args.train_repeats
    counts = (args.repeats, args.train_repeats, args.train_batch or 1, args.loop_batches, *args.batches)
    if not args.batches or min(counts) < 1:
        p.error("--repeats, --train-repeats, --batches, --train-batch and --loop-batches must be >= 1")
    bad = [o for o in args.overrides if "=" not in o]
    if bad:
        p.error(f"not a key=value override: {bad[0]!r}")
    return args


def main(argv: Sequence[str] | None = None) -> str | None:
    """Run the benchmark of ``model=<name>``; returns the Markdown section (also printed / appended)."""
    args = parse_args(argv)
    if args.row:
        print("RESULT " + json.dumps(run_row(json.loads(args.row))))
        return None
    if args.list:
        print("\n".join(methods()))
        return None
    if not any(o.startswith(("model=", "experiment=")) for o in args.overrides):
        raise SystemExit(f"name a method: model=<name> (a conf/model config, or {RENDERER})")
    os.environ.setdefault("FACEZOO_OFFLINE", "1")
    method = method_of_overrides(args.overrides)
    spec = BENCHES.get(method)
    if args.official is not None and spec is not None and spec.official is not None:
        if not (args.official / spec.official.marker).is_file():
            raise SystemExit(f"--official {args.official}: no {spec.official.marker} there "
                             f"(expected a checkout of github.com/{spec.official.repo})")
    body = (bench_renderer(args, list(args.overrides)) if method == RENDERER
            else bench_method(method, args, list(args.overrides)))
    command = "python scripts/bench.py " + " ".join(sys.argv[1:] if argv is None else argv)
    text = (f"\n## {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC — `{command}`\n\n"
            f"Machine: {machine(args.device)}.\n\n{body}")
    print(text)
    if args.append:
        append_section(args.append, text)
    return text


if __name__ == "__main__":
    main()
