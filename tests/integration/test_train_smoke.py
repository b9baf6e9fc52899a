from mlgen.tasks.train import train
from tests.helpers.config import CPU_QUICK, compose_config


def test_default_config_trains_digits_to_high_accuracy(tmp_path):
    cfg = compose_config("train", [*CPU_QUICK, "trainer.max_epochs=8"], tmp_path / "run")
    result = train(cfg)
    assert result.metrics["test/acc"] >= 0.95
    assert (tmp_path / "run" / "checkpoints" / "last.ckpt").is_file()
    assert (tmp_path / "run" / "csv" / "metrics.csv").is_file()
