"""pSp networks: the style encoders on the IR-SE50 body and the pSp model (encoder + StyleGAN2 decoder).

pixel2style2pixel (Richardson et al., "Encoding in Style: a StyleGAN Encoder for Image-to-Image Translation",
CVPR 2021) maps an image (a face, a sketch, a segmentation map, a low-resolution face) to the W+ latent of a fixed
StyleGAN2 generator, one 512-d style per generator input, and decodes it:

* :class:`GradualStyleEncoder` (``eladrich/pixel2style2pixel: models/encoders/psp_encoders.py``): an IR-SE50 body
  (``facezoo.nets.irse``; initialised from ArcFace ``model_ir_se50.pth``) with a 3/1/19-channel input stem, three
  taps c1/c2/c3 (units 6, 20, 23: 128 ch at H/4, 256 ch at H/8, 512 ch at H/16), a small feature pyramid
  (``p2 = up(c3) + 1x1(c2)``, ``p1 = up(p2) + 1x1(c1)``) and one :class:`GradualStyleBlock` per style: the coarse
  styles (indices 0-2) read c3, the medium ones (3-6) p2, the fine ones (7 and up) p1;
* the two baselines of the paper's ablation, :class:`BackboneEncoderUsingLastLayerIntoW` (one w for every style)
  and :class:`BackboneEncoderUsingLastLayerIntoWPlus` (all styles from the last feature map);
* :class:`PSP` (``models/psp.py: pSp``): encoder + a frozen :class:`facezoo.nets.stylegan2.Generator`, the optional
  residual around the average latent (``start_from_latent_avg``), style mixing for multi-modal outputs and the
  ``face_pool`` to the loss resolution.

The number of styles is the decoder's ``n_latent = 2 * log2(size) - 2`` (:func:`n_styles_for`): 18 at 1024, 16 at
512, 14 at 256 and 10 for facezoo's own 64 px generator. The coarse / medium / fine split is by style *index*, and an
index drives the same generator layers whatever the output size (rosinality ``Generator.forward``: style 0 the 4 px
convolution, styles 2k-1 and 2k the two convolutions at 2^(k+2) px, style 2k+1 also that resolution's ToRGB). So the
split keeps StyleGAN's meaning at any size: coarse (0-2) = 4-8 px, medium (3-6) = 16-32 px, fine (7 and up) = 64 px
and up. At 64 px that is 3 coarse, 4 medium and 3 fine styles; at 32 px the fine group is only the last ToRGB style
and at 16 px and below it is empty (the official code behaves the same).

Parameter and buffer names equal the official ones, so a pSp release (``state_dict`` with ``encoder.`` and
``decoder.`` keys) loads with ``strict=True`` (:func:`facezoo.methods.psp.official.load_official`).

What differs from the official code (no weight and, up to float rounding, no result changes):

* ``input_size`` (256 in the official code and every release) sets how many stride-2 convolutions a style block
  has; inputs smaller than it work as in the official code (a 1x1 map stays 1x1), larger ones are refused instead
  of producing mis-shaped styles;
* ``style_dim`` other than 512 (facezoo's small generators) changes only each block's last linear layer; the
  pyramid stays 512 wide;
* ``width`` (default 1, the official encoders) scales every channel count of the stem, the IR body, the pyramid
  and the style blocks, for small encoders trained from scratch on CPU (IR-SE50 initialises only width 1);
* with the W encoder (``learn_in_w``), :meth:`PSP.encode` returns the single w repeated to (B, n_styles, 512), so
  ``latent_mask`` acts on styles (the official code indexes the 512 features of the (B, 512) code instead);
* ``forward`` never writes into the caller's ``inject_latent`` or (with ``input_code``) input tensor;
* ``latent_avg`` is a buffer (n_styles, D) of the model, so it travels in facezoo checkpoints (the official model keeps
  it as a plain attribute and the release file stores it beside the ``state_dict``).

Example:
    >>> from facezoo.nets.stylegan2 import Generator
    >>> g = Generator(16, style_dim=8, n_mlp=1, narrow=1 / 64)
    >>> model = PSP(g, encoder_type="BackboneEncoderUsingLastLayerIntoWPlus", irse50=False)
    >>> model.encode(torch.zeros(1, 3, 32, 32)).shape
    torch.Size([1, 6, 8])
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from facezoo.nets.irse import BottleneckIR, BottleneckIRSE, get_blocks, scaled
from facezoo.nets.stylegan2 import EqualLinear, Generator, estimate_latent_avg, load_rosinality
from facezoo.nets.weights import WeightsNotFoundError, load_state_dict_file, resolve_weights

__all__ = [
    "COARSE_END",
    "MEDIUM_END",
    "ENCODER_TYPES",
    "n_styles_for",
    "style_groups",
    "ir_body",
    "GradualStyleBlock",
    "GradualStyleEncoder",
    "BackboneEncoderUsingLastLayerIntoW",
    "BackboneEncoderUsingLastLayerIntoWPlus",
    "build_encoder",
    "PSP",
]

log = logging.getLogger(__name__)

#: Styles ``[0, COARSE_END)`` come from c3, ``[COARSE_END, MEDIUM_END)`` from p2, the rest from p1 (official
#: ``coarse_ind = 3``, ``middle_ind = 7``).
COARSE_END = 3
MEDIUM_END = 7
#: Width of the IR body's last stage and of the feature pyramid.
FEATURES = 512

_warned_no_irse50 = False


def n_styles_for(size: int) -> int:
    """Number of W+ styles of a StyleGAN2 generator of output ``size``: ``2 * log2(size) - 2``.

    Args:
        size: output resolution, a power of two >= 4.

    Returns:
        14 at 256, 16 at 512, 18 at 1024, 10 at 64.

    Example:
        >>> [n_styles_for(s) for s in (64, 256, 512, 1024)]
        [10, 14, 16, 18]
    """
    if not isinstance(size, int) or size < 4 or size & (size - 1):
        raise ValueError(f"output size must be a power of two >= 4, got {size!r}")
    return 2 * int(math.log2(size)) - 2


def style_groups(n_styles: int) -> tuple[range, range, range]:
    """The coarse, medium and fine style indices of :class:`GradualStyleEncoder` for ``n_styles`` styles.

    Example:
        >>> [list(g) for g in style_groups(10)]
        [[0, 1, 2], [3, 4, 5, 6], [7, 8, 9]]
    """
    return range(min(COARSE_END, n_styles)), range(min(COARSE_END, n_styles), min(MEDIUM_END, n_styles)), \
        range(min(MEDIUM_END, n_styles), n_styles)


def ir_body(num_layers: int = 50, mode: str = "ir_se", width: float = 1.0) -> nn.Sequential:
    """The ArcFace IR / IR-SE body (``facezoo.nets.irse`` units, names ``<unit>.res_layer...``) without stem and head.

    Args:
        num_layers: 50, 100 or 152.
        mode: ``"ir_se"`` (pSp) or ``"ir"``.
        width: channel scale (:func:`facezoo.nets.irse.get_blocks`).

    Returns:
        ``nn.Sequential`` of the units: (B, 64, H, W) -> (B, 512, H / 16, W / 16) (channels times ``width``).
    """
    if mode not in ("ir", "ir_se"):
        raise ValueError(f"mode must be 'ir' or 'ir_se', got {mode!r}")
    unit = BottleneckIRSE if mode == "ir_se" else BottleneckIR
    return nn.Sequential(*[unit(*spec) for stage in get_blocks(num_layers, width) for spec in stage])


def _input_layer(input_nc: int, channels: int = 64) -> nn.Sequential:
    """The IR stem for ``input_nc`` channels: conv3x3 -> 64 (no bias), BN, PReLU (official ``input_layer``)."""
    if not isinstance(input_nc, int) or input_nc < 1:
        raise ValueError(f"input_nc must be a positive int, got {input_nc!r}")
    return nn.Sequential(nn.Conv2d(input_nc, channels, 3, 1, 1, bias=False), nn.BatchNorm2d(channels),
                         nn.PReLU(channels))


class _IRSEEncoder(nn.Module):
    """Shared parts of the three encoders: the input stem, the IR body and the IR-SE50 initialisation.

    ``width`` scales every channel count (stem, body, pyramid, style blocks; 1 = the official encoders, whose body
    IR-SE50 initialises): facezoo's small CPU encoders.
    """

    def __init__(self, input_nc: int, num_layers: int, mode: str, width: float = 1.0) -> None:
        super().__init__()
        self.input_nc = input_nc
        self.width = float(width)
        self.features_dim = scaled(FEATURES, width)     # the last stage's and the pyramid's width (512)
        self.input_layer = _input_layer(input_nc, scaled(64, width))
        self.body = ir_body(num_layers, mode, width)

    def _check_input(self, x: Tensor) -> None:
        if x.ndim != 4 or x.shape[1] != self.input_nc:
            raise ValueError(f"{type(self).__name__}: expected (B, {self.input_nc}, H, W) inputs, got {tuple(x.shape)}")

    def load_irse50(self, weights: str | os.PathLike | None = None) -> bool:
        """Initialise the body (and, for 3-channel inputs, the stem) from ArcFace ``model_ir_se50.pth``.

        As the official ``pSp.load_weights``: the stem is skipped for non-RGB inputs, the ArcFace head is ignored.

        Args:
            weights: an explicit file (an error when it does not exist); ``None`` looks up ``"ir_se50"`` in the
                facezoo cache (:func:`facezoo.nets.weights.resolve_weights`) and, when it is not there, keeps the
                random initialisation with one warning per process.

        Returns:
            Whether weights were loaded.
        """
        global _warned_no_irse50
        if self.width != 1:
            if weights is not None:
                raise ValueError(f"IR-SE50 weights initialise only the full-width encoder, not width {self.width}")
            return False
        try:
            path = resolve_weights("ir_se50", weights, download=False, path_arg="irse50")
        except WeightsNotFoundError as err:
            if weights is not None:
                raise
            if not _warned_no_irse50:
                log.warning("pSp encoder: IR-SE50 body left randomly initialised (%s)", err)
                _warned_no_irse50 = True
            return False
        state = load_state_dict_file(path)
        prefixes = ("body.", "input_layer.") if self.input_nc == 3 else ("body.",)
        own = [k for k in self.state_dict() if k.startswith(prefixes)]
        missing = [k for k in own if k not in state]
        if missing:
            raise ValueError(f"{path} is not an IR-SE50 state dict: missing {', '.join(missing[:3])}")
        self.load_state_dict({k: state[k] for k in own}, strict=False)
        return True


class GradualStyleBlock(nn.Module):
    """map2style: ``log2(spatial)`` stride-2 conv3x3 + LeakyReLU(0.01) down to 1x1, then an :class:`EqualLinear`.

    Args:
        in_channels: input feature channels (512).
        out_channels: conv channels (512).
        spatial: side of the feature map the block is built for (16, 32 or 64 at 256 px input).
        style_dim: output size (``out_channels`` when ``None``, as in the official code).

    Shape:
        - Input: :math:`(B, C_{in}, S, S)` with ``S <= spatial``; Output: :math:`(B, D)`.
    """

    def __init__(self, in_channels: int, out_channels: int, spatial: int, style_dim: int | None = None) -> None:
        super().__init__()
        self.out_channels = out_channels
        self.spatial = spatial
        num_pools = max(1, int(math.log2(spatial)))
        layers: list[nn.Module] = []
        for i in range(num_pools):
            layers += [nn.Conv2d(in_channels if i == 0 else out_channels, out_channels, 3, 2, 1), nn.LeakyReLU()]
        self.convs = nn.Sequential(*layers)
        self.linear = EqualLinear(out_channels, style_dim or out_channels, lr_mul=1)

    def forward(self, x: Tensor) -> Tensor:
        x = self.convs(x)
        if x.shape[-2:] != (1, 1):
            raise ValueError(f"GradualStyleBlock built for {self.spatial}x{self.spatial} features got a larger map "
                             f"({tuple(x.shape[-2:])} after its convs); build the encoder with a larger input_size")
        return self.linear(x.flatten(1))


class GradualStyleEncoder(_IRSEEncoder):
    """pSp's encoder: IR-SE50 feature pyramid -> ``n_styles`` styles (official ``GradualStyleEncoder``).

    Args:
        n_styles: number of W+ styles (the decoder's ``n_latent``).
        input_nc: input channels: 3 (RGB), 1 (sketch, gray), 19 (one-hot segmentation).
        input_size: training input side (256); sets the depth of the style blocks (``input_size / 16``, ``/ 8``,
            ``/ 4`` for coarse, medium and fine).
        style_dim: size of each style (512 for released generators).
        num_layers: IR depth (50 in pSp).
        mode: ``"ir_se"`` (pSp) or ``"ir"``.

    Shape:
        - Input: :math:`(B, C_{in}, H, W)`, images in [-1, 1] (or one-hot maps), ``H, W <= input_size``.
        - Output: :math:`(B, n\\_styles, D)`.

    Example:
        >>> enc = GradualStyleEncoder(4, input_nc=1, input_size=32, style_dim=8)
        >>> enc(torch.zeros(2, 1, 32, 32)).shape
        torch.Size([2, 4, 8])
    """

    def __init__(self, n_styles: int, input_nc: int = 3, input_size: int = 256, style_dim: int = 512,
                 num_layers: int = 50, mode: str = "ir_se", width: float = 1.0) -> None:
        super().__init__(input_nc, num_layers, mode, width)
        if not isinstance(input_size, int) or input_size < 16 or input_size & (input_size - 1):
            raise ValueError(f"input_size must be a power of two >= 16, got {input_size!r}")
        if n_styles < 1:
            raise ValueError(f"n_styles must be >= 1, got {n_styles}")
        self.n_styles = n_styles
        self.input_size = input_size
        stages = [len(stage) for stage in get_blocks(num_layers)]
        ends = [sum(stages[: i + 1]) - 1 for i in range(4)]
        #: body units tapped for c1, c2, c3 (6, 20, 23 for IR-SE50: the last unit of stages 2, 3, 4)
        self.taps = (ends[1], ends[2], ends[3])
        coarse, medium, _ = style_groups(n_styles)
        self.styles = nn.ModuleList()
        for i in range(n_styles):
            side = input_size // (16 if i in coarse else 8 if i in medium else 4)
            self.styles.append(GradualStyleBlock(self.features_dim, self.features_dim, side, style_dim))
        self.latlayer1 = nn.Conv2d(scaled(256, width), self.features_dim, 1, 1, 0)
        self.latlayer2 = nn.Conv2d(scaled(128, width), self.features_dim, 1, 1, 0)

    @staticmethod
    def _upsample_add(x: Tensor, y: Tensor) -> Tensor:
        """Bilinear (align_corners) upsampling of ``x`` to ``y``'s size, plus ``y``."""
        return F.interpolate(x, size=y.shape[-2:], mode="bilinear", align_corners=True) + y

    def features(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """The body taps (c1, c2, c3): (B, 128, H/4, W/4), (B, 256, H/8, W/8), (B, 512, H/16, W/16)."""
        self._check_input(x)
        x = self.input_layer(x)
        taps: dict[int, Tensor] = {}
        for i, unit in enumerate(self.body[: self.taps[-1] + 1]):
            x = unit(x)
            if i in self.taps:
                taps[i] = x
        return taps[self.taps[0]], taps[self.taps[1]], taps[self.taps[2]]

    def forward(self, x: Tensor) -> Tensor:
        c1, c2, c3 = self.features(x)
        coarse, medium, fine = style_groups(self.n_styles)
        latents = [self.styles[j](c3) for j in coarse]
        if len(medium) or len(fine):
            p2 = self._upsample_add(c3, self.latlayer1(c2))
            latents += [self.styles[j](p2) for j in medium]
            if len(fine):
                p1 = self._upsample_add(p2, self.latlayer2(c1))
                latents += [self.styles[j](p1) for j in fine]
        return torch.stack(latents, dim=1)


class BackboneEncoderUsingLastLayerIntoW(_IRSEEncoder):
    """Ablation encoder: average-pooled last IR feature map -> one w (official ``BackboneEncoderUsingLastLayerIntoW``).

    Args:
        input_nc: input channels.
        style_dim: size of w.
        num_layers: IR depth.
        mode: ``"ir_se"`` or ``"ir"``.

    Shape:
        - Input: :math:`(B, C_{in}, H, W)`; Output: :math:`(B, D)`.
    """

    def __init__(self, input_nc: int = 3, style_dim: int = 512, num_layers: int = 50, mode: str = "ir_se",
                 width: float = 1.0) -> None:
        super().__init__(input_nc, num_layers, mode, width)
        self.output_pool = nn.AdaptiveAvgPool2d((1, 1))
        self.linear = EqualLinear(self.features_dim, style_dim, lr_mul=1)

    def forward(self, x: Tensor) -> Tensor:
        self._check_input(x)
        x = self.output_pool(self.body(self.input_layer(x)))
        return self.linear(x.flatten(1))


class BackboneEncoderUsingLastLayerIntoWPlus(_IRSEEncoder):
    """Ablation encoder: last IR feature map -> BN, 7x7 pool, Linear -> all W+ styles at once.

    Official ``BackboneEncoderUsingLastLayerIntoWPlus`` (``output_layer_2`` = BN2d, AdaptiveAvgPool 7x7, Flatten,
    Linear 512*49 -> 512; then an EqualLinear to ``n_styles * 512``).

    Args:
        n_styles: number of styles.
        input_nc: input channels.
        style_dim: size of each style.
        num_layers: IR depth.
        mode: ``"ir_se"`` or ``"ir"``.

    Shape:
        - Input: :math:`(B, C_{in}, H, W)`; Output: :math:`(B, n\\_styles, D)`.
    """

    def __init__(self, n_styles: int, input_nc: int = 3, style_dim: int = 512, num_layers: int = 50,
                 mode: str = "ir_se", width: float = 1.0) -> None:
        super().__init__(input_nc, num_layers, mode, width)
        self.n_styles = n_styles
        self.style_dim = style_dim
        c = self.features_dim
        self.output_layer_2 = nn.Sequential(nn.BatchNorm2d(c), nn.AdaptiveAvgPool2d((7, 7)), nn.Flatten(),
                                            nn.Linear(c * 7 * 7, c))
        self.linear = EqualLinear(c, style_dim * n_styles, lr_mul=1)

    def forward(self, x: Tensor) -> Tensor:
        self._check_input(x)
        x = self.output_layer_2(self.body(self.input_layer(x)))
        return self.linear(x).view(-1, self.n_styles, self.style_dim)


#: ``encoder_type`` names of the official options.
ENCODER_TYPES = ("GradualStyleEncoder", "BackboneEncoderUsingLastLayerIntoW", "BackboneEncoderUsingLastLayerIntoWPlus")


def build_encoder(encoder_type: str, n_styles: int, input_nc: int = 3, style_dim: int = 512,
                  input_size: int = 256, width: float = 1.0) -> nn.Module:
    """The encoder named by the official ``--encoder_type`` (IR-SE50 body, weights not loaded).

    Args:
        encoder_type: one of :data:`ENCODER_TYPES`.
        n_styles: number of W+ styles.
        input_nc: input channels.
        style_dim: style size.
        input_size: training input side (only :class:`GradualStyleEncoder` depends on it).
        width: channel scale (1 = the official encoders).

    Returns:
        The encoder module.
    """
    if encoder_type == "GradualStyleEncoder":
        return GradualStyleEncoder(n_styles, input_nc, input_size, style_dim, width=width)
    if encoder_type == "BackboneEncoderUsingLastLayerIntoW":
        return BackboneEncoderUsingLastLayerIntoW(input_nc, style_dim, width=width)
    if encoder_type == "BackboneEncoderUsingLastLayerIntoWPlus":
        return BackboneEncoderUsingLastLayerIntoWPlus(n_styles, input_nc, style_dim, width=width)
    raise ValueError(f"encoder_type must be one of {', '.join(ENCODER_TYPES)}, got {encoder_type!r}")


class PSP(nn.Module):
    """The pSp model: style encoder + StyleGAN2 decoder (``eladrich/pixel2style2pixel: models/psp.py: pSp``).

    Args:
        decoder: a :class:`facezoo.nets.stylegan2.Generator` (e.g. from :meth:`from_decoder_file`); its size sets
            ``n_styles`` and its ``style_dim`` the style size.
        encoder_type: one of :data:`ENCODER_TYPES`; ``"BackboneEncoderUsingLastLayerIntoW"`` is the official
            ``learn_in_w``.
        input_nc: encoder input channels (3 RGB, 1 sketch, 19 one-hot segmentation).
        start_from_latent_avg: the encoder predicts a residual around the average latent ``latent_avg``.
        train_decoder: leave the decoder trainable (the official ``--train_decoder``); frozen otherwise.
        latent_avg: the average w, (D,), (1, D) or (n_styles, D); ``None`` with ``start_from_latent_avg``
            estimates it from ``n_mean_latent`` mapped samples (official ``coach.py``); otherwise zeros.
        pool_size: side of ``face_pool`` (the loss resolution; 256 in the official code).
        input_size: training input side of the encoder (256 in the official code).
        irse50: initialise the encoder body from ArcFace IR-SE50: ``True`` from the facezoo cache when present (one
            warning when not), a path (must exist), or ``False`` (no initialisation, e.g. before loading a
            checkpoint).
        n_mean_latent: samples for the ``latent_avg`` estimate.
        encoder: an encoder built elsewhere (e.g. with loaded weights) of type ``encoder_type``; ``None`` builds one.
        width: the encoder's channel scale (1 = pSp's; IR-SE50 initialises only that one, ``irse50`` is ignored
            otherwise).

    Attributes:
        n_styles: number of W+ styles.
        learn_in_w: the encoder predicts a single w.
        latent_avg: buffer (n_styles, D).
        face_pool: ``AdaptiveAvgPool2d(pool_size)``.

    Shape:
        - Input: :math:`(B, C_{in}, H, W)` in [-1, 1] (one-hot maps in {0, 1}), ``H, W <= input_size``.
        - Output: images :math:`(B, 3, S, S)`, nominally in [-1, 1], with ``S = pool_size`` when resized, else the
          decoder's size; latents :math:`(B, n\\_styles, D)`.
    """

    def __init__(self, decoder: Generator, encoder_type: str = "GradualStyleEncoder", input_nc: int = 3,
                 start_from_latent_avg: bool = False, train_decoder: bool = False, latent_avg: Tensor | None = None,
                 pool_size: int = 256, input_size: int = 256, irse50: bool | str | os.PathLike = True,
                 n_mean_latent: int = 100_000, encoder: nn.Module | None = None, width: float = 1.0) -> None:
        super().__init__()
        if not isinstance(decoder, Generator):
            raise ValueError(f"decoder must be a facezoo.nets.stylegan2.Generator, got {type(decoder).__name__}")
        self.n_styles = decoder.n_latent
        self.style_dim = decoder.style_dim
        self.output_size = decoder.size
        self.encoder_type = encoder_type
        self.input_nc = input_nc
        self.learn_in_w = encoder_type == "BackboneEncoderUsingLastLayerIntoW"
        self.start_from_latent_avg = bool(start_from_latent_avg)
        if encoder is None:
            encoder = build_encoder(encoder_type, self.n_styles, input_nc, self.style_dim, input_size, width)
        elif type(encoder).__name__ != encoder_type or encoder.input_nc != input_nc:
            raise ValueError(f"encoder is a {type(encoder).__name__} for {encoder.input_nc} channels, not the "
                             f"{encoder_type} for {input_nc} that the other arguments describe")
        self.encoder = encoder
        if irse50 is not False and self.encoder.width == 1:
            self.encoder.load_irse50(None if irse50 is True else irse50)
        self.decoder = decoder
        self.train_decoder = bool(train_decoder)
        self.decoder.requires_grad_(self.train_decoder)
        self.face_pool = nn.AdaptiveAvgPool2d((pool_size, pool_size))
        self.fast_dtype: torch.dtype | None = None        # fast_path(): bf16 weights
        if latent_avg is None and self.start_from_latent_avg:
            latent_avg = estimate_latent_avg(decoder, n_mean_latent)
        self.register_buffer("latent_avg", torch.zeros(self.n_styles, self.style_dim))
        if latent_avg is not None:
            self.set_latent_avg(latent_avg)

    @classmethod
    def from_decoder_file(cls, path: str | os.PathLike, **kwargs) -> PSP:
        """pSp on a rosinality-format StyleGAN2 file (``stylegan2-ffhq-config-f.pt``, ``scripts/export_stylegan2.py``).

        The generator ``g_ema`` loads strictly (:func:`facezoo.nets.stylegan2.load_rosinality`); the file's
        ``latent_avg`` is used unless ``latent_avg=`` is given.

        Args:
            path: the generator file.
            **kwargs: :class:`PSP` arguments.

        Returns:
            The model (encoder in training mode, decoder frozen unless ``train_decoder``).
        """
        decoder, latent_avg = load_rosinality(path)
        kwargs.setdefault("latent_avg", latent_avg)
        return cls(decoder.train(), **kwargs)

    def set_latent_avg(self, latent_avg: Tensor) -> None:
        """Set the average latent from (D,), (1, D) or (n_styles, D) values (one w is repeated to every style)."""
        avg = torch.as_tensor(latent_avg, dtype=torch.float32).detach()
        if avg.ndim == 1:
            avg = avg[None]
        if avg.ndim != 2 or avg.shape[1] != self.style_dim or avg.shape[0] not in (1, self.n_styles):
            raise ValueError(f"latent_avg must be ({self.style_dim},), (1, {self.style_dim}) or "
                             f"({self.n_styles}, {self.style_dim}), got {tuple(avg.shape)}")
        if self.learn_in_w and avg.shape[0] > 1 and not torch.equal(avg, avg[:1].expand_as(avg)):
            raise ValueError("latent_avg must be one w (the same for every style) with the W encoder")
        self.latent_avg.copy_(avg.expand(self.n_styles, -1))

    def fast_path(self) -> PSP:
        """Inference fast path: encoder and decoder weights in bf16, the encoder in channels_last memory.

        On the 2-core AVX512-BF16 CPU of docs/benchmarks.md, at 256 px batch 1, the IR-SE50 encoder runs 2.2x and
        the StyleGAN2 decoder 1.8x faster this way. bf16 *weights*, not autocast: under autocast every convolution
        re-casts its weights and the decoder's noise / bias / activation passes convert between fp32 and bf16, which
        ate the decoder's whole gain. Latents and images leave :meth:`encode`, :meth:`decode` and :meth:`forward`
        in fp32; ``latent_avg`` stays fp32. The images differ from the fp32 ones by about 40 dB PSNR
        (docs/benchmarks.md). For inference, not training; irreversible (load the model again for fp32).

        Returns:
            ``self``, in eval mode.
        """
        self.fast_dtype = torch.bfloat16
        self.encoder.to(self.fast_dtype, memory_format=torch.channels_last)
        self.decoder.to(self.fast_dtype)
        return self.eval()

    def _decode(self, codes: Tensor, noise: Sequence[Tensor | None] | None = None,
                **kwargs) -> tuple[Tensor, Tensor | None]:
        """``self.decoder([codes], **kwargs)`` in the decoder's precision, fp32 out."""
        if self.fast_dtype is None:
            return self.decoder([codes], noise=noise, **kwargs)
        if noise is not None:
            noise = [n if n is None else n.to(self.fast_dtype) for n in noise]
        images, latents = self.decoder([codes.to(self.fast_dtype)], noise=noise, **kwargs)
        return images.float(), None if latents is None else latents.float()

    def trainable_parameters(self) -> list[nn.Parameter]:
        """What the official coach optimises: the encoder, plus the decoder with ``train_decoder``."""
        params = list(self.encoder.parameters())
        return params + list(self.decoder.parameters()) if self.train_decoder else params

    def encode(self, x: Tensor) -> Tensor:
        """W+ codes of the inputs (with the average latent added when ``start_from_latent_avg``).

        Args:
            x: :math:`(B, C_{in}, H, W)` in [-1, 1] (one-hot maps in {0, 1}).

        Returns:
            :math:`(B, n\\_styles, D)`.
        """
        if self.fast_dtype is None:
            codes = self.encoder(x)
        else:
            codes = self.encoder(x.to(self.fast_dtype, memory_format=torch.channels_last)).float()
        if self.learn_in_w:
            if self.start_from_latent_avg:
                codes = codes + self.latent_avg[0]
            return codes.unsqueeze(1).expand(-1, self.n_styles, -1)
        if self.start_from_latent_avg:
            codes = codes + self.latent_avg
        return codes

    def decode(self, w: Tensor, randomize_noise: bool = True, resize: bool = False,
               noise: Sequence[Tensor | None] | None = None) -> Tensor:
        """Synthesize images from W+ (or w) latents.

        Args:
            w: :math:`(B, n\\_styles, D)` or :math:`(B, D)`.
            randomize_noise: fresh noise (``True``) or the decoder's stored noise maps.
            resize: pool to ``pool_size`` (``face_pool``).
            noise: explicit noise maps (see :meth:`Generator.make_noise`).

        Returns:
            :math:`(B, 3, S, S)`.
        """
        images, _ = self._decode(w, input_is_latent=True, randomize_noise=randomize_noise, noise=noise)
        return self.face_pool(images) if resize else images

    @torch.no_grad()
    def random_latents(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """W+ latents of random z ~ N(0, I) through the mapping network (official ``pSp(z, input_code=True)``).

        Args:
            n: number of latents.
            generator: CPU random generator for z (the global one when ``None``).

        Returns:
            :math:`(n, n\\_styles, D)` (each row one w repeated).
        """
        z = torch.randn(n, self.style_dim, generator=generator).to(self.latent_avg.device)
        w = self.decoder.style(z if self.fast_dtype is None else z.to(self.fast_dtype)).float()
        return w.unsqueeze(1).repeat(1, self.n_styles, 1)

    def _check_mask(self, latent_mask: Sequence[int]) -> list[int]:
        mask = [int(i) for i in latent_mask]
        bad = [i for i in mask if not 0 <= i < self.n_styles]
        if bad:
            raise ValueError(f"latent_mask indices {bad} outside 0..{self.n_styles - 1}")
        return mask

    def mix(self, codes: Tensor, latent_mask: Sequence[int], inject_latent: Tensor | None = None,
            alpha: float | None = None) -> Tensor:
        """Style mixing (official ``pSp.forward``): styles in ``latent_mask`` are replaced by ``inject_latent``'s,
        blended ``alpha * inject + (1 - alpha) * codes`` when ``alpha`` is given, or zeroed without ``inject_latent``.

        Args:
            codes: :math:`(B, n\\_styles, D)`.
            latent_mask: style indices, e.g. ``range(8, 18)`` for the colour / texture styles at 1024 px.
            inject_latent: :math:`(B, n\\_styles, D)` (e.g. :meth:`random_latents`).
            alpha: blend factor in [0, 1]; ``None`` replaces.

        Returns:
            A new tensor :math:`(B, n\\_styles, D)`.
        """
        if codes.ndim != 3 or codes.shape[1] != self.n_styles:
            raise ValueError(f"latent_mask needs W+ codes (B, {self.n_styles}, D), got {tuple(codes.shape)}")
        if inject_latent is not None and (inject_latent.ndim != 3 or inject_latent.shape[1] != self.n_styles):
            raise ValueError(f"inject_latent must be (B, {self.n_styles}, D), got {tuple(inject_latent.shape)}")
        codes = codes.clone()
        for i in self._check_mask(latent_mask):
            if inject_latent is None:
                codes[:, i] = 0
            elif alpha is not None:
                codes[:, i] = alpha * inject_latent[:, i] + (1 - alpha) * codes[:, i]
            else:
                codes[:, i] = inject_latent[:, i]
        return codes

    def forward(self, x: Tensor, resize: bool = True, latent_mask: Sequence[int] | None = None,
                input_code: bool = False, randomize_noise: bool = True, inject_latent: Tensor | None = None,
                return_latents: bool = False, alpha: float | None = None) -> Tensor | tuple[Tensor, Tensor]:
        """Encode and decode, with the official ``pSp.forward`` arguments and semantics.

        Args:
            x: inputs :math:`(B, C_{in}, H, W)`; with ``input_code`` latent codes instead: z :math:`(B, D)` or
                :math:`(B, n\\_styles, D)`, passed through the mapping network.
            resize: pool the images to ``pool_size``.
            latent_mask: style indices to mix (see :meth:`mix`).
            input_code: ``x`` are z codes, not images.
            randomize_noise: fresh noise, or the decoder's stored noise maps.
            inject_latent: W+ latents to mix in.
            return_latents: also return the W+ latents the decoder used.
            alpha: mixing factor.

        Returns:
            Images, or ``(images, latents)`` with ``return_latents``.
        """
        codes = x if input_code else self.encode(x)
        if latent_mask is not None:
            codes = self.mix(codes, latent_mask, inject_latent, alpha)
        images, latents = self._decode(codes, input_is_latent=not input_code, randomize_noise=randomize_noise,
                                       return_latents=return_latents)
        if resize:
            images = self.face_pool(images)
        return (images, latents) if return_latents else images

    def style_mix(self, x: Tensor, latent_mask: Sequence[int], n_outputs: int = 1, alpha: float | None = None,
                  generator: torch.Generator | None = None, randomize_noise: bool = True,
                  resize: bool = True) -> Tensor:
        """Multi-modal outputs (official ``scripts/style_mixing.py``): each input mixed with ``n_outputs`` random
        latents in the styles ``latent_mask``.

        Args:
            x: inputs :math:`(B, C_{in}, H, W)`.
            latent_mask: style indices to take from the random latents (e.g. ``range(8, n_styles)``).
            n_outputs: results per input.
            alpha: mixing factor (``None`` replaces the styles).
            generator: CPU random generator for the z draws.
            randomize_noise: fresh noise or the stored maps.
            resize: pool to ``pool_size``.

        Returns:
            :math:`(B, n\\_outputs, 3, S, S)`.
        """
        codes = self.encode(x)
        outputs = []
        for _ in range(n_outputs):
            mixed = self.mix(codes, latent_mask, self.random_latents(x.shape[0], generator), alpha)
            outputs.append(self.decode(mixed, randomize_noise=randomize_noise, resize=resize))
        return torch.stack(outputs, dim=1)
