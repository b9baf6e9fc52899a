"""Sample quality is a GenerativeModule feature, not a GAN one: with `model.metrics.feature_ckpt` a VAE logs
`val/fid_clf` and `val/kid_clf` every epoch (a CVAE also `val/label_agreement`), and `test/*` once; training
lowers the FID; the judging classifier is not copied into the VAE's checkpoint; `model.ema_decay` gives a VAE
an EMA decoder that follows every optimizer step and that `sample()` uses."""

from __future__ import annotations

import math

import pytest
import torch

from mlgen.checkpoints.load import load_model
from mlgen.tasks.train import train
from tests.helpers.config import CPU_QUICK, compose_config
from tests.helpers.metrics_csv import logged_curve

EPOCHS = 5


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("vae_quality")
    train(compose_config("train", [*CPU_QUICK, "trainer.max_epochs=3", "test=false"], root / "clf"))
    clf = root / "clf" / "checkpoints" / "last.ckpt"
    common = [*CPU_QUICK, "data.batch_size=16", "model.iwae_samples=10", f"model.metrics.feature_ckpt={clf}", "model.metrics.kid_subset_size=50"]
    cvae = [*common, "experiment=digits_cvae", "model.ema_decay=0.9"]
    return {
        "vae": train(compose_config("train", [*common, "experiment=digits_vae", f"trainer.max_epochs={EPOCHS}"], root / "vae")),
        "cvae_init": train(compose_config("train", [*cvae, "train=false", "objective=null"], root / "cvae_init")),
        "cvae": train(compose_config("train", [*cvae, f"trainer.max_epochs={EPOCHS}"], root / "cvae")),
    }


@pytest.mark.slow
def test_a_vae_logs_classifier_fid_and_kid_every_epoch(runs):
    vae = runs["vae"]
    fid, kid = logged_curve(vae, "val/fid_clf"), logged_curve(vae, "val/kid_clf")
    assert len(fid) == len(kid) == EPOCHS and all(math.isfinite(v) and v > 0 for v in fid)
    assert fid[-1] < fid[0] / 2  # the samples get closer to the digits as the VAE trains (seen: 103 -> 21)
    assert math.isfinite(vae.metrics["test/fid_clf"]) and "test/label_agreement" not in vae.metrics  # unconditional
    assert vae.metrics["val/elbo"] > -23  # the VAE itself trains as before (seen: -21.8)


@pytest.mark.slow
def test_a_cvae_draws_the_requested_classes_and_its_fid_falls(runs):
    init, trained = runs["cvae_init"].metrics, runs["cvae"].metrics
    assert len(logged_curve(runs["cvae"], "val/label_agreement")) == EPOCHS
    assert trained["test/fid_clf"] < init["test/fid_clf"] / 10, (init, trained)  # seen: 340 -> 7.4
    assert init["test/label_agreement"] < 0.3 and trained["test/label_agreement"] >= 0.9  # seen: 0.08 -> 0.96


@pytest.mark.slow
def test_checkpoint_keeps_the_ema_decoder_but_not_the_classifier(runs):
    ckpt = runs["cvae"].output_dir / "checkpoints" / "last.ckpt"
    saved = torch.load(ckpt, map_location="cpu", weights_only=True)
    state = saved["state_dict"]
    assert not any(k.startswith("quality.") for k in state)
    assert int(state["decoder_ema.n_averaged"]) == saved["global_step"] > 0  # one update per optimizer step
    cvae, _ = load_model(ckpt)  # rebuilt from the checkpoint alone
    cvae.eval()
    labels = torch.arange(6) % 10
    torch.manual_seed(0)
    z = torch.randn(6, cvae.hparams.latent_dim)
    torch.manual_seed(0)
    samples = cvae.sample(6)  # classes in turn
    with torch.no_grad():
        assert torch.equal(samples, cvae.to_image(cvae.decoder_ema.module(z, cvae.one_hot(labels))))
        assert not torch.allclose(samples, cvae.to_image(cvae.decoder(z, cvae.one_hot(labels))))
