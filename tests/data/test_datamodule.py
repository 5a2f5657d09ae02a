"""FaceDataModule's loaders: the training loader's order and its mid-epoch state (Lightning's stateful protocol)."""

from __future__ import annotations

import torch
from torch.utils.data import TensorDataset

from facezoo.data.datamodule import FaceDataModule, ResumableDataLoader


def numbers(split: str, length: int) -> TensorDataset:
    return TensorDataset(torch.arange(length))


def epoch_batches(loader, epoch: int) -> list[list[int]]:
    loader.sampler.set_epoch(epoch)
    return [batch[0].tolist() for batch in loader]


def test_the_training_loader_resumes_mid_epoch_in_that_epochs_order():
    """State after 3 of 5 batches of epoch 1, loaded into a new loader: the rest of epoch 1 in its own order (not
    epoch 0's), then whole epochs again. Saved at an epoch's end, the state starts the next epoch from its start."""
    dm = FaceDataModule(numbers, {"train": {"length": 22}}, batch_size=4, seed=7)
    loader = dm.train_dataloader()
    assert isinstance(loader, ResumableDataLoader) and len(loader) == 5  # drop_last: 22 // 4
    epoch1 = epoch_batches(loader, 1)
    assert epoch1 != epoch_batches(loader, 0) and epoch1 == epoch_batches(dm.train_dataloader(), 1)

    loader.sampler.set_epoch(1)  # as Lightning does at the start of epoch 1
    loader.batches_run, loader.epoch_length = (lambda: 3), (lambda: 5)
    state = loader.state_dict()
    assert state == {"epoch": 1, "batches": 3}
    resumed = dm.train_dataloader()
    resumed.load_state_dict(state)
    assert [batch[0].tolist() for batch in resumed] == epoch1[3:]
    assert [batch[0].tolist() for batch in resumed] == epoch1  # the skip is for the resumed epoch only

    loader.batches_run = lambda: 5
    assert loader.state_dict() == {"epoch": 2, "batches": 0}


def test_evaluation_loaders_keep_every_sample_in_order():
    dm = FaceDataModule(numbers, {"val": {"length": 10}, "test": {"length": 6}}, batch_size=4)
    assert [b[0].tolist() for b in dm.val_dataloader()] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert sum(len(b[0]) for b in dm.test_dataloader()) == 6
