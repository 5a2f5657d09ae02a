"""Learning-rate schedules the official codes use that torch does not ship by name."""

from __future__ import annotations

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

__all__ = ["LinearDecay"]


class LinearDecay(LambdaLR):
    """Constant learning rate, then a linear decay to 0 over the last ``decay_epochs`` of ``total_epochs``.

    Stepped once per epoch. After epoch ``e`` (1-based) the factor is ``1 − max(0, e − (total − decay)) / decay``,
    as PSGAN's solver (``wtjiang98/PSGAN: psgan/solver.py``, ``NUM_EPOCHS_DECAY``) and pix2pixHD / MaskGAN
    (``niter`` + ``niter_decay``, ``switchablenorms/CelebAMask-HQ: MaskGAN_demo/models/pix2pixHD_model.py
    update_learning_rate``) decay it.

    Args:
        optimizer: the optimizer.
        total_epochs: the run's epochs (``${trainer.max_epochs}`` in configs).
        decay_epochs: epochs of decay at the end (0 = constant).

    Example:
        >>> import torch
        >>> opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
        >>> sched = LinearDecay(opt, total_epochs=4, decay_epochs=2)
        >>> lrs = []
        >>> for _ in range(4):
        ...     opt.step(); sched.step(); lrs.append(opt.param_groups[0]["lr"])
        >>> lrs
        [1.0, 1.0, 0.5, 0.0]
    """

    def __init__(self, optimizer: Optimizer, total_epochs: int, decay_epochs: int, last_epoch: int = -1):
        if total_epochs is None or decay_epochs < 0 or total_epochs < decay_epochs:
            raise ValueError(f"LinearDecay needs 0 <= decay_epochs <= total_epochs, got decay_epochs={decay_epochs}, "
                             f"total_epochs={total_epochs}")
        self.total_epochs, self.decay_epochs = int(total_epochs), int(decay_epochs)
        super().__init__(optimizer, self.factor, last_epoch=last_epoch)

    def factor(self, epochs_done: int) -> float:
        """The learning-rate factor after ``epochs_done`` epochs."""
        if not self.decay_epochs:
            return 1.0
        return max(0.0, 1.0 - max(0, epochs_done - (self.total_epochs - self.decay_epochs)) / self.decay_epochs)
