"""TP-GAN (Huang et al., ICCV 2017): two-pathway GAN for frontal view synthesis."""
from facezoo.methods.tpgan.networks import (
    PART_NAMES,
    Discriminator,
    GlobalPathway,
    LocalFuser,
    LocalPathway,
    TPGANGenerator,
    part_boxes,
    part_geometry,
)

__all__ = [
    "PART_NAMES",
    "Discriminator",
    "GlobalPathway",
    "LocalFuser",
    "LocalPathway",
    "TPGANGenerator",
    "part_boxes",
    "part_geometry",
]
