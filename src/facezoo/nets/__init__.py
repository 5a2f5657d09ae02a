"""Pretrained feature networks and the one weight resolver.

=====================  ==============================================  ======================
network                use                                             weights (registry name)
=====================  ==============================================  ======================
:class:`VGGFeatures`   perceptual / feature losses                     ``vgg16``, ``vgg19``
:func:`lpips_network`  LPIPS loss and metric                           ``alexnet`` (+ wheel heads)
:class:`LightCNN29v2`  TP-GAN identity loss, rank-1 identity metric    ``lightcnn29_v2``
:class:`IRSE50`        pSp ID loss and encoder body, ID similarity     ``ir_se50``
:class:`FIDInceptionV3`  FID                                           ``fid_inception``
=====================  ==============================================  ======================

Identity networks share one protocol: ``net.embed(images)`` takes facezoo images (B, 3, H, W) in [-1, 1]
and returns (B, D) embeddings.
"""

from facezoo.nets.inception import FIDInceptionV3
from facezoo.nets.irse import IRSE50, Backbone, BottleneckIRSE, SEModule, get_blocks
from facezoo.nets.lightcnn import LightCNN29v2, MaxFeatureMap
from facezoo.nets.lpips_net import LPIPSNetwork, lpips_network
from facezoo.nets.vgg import VGGFeatures, vgg_layer_names
from facezoo.nets.weights import (
    WEIGHTS,
    Freezable,
    WeightsNotFoundError,
    WeightSpec,
    cache_dir,
    load_state_dict_file,
    resolve_weights,
)

__all__ = [
    "WEIGHTS",
    "WeightSpec",
    "WeightsNotFoundError",
    "Freezable",
    "cache_dir",
    "resolve_weights",
    "load_state_dict_file",
    "VGGFeatures",
    "vgg_layer_names",
    "LightCNN29v2",
    "MaxFeatureMap",
    "Backbone",
    "IRSE50",
    "BottleneckIRSE",
    "SEModule",
    "get_blocks",
    "FIDInceptionV3",
    "LPIPSNetwork",
    "lpips_network",
]
