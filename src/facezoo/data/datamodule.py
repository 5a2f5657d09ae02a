"""One LightningDataModule for every dataset: a dataset factory called once per split."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Mapping

import lightning as L
from torch.utils.data import DataLoader, Dataset, DistributedSampler

__all__ = ["FaceDataModule", "ResumableDataLoader", "ResumableSampler"]


class ResumableSampler(DistributedSampler):
    """A :class:`~torch.utils.data.DistributedSampler` (its order a function of ``(seed, epoch)`` only) that can
    start an epoch part way: the next ``iter`` skips the first ``start`` indices of this rank's order, then
    ``start`` goes back to 0. :class:`ResumableDataLoader` sets it when Lightning resumes mid-epoch."""

    start = 0

    def __iter__(self) -> Iterator[int]:
        start, self.start = self.start, 0
        return itertools.islice(super().__iter__(), start, None)


class ResumableDataLoader(DataLoader):
    """The training DataLoader, resumable mid-epoch through Lightning's stateful-dataloader protocol (the
    ``state_dict`` / ``load_state_dict`` of the loaders it iterates are stored in the checkpoint's loop state).

    The state is the sampler's epoch and how many batches of it the training loop has *run*, read from
    ``batches_run`` (set by :class:`FaceDataModule` to the Trainer's progress; Lightning fetches a batch ahead, and
    workers further, so counting what the iterator yielded would skip batches that were never trained on). Loading
    it makes the next epoch's iterator start after those batches, in that epoch's order: a run killed and resumed
    from a mid-epoch checkpoint trains on the batches the uninterrupted run trains on. Needs a
    :class:`ResumableSampler`.
    """

    batches_run: Callable[[], int] = staticmethod(lambda: 0)
    epoch_length: Callable[[], float] = staticmethod(lambda: float("inf"))

    def state_dict(self) -> dict[str, int]:
        run, epoch = self.batches_run(), self.sampler.epoch
        if run >= self.epoch_length():      # saved at the end of an epoch: the next one starts from its beginning
            run, epoch = 0, epoch + 1
        return {"epoch": epoch, "batches": run}

    def load_state_dict(self, state: Mapping[str, int]) -> None:
        self.sampler.set_epoch(int(state["epoch"]))
        self.sampler.start = int(state["batches"]) * self.batch_size


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
        seed: shuffling seed; the order of epoch ``e`` is a function of ``(seed, e)`` only, and the training
            loader is resumable mid-epoch (:class:`ResumableDataLoader`), so a run resumed from any checkpoint
            trains on the same batches as an uninterrupted one, on one process or many.

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

    def _world(self) -> tuple[int, int]:
        trainer = self.trainer
        return (trainer.world_size, trainer.global_rank) if trainer is not None else (1, 0)

    def _loader_settings(self) -> dict:
        return dict(batch_size=self.batch_size, num_workers=self.num_workers, pin_memory=self.pin_memory,
                    persistent_workers=self.num_workers > 0)

    def train_dataloader(self) -> ResumableDataLoader:
        ds = self.dataset("train")
        sampler = ResumableSampler(ds, *self._world(), shuffle=True, seed=self.seed, drop_last=True)
        loader = ResumableDataLoader(ds, sampler=sampler, drop_last=True, **self._loader_settings())
        trainer = self.trainer
        if trainer is not None:
            loader.batches_run = lambda: trainer.fit_loop.epoch_loop.batch_progress.current.processed
            loader.epoch_length = lambda: trainer.num_training_batches
        return loader

    def _evaluation_loader(self, split: str) -> DataLoader:
        ds = self.dataset(split)
        world, rank = self._world()
        sampler = DistributedSampler(ds, num_replicas=world, rank=rank, shuffle=False) if world > 1 else None
        return DataLoader(ds, sampler=sampler, **self._loader_settings())

    def val_dataloader(self) -> DataLoader:
        return self._evaluation_loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._evaluation_loader("test")
