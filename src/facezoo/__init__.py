"""facezoo: a PyTorch Lightning model zoo for face synthesis with GANs."""

__version__ = "0.1.0"


def load(ckpt_path, data_overrides=None, map_location="cpu", trust=False):
    """Load a trained facezoo checkpoint for notebooks: returns ``(model, datamodule, config)``.

    The model is in eval mode; ``model.predict_batch(batch)`` gives its outputs and
    ``datamodule.dataset("test")`` the samples it was meant for (:func:`facezoo.checkpoints.load`). The file is
    read with ``torch.load(weights_only=True)``; ``trust=True`` unpickles a file that needs more (trusted files only).
    """
    from facezoo.checkpoints import load as _load

    return _load(ckpt_path, data_overrides=data_overrides, map_location=map_location, trust=trust)
