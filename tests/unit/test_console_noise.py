"""Dependency warnings that say nothing to an mlgen user are dropped; others still reach them."""

from __future__ import annotations

import warnings

from pytorch_lightning.utilities import rank_zero_warn

from mlgen.tasks.report import quiet_dependency_noise


def test_noise_is_dropped_and_other_warnings_are_kept():
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        quiet_dependency_noise()
        rank_zero_warn("Found 26 module(s) in eval mode at the start of training. This may lead to unexpected behavior")
        rank_zero_warn("The `srun` command is available on your system but is not used. HINT: ...")
        rank_zero_warn("The dataloader does not have many workers which may be a bottleneck.")
    assert [str(w.message) for w in seen] == ["The dataloader does not have many workers which may be a bottleneck."]
