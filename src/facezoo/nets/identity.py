"""A small face-identity network for synthetic faces: facezoo's offline identity similarity (evaluation tool).

pSp reports the identity similarity of its reconstructions with ArcFace IR-SE50 (``pixel2style2pixel:
scripts/calc_id_loss_parallel.py``), TP-GAN checks identity with LightCNN. Those networks are trained on photos,
their weights are a separate download, and on the renderer's cartoon faces their embeddings say little. So
facezoo trains this network on :mod:`facezoo.data.synthetic` itself (``scripts/train_identity_net.py``), as it
does its landmark detector (:mod:`facezoo.nets.landmarks`), and reports its verification accuracy on held-out
identities next to the similarities it measures (metric ``id_sim_synthetic``, :mod:`facezoo.metrics`).

Architecture: a stride-2 stem, ``depth`` stages of two ``conv3×3 → BN → ReLU`` after a 2× max-pool, global
average pooling, a linear layer to ``dim`` and BatchNorm (the ArcFace / CosFace embedding head); embeddings are
L2-normalised. Training: the CosFace large-margin cosine loss (Wang et al., CVPR 2018: logits
``s·(cos θ_y − m)`` for the true class, ``s·cos θ_j`` for the others) over the training identities, on faces
seen in random pose, expression, light, makeup and background, half of them blurred.

Weights: a checkpoint written by :meth:`~facezoo.nets.weights.PackagedNet.save_checkpoint`; the default file is
resolved as ``"synthetic_identity"`` by :func:`facezoo.nets.weights.resolve_weights` (an explicit path, the cache
directory, or the file the package ships).

Example:
    >>> net = SyntheticIdentityNet(size=32, width=4, depth=2, dim=8)
    >>> net.embed(torch.zeros(2, 3, 48, 48)).shape     # any input size: resized to ``size``
    torch.Size([2, 8])
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from facezoo.nets.landmarks import ConvBlock
from facezoo.nets.weights import PackagedNet

__all__ = ["SyntheticIdentityNet", "cosface_loss", "verification_scores", "roc_auc"]


class SyntheticIdentityNet(PackagedNet, nn.Module):
    """CNN face embedding trained on synthetic identities.

    Args:
        size: the side of the square images it works on; other sizes are resized to it (bilinear, antialiased).
        width: channels of the stem (doubled at each stage).
        depth: stride-2 stages after the stem (``size`` divisible by ``2**(depth + 1)``).
        dim: embedding size.

    Shape:
        - :meth:`embed` / ``forward``: ``(B, 3, H, W)`` in [-1, 1] → ``(B, dim)`` unit vectors.
    """

    weights_name = "synthetic_identity"
    kind = "identity-net"

    def __init__(self, size: int = 64, width: int = 16, depth: int = 3, dim: int = 128):
        super().__init__()
        if width < 1 or depth < 1 or dim < 1:
            raise ValueError(f"width, depth and dim must be positive, got {width}, {depth}, {dim}")
        if size % 2 ** (depth + 1):
            raise ValueError(f"size {size} must be divisible by 2**(depth + 1) = {2 ** (depth + 1)}")
        self.config = {"size": int(size), "width": int(width), "depth": int(depth), "dim": int(dim)}
        self.size = size
        chans = [width * 2**i for i in range(depth + 1)]
        self.stem = nn.Sequential(nn.Conv2d(3, chans[0], 3, stride=2, padding=1, bias=False),
                                  nn.BatchNorm2d(chans[0]), nn.ReLU(inplace=True), ConvBlock(chans[0], chans[0]))
        self.stages = nn.ModuleList(nn.Sequential(nn.MaxPool2d(2), ConvBlock(chans[i], chans[i + 1]))
                                    for i in range(depth))
        self.head = nn.Sequential(nn.Linear(chans[-1], dim, bias=False), nn.BatchNorm1d(dim))

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """Unit-length identity embeddings ``(B, dim)`` of ``(B, 3, H, W)`` faces in [-1, 1]."""
        x = self.stem(self.resize_input(images))
        for stage in self.stages:
            x = stage(x)
        return F.normalize(self.head(x.mean((-2, -1))), dim=1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.embed(images)


def cosface_loss(embeddings: torch.Tensor, class_weights: torch.Tensor, labels: torch.Tensor,
                 scale: float = 30.0, margin: float = 0.35) -> torch.Tensor:
    """The CosFace large-margin cosine loss (Wang et al., CVPR 2018, eq. 4).

    Args:
        embeddings: ``(B, D)`` unit vectors; class_weights: ``(K, D)`` (normalised here); labels: ``(B,)`` in
            ``[0, K)``.
        scale, margin: ``s`` and ``m`` (the paper's 64 and 0.35 are for 512-d embeddings of photos; 30 suits
            the small network).

    Returns:
        The mean cross-entropy of ``s·(cos θ − m·onehot)``.
    """
    cosine = embeddings @ F.normalize(class_weights, dim=1).t()
    logits = scale * (cosine - margin * F.one_hot(labels, cosine.shape[1]).to(cosine.dtype))
    return F.cross_entropy(logits, labels)


@torch.no_grad()
def verification_scores(net: nn.Module, images: torch.Tensor, identities: torch.Tensor,
                        batch_size: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """Cosine similarities of every pair of faces, split into same-identity and different-identity pairs.

    Args:
        net: an identity network (``embed`` or ``forward`` giving ``(B, D)``).
        images: ``(N, 3, H, W)`` in [-1, 1]; identities: ``(N,)`` labels.

    Returns:
        ``(same, different)``: 1-D tensors of the similarities of the ``i < j`` pairs.
    """
    embed = getattr(net, "embed", net)
    emb = F.normalize(torch.cat([embed(chunk) for chunk in images.split(batch_size)]), dim=1)
    sim = emb @ emb.t()
    upper = torch.ones_like(sim, dtype=torch.bool).triu(1)
    same = identities[:, None] == identities[None, :]
    return sim[upper & same], sim[upper & ~same]


def roc_auc(positive: torch.Tensor, negative: torch.Tensor) -> float:
    """Area under the ROC curve of scores that should be higher for ``positive`` (Mann-Whitney U, ties ½)."""
    if positive.numel() == 0 or negative.numel() == 0:
        raise ValueError("roc_auc needs at least one positive and one negative score")
    scores = torch.cat([positive, negative]).double()
    order = scores.argsort()
    ranks = torch.empty_like(scores)
    ranks[order] = torch.arange(1, len(scores) + 1, dtype=torch.float64)
    for value in scores.unique()[(scores.unique(return_counts=True)[1] > 1)]:     # average ranks of ties
        tied = scores == value
        ranks[tied] = ranks[tied].mean()
    n_pos, n_neg = positive.numel(), negative.numel()
    return float((ranks[:n_pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))
