"""The in-memory loader: epoch permutations, DDP shards that add up to one big batch, resume skip."""

import torch

from mlgen.data.in_memory import EpochPermutation, InMemoryLoader


def test_permutation_is_seeded_by_seed_and_epoch() -> None:
    sampler = EpochPermutation(100, shuffle=True, seed=7)
    first = sampler.indices()
    assert torch.equal(first, EpochPermutation(100, shuffle=True, seed=7).indices())
    sampler.set_epoch(1)
    assert not torch.equal(first, sampler.indices())
    assert sorted(first.tolist()) == list(range(100))


def test_rank_shards_interleave_into_the_single_process_batches() -> None:
    x = torch.arange(104).float().unsqueeze(1)
    y = torch.arange(104)
    single = InMemoryLoader(x, y, 8, EpochPermutation(104, True, seed=3))
    ranks = [InMemoryLoader(x, y, 4, EpochPermutation(104, True, seed=3, rank=r, world_size=2)) for r in (0, 1)]
    assert len(single) == len(ranks[0]) == len(ranks[1]) == 13
    for (_, y_one), (_, y0), (_, y1) in zip(single, *ranks):
        assert sorted(y_one.tolist()) == sorted(y0.tolist() + y1.tolist())


def test_uneven_training_data_gives_every_rank_the_same_number_of_steps() -> None:
    shards = [EpochPermutation(103, True, seed=3, rank=r, world_size=2).indices() for r in (0, 1)]
    assert len(shards[0]) == len(shards[1]) == 51
    assert not set(shards[0].tolist()) & set(shards[1].tolist())


def test_evaluation_shards_cover_every_sample() -> None:
    shards = [EpochPermutation(10, False, seed=0, rank=r, world_size=4, drop_uneven=False).indices() for r in range(4)]
    assert len({len(s) for s in shards}) == 1
    assert set(torch.cat(shards).tolist()) == set(range(10))


def test_resume_skips_the_batches_already_completed() -> None:
    x, y = torch.randn(40, 2), torch.arange(40)
    full = [b[1] for b in InMemoryLoader(x, y, 10, EpochPermutation(40, True, seed=1))]
    resumed = InMemoryLoader(x, y, 10, EpochPermutation(40, True, seed=1), completed_batches=lambda: 3)
    resumed.load_state_dict({"epoch": 0})
    rest = [b[1] for b in resumed]
    assert len(rest) == 1 and torch.equal(rest[0], full[3])
    assert len(list(resumed)) == 4  # the skip applies to the resumed epoch only


def _labels(loader: InMemoryLoader) -> list[list[int]]:
    return [y.tolist() for _, y in loader]


def test_an_epoch_of_several_passes_is_the_batches_of_as_many_one_pass_epochs() -> None:
    x, y = torch.randn(23, 2), torch.arange(23)  # 23 rows, batch 5: the last batch of each pass holds 3
    one_pass = InMemoryLoader(x, y, 5, EpochPermutation(23, True, seed=4))
    three_passes = InMemoryLoader(x, y, 5, EpochPermutation(23, True, seed=4, passes=3))
    expected = []
    for epoch in (3, 4, 5):
        one_pass.sampler.set_epoch(epoch)
        expected += _labels(one_pass)
    three_passes.sampler.set_epoch(1)
    assert _labels(three_passes) == expected
    assert len(three_passes) == 15 and [len(b) for b in expected[:5]] == [5, 5, 5, 5, 3]


def test_several_passes_shard_by_rank_per_pass_and_resume_inside_a_later_pass() -> None:
    x, y = torch.randn(20, 2), torch.arange(20)
    single = _labels(InMemoryLoader(x, y, 4, EpochPermutation(20, True, seed=2, passes=2)))
    ranks = [_labels(InMemoryLoader(x, y, 2, EpochPermutation(20, True, seed=2, rank=r, world_size=2, passes=2))) for r in (0, 1)]
    assert len(single) == len(ranks[0]) == len(ranks[1]) == 10
    assert [sorted(a + b) for a, b in zip(*ranks)] == [sorted(batch) for batch in single]
    uneven = EpochPermutation(21, True, seed=2, rank=1, world_size=2, passes=2)
    assert len(uneven) == 20 and [len(p) for p in uneven.pass_indices()] == [10, 10]  # each pass drops its 21st row
    resumed = InMemoryLoader(x, y, 4, EpochPermutation(20, True, seed=2, passes=2), completed_batches=lambda: 7)
    resumed.load_state_dict({"epoch": 0})
    assert _labels(resumed) == single[7:]  # the skip crosses the end of the first pass
