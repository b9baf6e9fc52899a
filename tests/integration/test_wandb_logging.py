"""W&B monitoring, read back from the offline run files with W&B's own reader."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlgen.errors import ConfigError
from mlgen.tasks.evaluate import evaluate
from mlgen.tasks.train import train
from tests.helpers.config import CPU_QUICK, compose_config
from tests.helpers.wandb_runs import offline_run_dirs, read_offline_run

WANDB_QUICK = [*(o for o in CPU_QUICK if not o.startswith("logger=")), "logger=wandb"]


def test_offline_runs_hold_config_per_epoch_metrics_test_summary_best_model_histograms_and_eval(tmp_path):
    out = tmp_path / "run"
    cfg = compose_config("train", [*WANDB_QUICK, "experiment=digits_mlp", "trainer.max_epochs=3", "tags=[sweepless,t1]",
                                   "logger.wandb.log_model=true", "logger.wandb.watch=true",
                                   "logger.wandb.watch_log_freq=10"], out)
    result = train(cfg)

    (run_dir,) = offline_run_dirs(out / "wandb")
    run = read_offline_run(run_dir)
    assert run.exit_code == 0
    assert (run.run["job_type"], run.run["run_group"], run.run["tags"]) == ("train", "digits_mlp", ["sweepless", "t1"])

    # the full composed config, resolved
    assert {"model", "data", "trainer", "callbacks", "seed"} <= set(run.config)
    assert run.config["model"]["optimizer"]["lr"] == cfg.model.optimizer.lr
    assert run.config["data"]["_target_"] == "mlgen.data.digits.DigitsDataModule"
    assert run.config["trainer"]["max_epochs"] == 3

    # val/ metrics once per epoch, train/ and test/ under their prefixes
    val_rows = run.rows_with("val/acc")
    assert [row["epoch"] for row in val_rows] == [0, 1, 2]
    assert all({"val/loss", "val/f1"} <= set(row) for row in val_rows)
    assert len(run.rows_with("train/loss_epoch")) == 3
    assert run.summary["test/acc"] == pytest.approx(result.metrics["test/acc"], abs=1e-6)
    assert max(row["val/acc"] for row in val_rows) == pytest.approx(result.objective, abs=1e-6)

    # the best checkpoint as a model artifact
    best = [a for a in run.artifacts if "best" in a["aliases"]]
    assert len(best) == 1 and best[0]["type"] == "model"
    assert best[0]["metadata"]["original_filename"] == Path(result.best_checkpoint).name
    assert best[0]["metadata"]["score"] == pytest.approx(result.objective, abs=1e-6)

    # watch=true: gradient and parameter histograms
    keys = {key for row in run.history for key in row}
    assert any(k.startswith("gradients/net.") and k.endswith("._type") for k in keys)
    assert any(k.startswith("parameters/net.") and k.endswith("._type") for k in keys)

    # mlgen-eval of the best checkpoint: its own run, typed eval, with the same test metric
    evaluate(compose_config("eval", [f"ckpt_path={result.best_checkpoint}", "logger=wandb",
                                     "trainer.enable_progress_bar=false"], tmp_path / "eval"))
    (eval_dir,) = offline_run_dirs(tmp_path / "eval" / "wandb")
    evaluated = read_offline_run(eval_dir)
    assert evaluated.run["job_type"] == "eval" and evaluated.run["run_id"] != run.run["run_id"]
    assert evaluated.config["ckpt_path"] == result.best_checkpoint
    assert evaluated.summary["test/acc"] == pytest.approx(result.metrics["test/acc"], abs=1e-6)


def test_without_watch_and_log_model_there_are_no_histograms_or_artifacts(tmp_path):
    out = tmp_path / "run"
    train(compose_config("train", [*WANDB_QUICK, "trainer.max_epochs=1", "test=false"], out))
    (run_dir,) = offline_run_dirs(out / "wandb")
    run = read_offline_run(run_dir)
    assert run.artifacts == []
    assert not any(k.startswith(("gradients/", "parameters/")) for row in run.history for k in row)
    assert run.run["job_type"] == "train" and "run_group" not in run.run


@pytest.mark.parametrize(("option", "message"), [
    ("logger.wandb.watch_log=weights", "logger.wandb.watch_log='weights' is invalid"),
    ("logger.wandb.watch_log_freq=0", "logger.wandb.watch_log_freq=0 is invalid"),
    ("+logger.wandb.wacth=true", "unknown option(s) logger.wandb.wacth"),
])
def test_bad_wandb_options_are_named(tmp_path, option, message):
    cfg = compose_config("train", [*WANDB_QUICK, option], tmp_path / "run")
    with pytest.raises(ConfigError, match="Fix:") as err:
        train(cfg)
    assert message in str(err.value)
