"""StyleGAN2 (Karras et al., CVPR 2020): the LightningModule (``model=stylegan2``), ADA, and projection.

The networks are :mod:`facezoo.nets.stylegan2` (pSp decodes with them); ``scripts/export_stylegan2.py`` writes a
trained checkpoint's EMA generator in rosinality's format.
"""

from facezoo.methods.stylegan2.projection import Projection, project

__all__ = ["Projection", "project"]
