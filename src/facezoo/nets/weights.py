"""The one place that resolves pretrained weight files.

Every pretrained network in facezoo (VGG / AlexNet backbones, LightCNN, ArcFace IR-SE50, the FID
Inception) asks :func:`resolve_weights` for its file. The order is

1. an explicit ``path`` (it must exist),
2. the facezoo cache directory (``$FACEZOO_CACHE``, else ``~/.cache/facezoo``) and, for torchvision
   files, torch hub's checkpoint directory (``$TORCH_HOME/hub/checkpoints``, by default
   ``~/.cache/torch/hub/checkpoints``),
3. a download of the public URL into the facezoo cache (atomic: temporary file + ``os.replace``), unless
   ``$FACEZOO_OFFLINE=1`` or ``download=False``.

When all three fail, :class:`WeightsNotFoundError` says, in one line, which file to put where and which
argument takes a path instead.

Example:
    >>> spec = WEIGHTS["vgg16"]
    >>> spec.filename
    'vgg16-397923af.pth'
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import logging
import math
import os
import pickle
import re
import tempfile
import urllib.request
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from facezoo.utils import FacezooError

__all__ = [
    "WeightSpec",
    "WEIGHTS",
    "WeightsNotFoundError",
    "UntrustedFileError",
    "WeightFileError",
    "trusting_pickles",
    "Freezable",
    "PackagedNet",
    "cache_dir",
    "is_offline",
    "search_dirs",
    "resolve_weights",
    "load_state_dict_file",
    "unreadable_weights",
    "state_dict_mismatch",
]

log = logging.getLogger(__name__)

#: Seconds before a download attempt gives up on an unreachable host (``$FACEZOO_DOWNLOAD_TIMEOUT``).
DEFAULT_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class WeightSpec:
    """A known weight file.

    Args:
        name: registry key, e.g. ``"vgg16"``.
        filename: the file name as released (also the name looked up in the cache directories).
        url: public download URL, or ``None`` when the release is not downloadable by a script
            (Google Drive only).
        sha256_prefix: leading hex digits of the file's SHA-256, checked after a download; ``None``
            skips the check.
        description: what the file is.
        how_to_get: where a person gets the file when ``url`` is ``None`` or the download fails.
        torch_hub: ``True`` for torchvision files, which are also looked up in torch hub's
            ``checkpoints`` directory.
        packaged: ``True`` for facezoo's own small networks shipped inside the package
            (:func:`packaged_dir`), looked up after the cache directories.
    """

    name: str
    filename: str
    url: str | None
    sha256_prefix: str | None
    description: str
    how_to_get: str
    torch_hub: bool = False
    packaged: bool = False


_TV = "https://download.pytorch.org/models/"

#: Registry of the weight files facezoo knows, by name.
WEIGHTS: dict[str, WeightSpec] = {
    spec.name: spec
    for spec in (
        WeightSpec(
            "vgg16",
            "vgg16-397923af.pth",
            _TV + "vgg16-397923af.pth",
            "397923af",
            "torchvision VGG16 ImageNet classifier (perceptual losses, PSGAN/GANnotation)",
            "torchvision.models.VGG16_Weights.IMAGENET1K_V1",
            torch_hub=True,
        ),
        WeightSpec(
            "vgg19",
            "vgg19-dcbb9e9d.pth",
            _TV + "vgg19-dcbb9e9d.pth",
            "dcbb9e9d",
            "torchvision VGG19 ImageNet classifier (MaskGAN/pix2pixHD perceptual loss)",
            "torchvision.models.VGG19_Weights.IMAGENET1K_V1",
            torch_hub=True,
        ),
        WeightSpec(
            "alexnet",
            "alexnet-owt-7be5be79.pth",
            _TV + "alexnet-owt-7be5be79.pth",
            "7be5be79",
            "torchvision AlexNet ImageNet classifier (LPIPS 'alex' backbone)",
            "torchvision.models.AlexNet_Weights.IMAGENET1K_V1",
            torch_hub=True,
        ),
        WeightSpec(
            "squeezenet1_1",
            "squeezenet1_1-b8a52dc0.pth",
            _TV + "squeezenet1_1-b8a52dc0.pth",
            "b8a52dc0",
            "torchvision SqueezeNet 1.1 ImageNet classifier (LPIPS 'squeeze' backbone)",
            "torchvision.models.SqueezeNet1_1_Weights.IMAGENET1K_V1",
            torch_hub=True,
        ),
        WeightSpec(
            "lightcnn29_v2",
            "LightCNN_29Layers_V2_checkpoint.pth.tar",
            None,
            None,
            "LightCNN-29 v2 face recognition (Wu et al.), 80013 classes; "
            "{'state_dict': {'module.<key>': ...}}",
            "Google Drive link in the README of github.com/AlfredXiangWu/LightCNN (model LightCNN-29 v2)",
        ),
        WeightSpec(
            "ir_se50",
            "model_ir_se50.pth",
            None,
            None,
            "ArcFace IR-SE50 (TreB1eN/InsightFace_Pytorch) as used by pSp's ID loss; a plain state dict",
            "Google Drive link 'IR-SE50 Model' in the README of github.com/eladrich/pixel2style2pixel",
        ),
        WeightSpec(
            "moco_v2",
            "moco_v2_800ep_pretrain.pt",
            "https://dl.fbaipublicfiles.com/moco/moco_checkpoints/moco_v2_800ep/moco_v2_800ep_pretrain.pth.tar",
            None,
            "MoCo v2 ResNet-50 (800 epochs) as pSp's MoCo similarity loss uses it; "
            "{'state_dict': {'module.encoder_q.<key>': ...}}",
            "the 'MoCo v2' link in the README of github.com/facebookresearch/moco (pSp names the file "
            "moco_v2_800ep_pretrain.pt)",
        ),
        WeightSpec(
            "fid_inception",
            "pt_inception-2015-12-05-6726825d.pth",
            "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
            "pt_inception-2015-12-05-6726825d.pth",
            None,
            "pytorch-fid's port of the TF FID Inception-v3 (1008 logits); a plain state dict",
            "the fid_weights release of github.com/mseitzer/pytorch-fid",
        ),
        WeightSpec(
            "synthetic_landmarks",
            "facezoo_synthetic_landmarks_64.pt",
            None,
            None,
            "facezoo's heatmap landmark network (facezoo.nets.landmarks) trained on the synthetic renderer; "
            "{'state_dict', 'config', 'meta'}",
            "output of `python scripts/train_landmark_net.py --out <facezoo cache>/facezoo_synthetic_landmarks_64.pt` "
            "(the package ships one: facezoo/nets/data/)",
            packaged=True,
        ),
        WeightSpec(
            "synthetic_identity",
            "facezoo_synthetic_identity_64.pt",
            None,
            None,
            "facezoo's identity embedding network (facezoo.nets.identity) trained on the synthetic renderer; "
            "{'state_dict', 'config', 'meta'}",
            "output of `python scripts/train_identity_net.py --out <facezoo cache>/facezoo_synthetic_identity_64.pt` "
            "(the package ships one: facezoo/nets/data/)",
            packaged=True,
        ),
        WeightSpec(
            "synthetic_parser",
            "facezoo_synthetic_parser_64.pt",
            None,
            None,
            "facezoo's face parser (facezoo.nets.parser) trained on the synthetic renderer; "
            "{'state_dict', 'config', 'meta'}",
            "output of `python scripts/train_face_parser.py --out <facezoo cache>/facezoo_synthetic_parser_64.pt` "
            "(the package ships one: facezoo/nets/data/)",
            packaged=True,
        ),
        WeightSpec(
            "face_parsing_bisenet",
            "79999_iter.pth",
            None,
            None,
            "face-parsing.PyTorch BiSeNet (ResNet-18), 19 classes in that repo's order; a plain state dict "
            "(PSGAN's face parser)",
            "Google Drive link 'our pre-trained model' in the README of github.com/zllrunning/face-parsing.PyTorch",
        ),
        WeightSpec(
            "face_alignment_s3fd",
            "s3fd-619a316812.pth",
            "https://www.adrianbulat.com/downloads/python-fan/s3fd-619a316812.pth",
            None,
            "face-alignment's S3FD face detector; a plain state dict",
            "the face-alignment package's models_urls (it caches it in torch hub's checkpoints directory)",
            torch_hub=True,
        ),
        WeightSpec(
            "face_alignment_2dfan4",
            "2DFAN4-11f355bf06.pth.tar",
            "https://www.adrianbulat.com/downloads/python-fan/2DFAN4-11f355bf06.pth.tar",
            None,
            "face-alignment's 2D-FAN-4 68-point landmark network",
            "the face-alignment package's models_urls (it caches it in torch hub's checkpoints directory)",
            torch_hub=True,
        ),
        WeightSpec(
            "psgan_g",
            "G.pth",
            None,
            None,
            "PSGAN generator released with the official code (psgan/net.py Generator state dict, 51 entries)",
            "official repository github.com/wtjiang98/PSGAN, file assets/models/G.pth (bundled in git)",
        ),
        WeightSpec(
            "gannotation_g",
            "myGEN.pth",
            None,
            None,
            "GANnotation released generator (model.py Generator, 66 heatmaps, 128 px); "
            "{'state_dict': {'module.<key>': ...}}; CC BY-NC 4.0",
            "Google Drive 'model' link in the README of github.com/ESanchezLozano/GANnotation",
        ),
    )
}


class WeightsNotFoundError(FileNotFoundError):
    """A weight file could not be found or downloaded. The message is one line that says what to do."""


class UntrustedFileError(ValueError):
    """A weight file that needs to unpickle Python objects, read without trust. The message is one line."""


class WeightFileError(FacezooError, TypeError):
    """A weight file that is not a readable state dict: damaged, truncated, not a torch file, or holding something
    else than a mapping of tensors. One line naming the file (a ``TypeError`` too, as the loader raised before)."""


def pickled_global(err: BaseException) -> str | None:
    """The object a ``torch.load(weights_only=True)`` error refused to unpickle (``"argparse.Namespace"``), or
    ``None`` when the error is something else (a damaged or foreign file)."""
    needs = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(err))
    return needs.group(1) if needs else None


_TRUST_PICKLES: contextvars.ContextVar[bool] = contextvars.ContextVar("facezoo_trust_pickles", default=False)


@contextlib.contextmanager
def trusting_pickles(trust: bool = True):
    """Within the block, :func:`load_state_dict_file` unpickles files that need it (``trust_checkpoint=true``)."""
    token = _TRUST_PICKLES.set(bool(trust))
    try:
        yield
    finally:
        _TRUST_PICKLES.reset(token)


def is_offline() -> bool:
    """Whether downloads are disabled by ``$FACEZOO_OFFLINE`` (``1``, ``true``, ``yes``, ``on``).

    Returns:
        ``True`` when facezoo must not touch the network.
    """
    return os.environ.get("FACEZOO_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def cache_dir() -> Path:
    """The facezoo weight cache: ``$FACEZOO_CACHE`` or ``~/.cache/facezoo`` (not created here).

    Returns:
        The directory path, user-expanded.
    """
    env = os.environ.get("FACEZOO_CACHE")
    return Path(env).expanduser() if env else Path("~/.cache/facezoo").expanduser()


def _torch_hub_checkpoints() -> Path:
    return Path(torch.hub.get_dir()).expanduser() / "checkpoints"


def search_dirs(name: str) -> list[Path]:
    """The directories :func:`resolve_weights` searches for ``name``, in order.

    Args:
        name: a key of :data:`WEIGHTS`.

    Returns:
        ``[cache_dir()]``, plus torch hub's ``checkpoints`` directory for torchvision files and the package's
        own data directory for the networks facezoo ships.
    """
    dirs = [cache_dir()]
    if _spec(name).torch_hub:
        dirs.append(_torch_hub_checkpoints())
    if _spec(name).packaged:
        dirs.append(packaged_dir())
    return dirs


def packaged_dir() -> Path:
    """``facezoo/nets/data``: facezoo's own small networks trained on its synthetic faces (a few hundred kB)."""
    return Path(__file__).resolve().parent / "data"


def _spec(name: str) -> WeightSpec:
    try:
        return WEIGHTS[name]
    except KeyError:
        raise ValueError(f"unknown weights {name!r}; known: {sorted(WEIGHTS)}") from None


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _download(spec: WeightSpec, dest_dir: Path, timeout: float) -> Path:
    """Download ``spec.url`` into ``dest_dir / spec.filename`` atomically and check its hash."""
    assert spec.url is not None
    dest_dir.mkdir(parents=True, exist_ok=True)
    dest = dest_dir / spec.filename
    fd, tmp_name = tempfile.mkstemp(prefix=f".{spec.filename}.", suffix=".part", dir=dest_dir)
    sha = hashlib.sha256()
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(spec.url, timeout=timeout) as response:
            while chunk := response.read(1 << 20):
                sha.update(chunk)
                out.write(chunk)
        digest = sha.hexdigest()
        if spec.sha256_prefix and not digest.startswith(spec.sha256_prefix):
            raise RuntimeError(f"sha256 {digest[:12]}... does not start with {spec.sha256_prefix}")
        os.replace(tmp_name, dest)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    log.info("downloaded %s to %s", spec.url, dest)
    return dest


def resolve_weights(
    name: str,
    path: str | os.PathLike | None = None,
    download: bool | None = None,
    path_arg: str = "weights",
) -> Path:
    """Find the weight file ``name``: explicit path, then the cache directories, then a download.

    Args:
        name: a key of :data:`WEIGHTS` (``"vgg16"``, ``"vgg19"``, ``"alexnet"``, ``"squeezenet1_1"``,
            ``"lightcnn29_v2"``, ``"ir_se50"``, ``"fid_inception"``, ``"psgan_g"``…).
        path: an explicit file. When given it must exist; nothing else is searched.
        download: ``False`` never downloads, ``None``/``True`` download when a URL is known and
            ``$FACEZOO_OFFLINE`` is not set (the environment variable always wins).
        path_arg: the argument / config key that takes a path, named in the error message.

    Returns:
        The path of an existing file.

    Raises:
        ValueError: ``name`` is not in :data:`WEIGHTS`.
        WeightsNotFoundError: no file found and none downloaded; the one-line message names the file,
            the cache directory and ``path_arg``.

    Example:
        >>> import os, tempfile
        >>> tmp = tempfile.TemporaryDirectory()
        >>> p = os.path.join(tmp.name, "w.pth"); open(p, "wb").close()
        >>> resolve_weights("vgg16", path=p).name
        'w.pth'
        >>> tmp.cleanup()
    """
    spec = _spec(name)
    where = cache_dir()
    if path is not None:
        explicit = Path(path).expanduser()
        if explicit.is_file():
            return explicit
        raise WeightsNotFoundError(
            f"weights {name!r} not found at {explicit} (passed as {path_arg}=); "
            f"pass an existing file or put {spec.filename} in {where} and pass {path_arg}=null"
        )
    for directory in search_dirs(name):
        candidate = directory / spec.filename
        if candidate.is_file():
            return candidate

    if spec.url is None:
        reason = f"no direct URL; get it from the {spec.how_to_get}"
    elif is_offline():
        reason = "disabled by FACEZOO_OFFLINE=1"
    elif download is False:
        reason = "disabled by download=False"
    else:
        timeout = float(os.environ.get("FACEZOO_DOWNLOAD_TIMEOUT", DEFAULT_TIMEOUT_S))
        try:
            return _download(spec, where, timeout)
        except Exception as err:  # network, HTTP, disk or hash errors: all end in the same advice
            reason = f"{spec.url} failed: {type(err).__name__}: {err}"
    raise WeightsNotFoundError(
        _one_line(
            f"weights {name!r} not found: put {spec.filename} in {where} "
            f"or pass {path_arg}=PATH (download: {reason})"
        )
    )


def load_state_dict_file(
    path: str | os.PathLike, allow_pickle: bool | None = None
) -> OrderedDict[str, torch.Tensor]:
    """Load a checkpoint file as a flat state dict on the CPU.

    Unwraps a ``{'state_dict': ...}`` checkpoint (LightCNN, pSp) and strips the ``module.`` prefix
    that ``nn.DataParallel`` adds. A ``.safetensors`` file is read with safetensors (no pickle at all).

    Args:
        path: a ``.pth`` / ``.pth.tar`` file written by ``torch.save``.
        allow_pickle: the file is read with ``weights_only=True``; a file that holds other Python objects (old
            training checkpoints) is read with ``weights_only=False`` only if this is ``True``, or if it is
            ``None`` (default) inside :func:`trusting_pickles` (the command lines' ``trust_checkpoint=true``).
            Otherwise it is refused with :class:`UntrustedFileError`.

    Returns:
        An ordered ``{key: tensor}`` dict.

    Raises:
        UntrustedFileError: the file needs unpickling and pickles are not allowed (one line naming the object).
        WeightFileError: the file is damaged, truncated or not a torch file, or does not hold a mapping of tensors
            (one line naming it; a ``FacezooError`` and a ``TypeError``).

    Example:
        >>> import os, tempfile
        >>> tmp = tempfile.TemporaryDirectory()
        >>> p = os.path.join(tmp.name, "c.pth.tar")
        >>> torch.save({"state_dict": {"module.fc.weight": torch.ones(2)}}, p)
        >>> list(load_state_dict_file(p))
        ['fc.weight']
        >>> tmp.cleanup()
    """
    try:
        if Path(path).suffix == ".safetensors":
            from safetensors.torch import load_file

            obj = load_file(str(path), device="cpu")
        else:
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        what = pickled_global(err)
        if what is None:               # not a pickled object: a damaged or foreign file
            raise _unreadable(path, err) from None
        if not (_TRUST_PICKLES.get() if allow_pickle is None else allow_pickle):
            hint = "" if allow_pickle is False else "; pass trust_checkpoint=true if you trust its source"
            raise UntrustedFileError(f"{path}: holds a pickled {what}, which facezoo does not unpickle from files "
                                     f"(a pickle can run code){hint}") from None
        log.warning("%s holds a pickled %s; unpickling it (trusted)", path, what)
        obj = torch.load(path, map_location="cpu", weights_only=False)
    except (RuntimeError, EOFError, ValueError) as err:      # torch's zip reader, an empty file, safetensors
        raise _unreadable(path, err) from None
    if isinstance(obj, Mapping) and isinstance(obj.get("state_dict"), Mapping):
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping):
        raise WeightFileError(f"{path} does not hold a state dict (got {type(obj).__name__})")
    out: OrderedDict[str, torch.Tensor] = OrderedDict()
    for key, value in obj.items():
        if not isinstance(value, torch.Tensor):
            raise WeightFileError(f"{path}: entry {key!r} is a {type(value).__name__}, not a tensor")
        out[key[len("module.") :] if key.startswith("module.") else key] = value
    return out


def unreadable_weights(file: str | os.PathLike, what: str, err: BaseException) -> FacezooError:
    """The one-line error of a loader whose :func:`load_state_dict_file` call failed on ``file``:
    ``"{file} is not a readable {what}: {why}"``, the file named once (this module's errors start with it).

    Example:
        >>> str(unreadable_weights("G.pth", "PSGAN G.pth checkpoint", WeightFileError("G.pth: cannot read weights")))
        'G.pth is not a readable PSGAN G.pth checkpoint: cannot read weights'
    """
    why = _one_line(str(err))
    if why.startswith(str(file)):
        why = why[len(str(file)):].lstrip(": ")
    else:
        why = f"{type(err).__name__}: {why}"
    return FacezooError(f"{file} is not a readable {what}: {why[:200]}")


def _unreadable(path, err: BaseException) -> WeightFileError:
    # torch's own message for a damaged pickle suggests weights_only=False, which is no fix for a damaged file
    reason = "" if isinstance(err, pickle.UnpicklingError) else f" ({type(err).__name__}: {_one_line(str(err))[:120]})"
    return WeightFileError(f"{path}: cannot read weights, the file is truncated, damaged or not a torch file{reason}")


def state_dict_mismatch(state: Mapping[str, Tensor], expected: Mapping[str, Sequence[int]], n: int = 3) -> str:
    """What keeps ``state`` from loading strictly into a network whose entries are ``expected`` (key → shape): the
    first ``n`` missing, unexpected and wrong-shaped keys, for a one-line error; ``""`` when it fits.

    Example:
        >>> state_dict_mismatch({"a": torch.zeros(2), "c": torch.zeros(1)}, {"a": (3,), "b": (1,)})
        'missing b; unexpected c; wrong shapes a (2,) (needs (3,))'
    """
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = sorted(k for k in expected if k in state and tuple(state[k].shape) != tuple(expected[k]))
    shapes = ", ".join(f"{k} {tuple(state[k].shape)} (needs {tuple(expected[k])})" for k in wrong[:n])
    parts = (missing and f"missing {short_key_list(missing, n)}", unexpected and f"unexpected "
             f"{short_key_list(unexpected, n)}", wrong and f"wrong shapes {shapes}" + (
                 f" (+{len(wrong) - n} more)" if len(wrong) > n else ""))
    return "; ".join(p for p in parts if p)


class Freezable:
    """Mixin for ``nn.Module`` feature networks that can be frozen.

    A frozen network has no trainable parameters and stays in eval mode even when a parent module
    calls ``.train()`` (so BatchNorm statistics and dropout never change inside a LightningModule).
    """

    frozen: bool = False

    def freeze(self) -> Freezable:
        """Freeze in place: ``requires_grad=False`` on every parameter and eval mode.

        Returns:
            ``self``.
        """
        assert isinstance(self, nn.Module)
        self.requires_grad_(False)
        self.frozen = True
        self.eval()
        return self

    def train(self, mode: bool = True):  # noqa: D102 - nn.Module.train, but a frozen net stays in eval
        return super().train(mode and not self.frozen)  # type: ignore[misc]


class PackagedNet(Freezable):
    """Mixin for facezoo's own evaluation networks trained on the synthetic renderer (landmarks, identity, parsing).

    Their weights are a file ``{"state_dict", "config", "meta"}`` (``config``: the constructor's arguments, kept
    in ``self.config``; ``meta``: facts about the training such as held-out scores), found by
    :func:`resolve_weights` under the subclass's ``weights_name`` (the package ships one of each).
    """

    weights_name: str = ""
    kind: str = "network"          # what the one-line error calls a file of the wrong kind
    config: dict
    size: int                      # the side of the square images the network works on

    def resize_input(self, images: Tensor) -> Tensor:
        """Images of any size → ``(B, 3, size, size)`` (bilinear, antialiased when shrinking).

        Raises:
            ValueError: not a ``(B, 3, H, W)`` batch.
        """
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"expected (B, 3, H, W) images in [-1, 1], got {tuple(images.shape)}")
        if tuple(images.shape[-2:]) == (self.size, self.size):
            return images
        return torch.nn.functional.interpolate(images, size=(self.size, self.size), mode="bilinear",
                                               align_corners=False, antialias=True)

    def save_checkpoint(self, path: str | os.PathLike, **meta) -> None:
        """Write ``{"state_dict", "config", "meta"}`` to ``path`` atomically (temporary file + rename).

        Args:
            path: destination file.
            **meta: JSON-like facts stored with the weights (training steps, held-out scores …).
        """
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
        try:
            torch.save({"state_dict": self.state_dict(), "config": dict(self.config), "meta": dict(meta)}, tmp)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike, map_location="cpu"):
        """Rebuild a network written by :meth:`save_checkpoint` (eval mode); ``net.meta`` holds its facts.

        Raises:
            ValueError: the file is not such a checkpoint.
        """
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
        if not isinstance(ckpt, Mapping) or not {"state_dict", "config"} <= set(ckpt):
            raise ValueError(f"{path}: not a facezoo {cls.kind} checkpoint (no state_dict / config)")
        net = cls(**ckpt["config"])
        net.load_state_dict(ckpt["state_dict"])
        net.meta = dict(ckpt.get("meta", {}))
        return net.eval()

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike | None = None, path_arg: str = "path"):
        """The ``weights_name`` weights (explicit path, else the facezoo cache, else the packaged file), frozen.

        Raises:
            WeightsNotFoundError: no file; the one-line message says how to make it.
        """
        return cls.from_checkpoint(resolve_weights(cls.weights_name, path, path_arg=path_arg)).freeze()


def seeded_official_state_dict(shapes: Mapping[str, Sequence[int]], seed: int = 0) -> OrderedDict[str, Tensor]:
    """Deterministic random weights for a state dict layout, for parity tests against official code.

    Keys are filled in sorted order from one ``torch.Generator`` seeded with ``seed``: tensors with two or more
    dimensions ~ N(0, 1/fan_in) (``fan_in`` = product of all but the first dimension), ``*weight`` vectors ~
    1 + 0.1·N(0, 1), other vectors ~ 0.1·N(0, 1), ``running_var`` ~ U(0.5, 1.5), ``num_batches_tracked`` 0.
    The same layout filled by facezoo and by an official code base gives the same tensors (the fixture scripts in
    ``scripts/fixtures/`` and the official-loader tests share it).

    Args:
        shapes: ``{key: shape}`` (e.g. an ``official_shapes`` of a method, or ``{k: v.shape}`` of an official network).
        seed: the generator's seed.

    Returns:
        ``{key: float32 tensor}`` (``num_batches_tracked``: int64) in sorted key order.
    """
    gen = torch.Generator().manual_seed(seed)
    out: OrderedDict[str, Tensor] = OrderedDict()
    for key in sorted(shapes):
        shape = tuple(int(s) for s in shapes[key])
        if key.endswith("num_batches_tracked"):
            out[key] = torch.zeros((), dtype=torch.long)
        elif key.endswith("running_var"):
            out[key] = torch.rand(shape, generator=gen) + 0.5
        elif len(shape) >= 2:
            out[key] = torch.randn(shape, generator=gen) / math.sqrt(math.prod(shape[1:]))
        elif key.endswith("weight"):
            out[key] = 1.0 + 0.1 * torch.randn(shape, generator=gen)
        else:
            out[key] = 0.1 * torch.randn(shape, generator=gen)
    return out


def short_key_list(keys, n: int = 3) -> str:
    """The first ``n`` of ``keys`` (sorted) and how many more: for one-line state-dict mismatch errors.

    Example:
        >>> short_key_list(["d", "a", "c", "b"])
        'a, b, c (+1 more)'
    """
    keys = sorted(keys)
    return ", ".join(keys[:n]) + (f" (+{len(keys) - n} more)" if len(keys) > n else "")
