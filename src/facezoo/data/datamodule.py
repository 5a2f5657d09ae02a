"""One LightningDataModule for every dataset: a dataset factory called once per split."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import lightning as L
from torch.utils.data import DataLoader, Dataset, DistributedSampler

__all__ = ["FaceDataModule"]


class FaceDataModule(L.LightningDataModule):
    """Builds ``dataset(split=name, **splits[name])`` for the train/val/test splits.

    Args:
        dataset: a factory (Hydra ``_partial_: true``) taking ``split`` plus the split's keyword arguments.
        splits: per-split keyword arguments, e.g. ``{"train": {"length": 4000, "num_identities": 200}}``.
        size: image side of the samples (models read it to size themselves).
        num_classes: identity classes of the train split (for identity-classification heads).
        batch_size, num_workers: DataLoader settings (per process under DDP); ``batch_size >= 1``,
            ``num_workers >= 0`` (a bad value is a one-line ``ValueError`` at construction).
        root: the dataset directory of file-based datasets; only used through interpolation
            (``dataset.root: ${..root}`` in conf/data/*.yaml, so ``data.root=DIR`` works), ignored here.
        seed: shuffling seed; the order of epoch ``e`` is a function of ``(seed, e)`` only, so a resumed
            run sees the same batches as an uninterrupted one, on one process or many.

    Example:
        >>> from functools import partial
        >>> from facezoo.data.synthetic import SyntheticFrontalization
        >>> dm = FaceDataModule(partial(SyntheticFrontalization, size=64), {"train": {"length": 8}})
    """

    def __init__(self, dataset: Callable[..., Dataset], splits: Mapping[str, Mapping] | None = None,
                 size: int = 128, num_classes: int | None = None, batch_size: int = 8,
                 num_workers: int = 0, seed: int = 0, pin_memory: bool = False, root: str | None = None):
        super().__init__()
        for name, value, least in (("size", size, 1), ("batch_size", batch_size, 1), ("num_workers", num_workers, 0)):
            if not isinstance(value, int) or isinstance(value, bool) or value < least:
                raise ValueError(f"data.{name} must be an integer >= {least}, got {value!r}")
        self.dataset_factory = dataset
        self.splits = {k: dict(v or {}) for k, v in (splits or {}).items()}
        self.size = size
        self.num_classes = num_classes
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.seed = seed
        self.pin_memory = pin_memory
        self.root = root
        self._datasets: dict[str, Dataset] = {}

    def dataset(self, split: str) -> Dataset:
        """The dataset of ``split``, built on first use."""
        if split not in self._datasets:
            if split not in self.splits:
                raise KeyError(f"no {split!r} split configured (data.splits has {sorted(self.splits)})")
            self._datasets[split] = self.dataset_factory(split=split, **self.splits[split])
        return self._datasets[split]

    def setup(self, stage: str | None = None) -> None:
        wanted = {"fit": ("train", "val"), "validate": ("val",), "test": ("test",), None: tuple(self.splits)}
        for split in wanted.get(stage, ()):
            if split in self.splits:
                self.dataset(split)

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        ds = self.dataset(split)
        trainer = self.trainer
        world, rank = (trainer.world_size, trainer.global_rank) if trainer is not None else (1, 0)
        sampler = DistributedSampler(ds, num_replicas=world, rank=rank, shuffle=shuffle, seed=self.seed,
                                     drop_last=shuffle) if (shuffle or world > 1) else None
        return DataLoader(ds, batch_size=self.batch_size, sampler=sampler, num_workers=self.num_workers,
                          drop_last=shuffle, pin_memory=self.pin_memory,
                          persistent_workers=self.num_workers > 0)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)
