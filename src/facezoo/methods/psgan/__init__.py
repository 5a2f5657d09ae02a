"""PSGAN (Jiang et al., CVPR 2020): pose and expression robust spatial-aware makeup transfer."""
from facezoo.methods.psgan.networks import (
    AMM,
    REGION_NAMES,
    Discriminator,
    GetMatrix,
    MANet,
    MDNet,
    PSGANGenerator,
    apply_makeup,
    attentive_makeup_morphing,
    dense_reference_amm,
    init_xavier,
    region_masks_from_parsing,
    relative_position_features,
)
from facezoo.methods.psgan.official import load_official_generator, official_state_dict_from

__all__ = [
    "AMM",
    "REGION_NAMES",
    "Discriminator",
    "GetMatrix",
    "MANet",
    "MDNet",
    "PSGANGenerator",
    "apply_makeup",
    "attentive_makeup_morphing",
    "dense_reference_amm",
    "init_xavier",
    "load_official_generator",
    "official_state_dict_from",
    "region_masks_from_parsing",
    "relative_position_features",
]
