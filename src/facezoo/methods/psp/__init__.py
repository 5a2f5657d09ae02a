"""pSp (Richardson et al., CVPR 2021): a StyleGAN2 encoder for inversion and image-to-image translation."""
from facezoo.methods.psp.networks import (
    COARSE_END,
    ENCODER_TYPES,
    MEDIUM_END,
    PSP,
    BackboneEncoderUsingLastLayerIntoW,
    BackboneEncoderUsingLastLayerIntoWPlus,
    GradualStyleBlock,
    GradualStyleEncoder,
    build_encoder,
    n_styles_for,
    style_groups,
)
from facezoo.methods.psp.official import load_official, official_checkpoint_from, read_release

__all__ = [
    "COARSE_END",
    "ENCODER_TYPES",
    "MEDIUM_END",
    "PSP",
    "BackboneEncoderUsingLastLayerIntoW",
    "BackboneEncoderUsingLastLayerIntoWPlus",
    "GradualStyleBlock",
    "GradualStyleEncoder",
    "build_encoder",
    "load_official",
    "n_styles_for",
    "official_checkpoint_from",
    "read_release",
    "style_groups",
]
