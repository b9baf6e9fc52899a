"""How many samples the synthetic datamodule draws, per class and in total."""

import pytest

from mlgen.data.synthetic import class_counts, synthetic_count
from mlgen.errors import ConfigError


def test_balanced_counts_sum_to_size():
    assert class_counts(103, 10, None) == [11, 11, 11, 10, 10, 10, 10, 10, 10, 10]


def test_counts_follow_proportions():
    assert class_counts(100, 4, [1, 1, 2, 0]) == [25, 25, 50, 0]
    assert sum(class_counts(999, 3, [0.2, 0.3, 0.5])) == 999


@pytest.mark.parametrize("bad", [[1, 1], [1, -1, 1], [0, 0, 0]])
def test_bad_proportions_name_the_key(bad):
    with pytest.raises(ConfigError, match=r"data.class_proportions=.*Fix"):
        class_counts(10, 3, bad)


def test_mix_ratio_sets_the_synthetic_share():
    assert synthetic_count(100, 0.0, None) == 0
    assert synthetic_count(100, 0.5, None) == 100
    assert synthetic_count(100, 0.75, None) == 300
    assert synthetic_count(100, 1.0, None) == 100
    assert synthetic_count(100, 1.0, 40) == 40
