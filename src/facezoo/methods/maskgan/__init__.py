"""MaskGAN (Lee et al., CVPR 2020): face editing through a semantic mask.

Networks (:mod:`facezoo.methods.maskgan.networks`): the dense mapping network (a pix2pixHD generator whose AdaIN
parameters come from a spatial-aware style encoder), MaskVAE, the alpha blender and pix2pixHD's multi-scale
discriminator; :func:`load_official` reads the files of the official demo (``switchablenorms/CelebAMask-HQ:
MaskGAN_demo``) into them. Mask edits without drawing (grow, shrink, transplant a part, interpolate through MaskVAE):
:mod:`facezoo.methods.maskgan.edit`.
"""

from facezoo.methods.maskgan.networks import (
    NUM_LABELS,
    BlendGenerator,
    DenseMappingNetwork,
    LabelEncoder,
    MaskVAE,
    MultiscaleDiscriminator,
    PatchDiscriminator,
    ResnetGenerator,
    SFTLayer,
    StyleEncoder,
    adaptive_instance_norm,
    init_weights,
    one_hot,
)
from facezoo.methods.maskgan.official import load_official, official_key_map, to_official_state_dict

__all__ = [
    "NUM_LABELS",
    "BlendGenerator",
    "DenseMappingNetwork",
    "LabelEncoder",
    "MaskVAE",
    "MultiscaleDiscriminator",
    "PatchDiscriminator",
    "ResnetGenerator",
    "SFTLayer",
    "StyleEncoder",
    "adaptive_instance_norm",
    "init_weights",
    "load_official",
    "official_key_map",
    "one_hot",
    "to_official_state_dict",
]
