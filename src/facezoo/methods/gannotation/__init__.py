"""GANnotation (Sanchez & Valstar, FG 2020): landmark-guided face-to-face synthesis with a triple consistency loss."""
from facezoo.methods.gannotation.networks import (
    ConvNormAct,
    Discriminator,
    Generator,
    ResidualBlock,
    UpConvNormAct,
    heatmaps_to_image,
    init_weights,
    landmark_heatmaps_official,
)

__all__ = [
    "ConvNormAct",
    "Discriminator",
    "Generator",
    "ResidualBlock",
    "UpConvNormAct",
    "heatmaps_to_image",
    "init_weights",
    "landmark_heatmaps_official",
]
