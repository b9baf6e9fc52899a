"""A conditional GAN really learns the 8x8 digits: its classifier-feature FID falls to a fifth of the
untrained one, a classifier recognises the requested class in its samples, and `mlgen-sample` and
`mlgen-eval` rebuild it from the checkpoint alone, sampling from the EMA generator."""

from __future__ import annotations

import pytest
import torch

from mlgen.checkpoints.load import load_model
from mlgen.metrics.label_agreement import label_agreement
from mlgen.tasks.evaluate import evaluate
from mlgen.tasks.sample import sample
from mlgen.tasks.train import train
from tests.helpers.config import CPU_QUICK, compose_config

EPOCHS = 8


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("gan")
    train(compose_config("train", [*CPU_QUICK, "trainer.max_epochs=3", "test=false"], root / "clf"))
    clf = root / "clf" / "checkpoints" / "last.ckpt"
    common = [*CPU_QUICK, "callbacks=default", "experiment=digits_cgan", f"model.metrics.feature_ckpt={clf}"]
    return {
        "clf": clf,
        "init": train(compose_config("train", [*common, "train=false"], root / "init")),
        "gan": train(compose_config("train", [*common, f"trainer.max_epochs={EPOCHS}", "model.monitor=val/fid_clf"], root / "gan")),
    }


@pytest.mark.slow
def test_conditional_gan_learns_the_digits(runs):
    init, gan = runs["init"].metrics, runs["gan"].metrics
    assert gan["test/fid_clf"] <= init["test/fid_clf"] / 5, (init, gan)
    assert gan["test/kid_clf"] < init["test/kid_clf"] / 5
    assert init["test/label_agreement"] < 0.3 and gan["test/label_agreement"] >= 0.8
    # the checkpoint kept is the one with the lowest val/fid_clf, and it is what the sweep objective reports
    assert runs["gan"].objective_name == "val/fid_clf"
    assert runs["gan"].best_checkpoint and "epoch_" in runs["gan"].best_checkpoint
    assert runs["gan"].objective <= gan["val/fid_clf"]


@pytest.mark.slow
def test_sampling_uses_the_ema_generator_and_draws_the_requested_classes(runs, tmp_path):
    ckpt = runs["gan"].best_checkpoint
    state = torch.load(ckpt, map_location="cpu", weights_only=False)["state_dict"]
    assert not any(k.startswith("quality.") for k in state)  # the judging classifier is not copied in
    out = tmp_path / "grid.png"
    cfg = compose_config("sample", [f"ckpt_path={ckpt}", "n=200", "labels=[0,1,2,3,4,5,6,7,8,9]", "nrow=10",
                                    f"out={out}", "save_tensor=true", "seed=5"], tmp_path / "sample")
    sample(cfg)
    saved = torch.load(out.with_suffix(".pt"), weights_only=True)
    assert out.is_file() and saved["samples"].shape == (200, 1, 8, 8)

    gan, _ = load_model(ckpt)
    gan.eval()
    torch.manual_seed(5)
    z = torch.randn(200, gan.hparams.latent_dim)
    with torch.no_grad():
        assert torch.equal(saved["samples"], gan.generator_ema.module(z, saved["labels"]))
        assert not torch.allclose(saved["samples"], gan.generator(z, saved["labels"]), atol=1e-3)
        classifier, _ = load_model(str(runs["clf"]))
        predicted = classifier.eval()(saved["samples"]).argmax(1)
    assert (predicted == saved["labels"]).float().mean() >= 0.8
    assert label_agreement(gan, classifier, num_classes=10, n_per_class=50) >= 0.8


@pytest.mark.slow
def test_eval_recomputes_the_quality_metrics_from_the_checkpoint(runs, tmp_path):
    ckpt = runs["gan"].best_checkpoint
    result = evaluate(compose_config("eval", [f"ckpt_path={ckpt}", "trainer=cpu", "trainer.enable_progress_bar=false"],
                                     tmp_path / "eval"))
    trained = runs["gan"].metrics
    # same model and test images; only the noise differs, so the scores agree closely
    assert result.metrics["test/fid_clf"] == pytest.approx(trained["test/fid_clf"], rel=0.25)
    assert result.metrics["test/label_agreement"] == pytest.approx(trained["test/label_agreement"], abs=0.05)
