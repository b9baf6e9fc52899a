"""ArrayDataModule on `[D]`-shaped rows: seeded splits, the train_fraction subset, both loader paths,
DDP shards, the modality hook and the contract's errors."""

from __future__ import annotations

import pytest
import torch

from mlgen.data.arrays import Arrays, ArrayDataModule
from mlgen.errors import ConfigError, DataError

WIDTH = 6


class Rows(ArrayDataModule):
    """`n_train` + `n_test` rows of WIDTH values; row i holds i * WIDTH ... i * WIDTH + 5 and label i % 3,
    so every row can be traced back to its source index (`row_ids`)."""

    def __init__(self, n_train: int = 100, n_test: int = 30, **kwargs) -> None:
        kwargs.setdefault("shape", (WIDTH,))
        kwargs.setdefault("num_classes", 3)
        super().__init__(**kwargs)
        self.n_train, self.n_test = n_train, n_test

    def load_splits(self) -> dict[str, Arrays]:
        ids = torch.arange(self.n_train + self.n_test)
        x = (ids[:, None] * WIDTH + torch.arange(WIDTH)).to(torch.int32)  # raw arrays need not be float
        return {"train": (x[: self.n_train], ids[: self.n_train] % 3), "test": (x[self.n_train :], ids[self.n_train :] % 3)}


def row_ids(x: torch.Tensor) -> list[int]:
    return (x[:, 0] / WIDTH).long().tolist()


def ready(**kwargs) -> Rows:
    dm = Rows(**kwargs)
    dm.setup("fit")
    return dm


def test_seeded_split_is_deterministic_disjoint_and_complete():
    dm = ready(val_fraction=0.2, split_seed=4)
    sizes = {name: len(ds) for name, ds in dm.datasets.items()}
    assert sizes == {"train": 80, "val": 20, "test": 30}
    (x_train, y_train), (x_val, y_val), (x_test, y_test) = (dm.datasets[s].tensors for s in ("train", "val", "test"))
    assert x_train.dtype == torch.float32 and x_train.shape == (80, WIDTH) and y_train.dtype == torch.long
    train, val = row_ids(x_train), row_ids(x_val)
    assert not set(train) & set(val) and sorted(train + val) == list(range(100))
    assert row_ids(x_test) == list(range(100, 130))  # the source's test split, whole and in order
    for x, y in ((x_train, y_train), (x_val, y_val), (x_test, y_test)):  # rows keep their labels
        assert torch.equal(y, torch.tensor(row_ids(x)) % 3)
    again = ready(val_fraction=0.2, split_seed=4)
    assert row_ids(again.datasets["val"].tensors[0]) == val and row_ids(again.datasets["train"].tensors[0]) == train
    other = ready(val_fraction=0.2, split_seed=5)
    assert row_ids(other.datasets["val"].tensors[0]) != val


def test_train_fraction_keeps_a_seeded_subset_of_the_same_training_split():
    full = ready(val_fraction=0.2, split_seed=4)
    quarter = ready(val_fraction=0.2, split_seed=4, train_fraction=0.25)
    small = row_ids(quarter.datasets["train"].tensors[0])
    assert len(small) == 20 and set(small) < set(row_ids(full.datasets["train"].tensors[0]))
    assert torch.equal(quarter.datasets["val"].tensors[0], full.datasets["val"].tensors[0])  # val never shrinks
    assert small == row_ids(ready(val_fraction=0.2, split_seed=4, train_fraction=0.25).datasets["train"].tensors[0])
    assert len(ready(train_fraction=0.001).datasets["train"]) == 1  # never empty


def test_two_rank_shards_interleave_into_exactly_the_batches_of_one_process_with_twice_the_batch():
    dm = ready(val_fraction=0.2)  # 80 training rows: 10 batches of 8, or 2 x 10 batches of 4
    single = dm.in_memory_loader("train", shuffle=True, batch_size=8, seed=11)
    ranks = [dm.in_memory_loader("train", shuffle=True, batch_size=4, seed=11, rank=r, world_size=2) for r in (0, 1)]
    for epoch in (0, 1):
        for loader in (single, *ranks):
            loader.sampler.set_epoch(epoch)
        batches = list(single)
        assert len(batches) == len(ranks[0]) == len(ranks[1]) == 10
        for (x, y), (x0, y0), (x1, y1) in zip(batches, *ranks):
            assert torch.equal(torch.stack([x0, x1], dim=1).flatten(0, 1), x)  # row 2i from rank 0, 2i+1 from rank 1
            assert torch.equal(torch.stack([y0, y1], dim=1).flatten(), y)
    assert row_ids(torch.cat([x for x, _ in single])) != row_ids(dm.datasets["train"].tensors[0])  # shuffled


@pytest.mark.parametrize("split", ["train", "val", "test"])
def test_dataloader_and_in_memory_paths_give_the_same_rows(split):
    def rows(in_memory: bool) -> tuple[torch.Tensor, torch.Tensor]:
        dm = ready(in_memory=in_memory, batch_size=16, eval_batch_size=7, val_fraction=0.2)
        batches = list(getattr(dm, f"{split}_dataloader")())
        first_x, first_y = batches[0]
        assert first_x.shape == (16 if split == "train" else 7, WIDTH) and first_x.dtype == torch.float32
        assert first_y.dtype == torch.long
        x, y = torch.cat([b[0] for b in batches]), torch.cat([b[1] for b in batches])
        order = x[:, 0].argsort()
        return x[order], y[order]

    x_mem, y_mem = rows(True)
    x_loader, y_loader = rows(False)
    assert torch.equal(x_mem, x_loader) and torch.equal(y_mem, y_loader)
    assert len(x_mem) == {"train": 80, "val": 20, "test": 30}[split]


class StandardisedRows(Rows):
    """A modality whose preparation learns from data: standardised with the training split's statistics."""

    def prepare_splits(self, splits: dict[str, Arrays]) -> dict[str, Arrays]:
        x_train = splits["train"][0].double()
        mean, std = x_train.mean(0), x_train.std(0)
        return {name: (((x.double() - mean) / std).float(), y) for name, (x, y) in splits.items()}


def test_prepare_splits_fits_on_the_training_split_only():
    dm = StandardisedRows(val_fraction=0.2)
    dm.setup("fit")
    x_train, x_test = dm.datasets["train"].tensors[0], dm.datasets["test"].tensors[0]
    assert x_train.mean(0).abs().max() < 1e-5 and (x_train.std(0) - 1).abs().max() < 1e-5
    assert x_test.mean(0).min() > 1.0  # rows 100..129 lie above every training row: not re-centred


@pytest.mark.parametrize(
    ("kwargs", "error", "expected"),
    [
        ({"shape": (5,)}, ConfigError, r"data.shape=\[5\] is invalid: the examples of Rows have shape \[6\]. Fix: set data.shape=\[6\]"),
        ({"num_classes": 2}, ConfigError, r"data.num_classes=2 is invalid: the train split of Rows has the label 2. Fix: set data.num_classes=3"),
        ({"shape": ()}, ConfigError, r"data.shape=\[\] is invalid: .*Fix: e.g. data.shape=\[30\]"),
        ({"shape": (6, 0)}, ConfigError, r"data.shape=\[6, 0\] is invalid"),
        ({"num_classes": 0}, ConfigError, r"data.num_classes=0 is invalid"),
        ({"eval_batch_size": 0}, ConfigError, r"data.eval_batch_size=0 is invalid"),
        ({"num_workers": -1}, ConfigError, r"data.num_workers=-1 is invalid: it must be an integer >= 0. Fix: set data.num_workers=0"),
        ({"val_fraction": 1.0}, ConfigError, r"data.val_fraction=1.0 is invalid"),
        ({"train_fraction": float("nan")}, ConfigError, r"data.train_fraction=nan is invalid"),
    ],
)
def test_bad_options_and_mismatched_data_name_the_value_and_the_fix(kwargs, error, expected):
    with pytest.raises(error, match=expected):
        ready(**kwargs)


class BrokenRows(Rows):
    def __init__(self, fault: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.fault = fault

    def load_splits(self) -> dict[str, Arrays]:
        splits = super().load_splits()
        x, y = splits["test"]
        if self.fault == "nan":
            x = x.float()
            x[3, 2] = float("nan")
        elif self.fault == "negative label":
            y = y.clone()
            y[0] = -1
        else:
            y = y[:-1]
        splits["test"] = (x, y)
        return splits


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        ("nan", r"The test split of BrokenRows holds NaN or infinite values. Fix"),
        ("negative label", r"The test split of BrokenRows has the label -1; labels must be 0..2. Fix"),
        ("short labels", r"The test split of BrokenRows has 30 examples but 29 labels. Fix"),
    ],
)
def test_bad_arrays_are_refused_with_the_split_named(fault, expected):
    with pytest.raises(DataError, match=expected):
        BrokenRows(fault).setup("fit")
