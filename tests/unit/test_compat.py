"""Every function of mlgen/compat.py against the installed Lightning and Hydra, with real objects.

A Lightning or Hydra upgrade that renames one of the private attributes compat.py reads, or changes what
it means, fails here by name instead of deep inside a training run. The last test keeps such
attributes out of the rest of mlgen.
"""

from __future__ import annotations

import csv
import ast
import re
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from hydra import compose, initialize
from hydra._internal.callbacks import Callbacks  # the callback list a launcher hands to run_job
from hydra.core.global_hydra import GlobalHydra
from hydra.core.utils import JobReturn, JobStatus, run_job
from hydra.types import HydraContext
from pytorch_lightning.loggers import CSVLogger
from torch.utils.data import DataLoader, TensorDataset

from mlgen.compat import (
    attached_trainer,
    batches_stepped,
    count_stepped_batch,
    failed_job_error,
    hpc_checkpoint_path,
    loggers_write_this_step,
    optuna_search_space,
    optuna_trial_id,
    processed_training_batches,
)

REPO = Path(__file__).resolve().parents[2]
BATCHES_PER_EPOCH = 7


class Probe(pl.LightningModule):
    """A linear model that records what compat.py says at each training step."""

    def __init__(self) -> None:
        super().__init__()
        self.net = torch.nn.Linear(2, 1)
        self.attached: list[bool] = []
        self.write_steps: list[int] = []
        self.processed: list[tuple[int, int, int]] = []  # (epoch, batch_idx, processed) after each batch
        self.stepped: list[int] = []  # batches stepped before each training step

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        self.attached.append(attached_trainer(self) is self.trainer)
        self.stepped.append(batches_stepped(self.trainer))
        if loggers_write_this_step(self.trainer):
            self.write_steps.append(self.global_step)
        loss = torch.nn.functional.mse_loss(self.net(batch[0]), batch[1])
        self.log("probe", loss, on_step=True, on_epoch=False)
        return loss

    def on_train_batch_end(self, outputs: object, batch: object, batch_idx: int) -> None:
        self.processed.append((self.current_epoch, batch_idx, processed_training_batches(self.trainer)))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.01)

    def train_dataloader(self) -> DataLoader:
        data = TensorDataset(torch.randn(4 * BATCHES_PER_EPOCH, 2), torch.randn(4 * BATCHES_PER_EPOCH, 1))
        return DataLoader(data, batch_size=4)


def fit(tmp_path: Path, **trainer_args: object) -> tuple[Probe, pl.Trainer]:
    module = Probe()
    trainer = pl.Trainer(accelerator="cpu", devices=1, default_root_dir=tmp_path, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, **trainer_args)
    trainer.fit(module)
    return module, trainer


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Probe, pl.Trainer, Path]:
    """2 epochs of 7 batches, loggers writing every 3rd step through a real CSV logger."""
    root = tmp_path_factory.mktemp("fit")
    module, trainer = fit(root, max_epochs=2, log_every_n_steps=3, logger=CSVLogger(root, name="csv", version=0))
    return module, trainer, root / "csv" / "version_0" / "metrics.csv"


def test_attached_trainer_is_the_fitting_trainer_and_none_outside_a_run(fitted):
    module, _, _ = fitted
    assert module.attached == [True] * 2 * BATCHES_PER_EPOCH
    standalone = Probe()
    assert attached_trainer(standalone) is None  # where the public `module.trainer` raises
    with pytest.raises(RuntimeError):
        standalone.trainer  # noqa: B018


def test_loggers_write_on_the_steps_lightning_writes(fitted):
    module, _, metrics_csv = fitted
    # every 3rd of the 14 steps (global steps counted from 0: 2, 5, 8, 11) ...
    assert module.write_steps == [2, 5, 8, 11]
    # ... exactly the steps Lightning's CSV logger wrote `probe` for
    with open(metrics_csv) as f:
        written = [int(row["step"]) for row in csv.DictReader(f) if row["probe"]]
    assert written == module.write_steps


def test_loggers_write_every_step_under_fast_dev_run(tmp_path):
    module, _ = fit(tmp_path, fast_dev_run=3)
    assert module.write_steps == [0, 1, 2]


def test_processed_training_batches_counts_the_batches_of_the_current_epoch(fitted):
    module, _, _ = fitted
    assert module.processed == [(epoch, i, i + 1) for epoch in range(2) for i in range(BATCHES_PER_EPOCH)]


def test_batches_stepped_counts_the_run_s_batches_and_count_stepped_batch_adds_one(fitted):
    module, trainer, _ = fitted
    assert module.stepped == list(range(2 * BATCHES_PER_EPOCH))  # the 0-based step the loggers write at
    before = batches_stepped(trainer)
    count_stepped_batch(trainer)
    assert batches_stepped(trainer) == before + 1 == 2 * BATCHES_PER_EPOCH + 1


def test_hpc_checkpoint_path_numbers_the_next_file(fitted, tmp_path):
    _, trainer, _ = fitted
    first = hpc_checkpoint_path(trainer, str(tmp_path))
    assert Path(first) == tmp_path / "hpc_ckpt_1.ckpt"
    trainer.save_checkpoint(first)
    assert Path(hpc_checkpoint_path(trainer, str(tmp_path))) == tmp_path / "hpc_ckpt_2.ckpt"


def test_failed_job_error_is_the_exception_of_a_real_failed_hydra_job(tmp_path):
    error = ValueError("diverged: loss is nan")

    def task(cfg: object) -> None:
        raise error

    with initialize(version_base="1.3"):
        cfg = compose(overrides=[f"hydra.run.dir={tmp_path}", "+lr=0.1"], return_hydra_config=True)
        context = HydraContext(config_loader=GlobalHydra.instance().config_loader(), callbacks=Callbacks())
        job_return = run_job(task, cfg, "hydra.run.dir", None, context, configure_logging=False)
    assert job_return.status == JobStatus.FAILED
    assert failed_job_error(job_return) is error
    with pytest.raises(ValueError, match="diverged"):  # why compat.py exists: the public property re-raises
        job_return.return_value


def test_optuna_trial_id_opens_the_same_trial_of_a_stored_study(tmp_path):
    optuna = pytest.importorskip("optuna")
    storage = f"sqlite:///{tmp_path}/optuna.db"
    study = optuna.create_study(study_name="s", storage=storage)
    asked = [study.ask() for _ in range(3)]
    # what a trial's job does: open the study anew and report to its own trial
    trial = optuna.trial.Trial(optuna.load_study(study_name="s", storage=storage), optuna_trial_id(study.trials[1]))
    trial.report(0.5, step=0)
    assert trial.number == asked[1].number == 1 and optuna_trial_id(asked[1]) == optuna_trial_id(study.trials[1])
    assert optuna.load_study(study_name="s", storage=storage).trials[1].intermediate_values == {0: 0.5}


def test_optuna_search_space_parses_sweep_overrides_as_the_optuna_sweeper_does():
    optuna = pytest.importorskip("optuna")
    space, fixed = optuna_search_space(["lr=tag(log, interval(1e-4, 1e-2))", "bs=choice(32, 64)", "epochs=3"])
    assert isinstance(space["lr"], optuna.distributions.LogUniformDistribution) and space["lr"].high == 1e-2
    assert space["bs"].choices == (32, 64) and fixed == {"epochs": "3"}


def private_names_of_dependencies(trainer: pl.Trainer) -> set[str]:
    """`_name` attributes of the Lightning and Hydra objects mlgen subclasses or holds."""
    from hydra.experimental.callback import Callback as HydraCallback
    from pytorch_lightning.strategies import DDPStrategy

    objects = (pl.LightningModule(), pl.LightningDataModule(), pl.Callback(), trainer, DDPStrategy(),
               JobReturn(), HydraCallback())
    return {name for obj in objects for name in {*dir(obj), *vars(obj)} if re.match(r"_[A-Za-z]", name)}


def private_reads(source: str, dependency_names: set[str]) -> list[tuple[int, str]]:
    """Lines reading `obj._name` of another object (anything but `self`/`cls`), or `self._name` where
    `_name` belongs to a Lightning/Hydra base class. mlgen's own `self._x` attributes are fine. Read from
    the syntax tree, so docstrings and comments that mention a config key like `x._target_` don't count."""
    lines = source.splitlines()
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and re.match(r"_[A-Za-z]", node.attr):
            value = node.value
            is_super = isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id == "super"
            owner = "self" if is_super else value.id if isinstance(value, ast.Name) else None  # super(): a base of self
            if owner not in ("self", "cls") or node.attr in dependency_names:
                found.add((node.lineno, lines[node.lineno - 1].strip()))
    return sorted(found)


def test_private_attributes_of_dependencies_appear_only_in_compat(fitted):
    names = private_names_of_dependencies(fitted[1])
    offenders = [f"{path.relative_to(REPO)}:{number}: {line}"
                 for path in sorted((REPO / "mlgen").rglob("*.py")) if path != REPO / "mlgen" / "compat.py"
                 for number, line in private_reads(path.read_text(), names)]
    assert offenders == [], ("private Lightning/Hydra attributes (or mlgen attributes shadowing them) outside "
                             "mlgen/compat.py:\n" + "\n".join(offenders))


def test_the_private_attribute_scan_is_not_blind(fitted):
    names = private_names_of_dependencies(fitted[1])
    compat = private_reads((REPO / "mlgen" / "compat.py").read_text(), names)
    assert [line for _, line in compat] == [
        "return module._trainer",
        "return bool(trainer.fast_dev_run or trainer._logger_connector.should_update_logs)",
        "return trainer.fit_loop.epoch_loop._batches_that_stepped",
        "trainer.fit_loop.epoch_loop._batches_that_stepped += 1",
        "return trainer._checkpoint_connector.hpc_save_path(folder)",
        "return job_return._return_value",
        "return trial._trial_id",
    ]
    # a LightningModule subclass reaching into its base, and mlgen's own attributes, which are fine
    assert private_reads("self._trainer = None\nself._current_fx_name\n", names) == [
        (1, "self._trainer = None"), (2, "self._current_fx_name")]
    assert private_reads("self._train_sums = {}\nself._watch(model)\n", names) == []
