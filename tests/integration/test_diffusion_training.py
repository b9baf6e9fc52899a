"""A class-conditional DDPM really learns the 8x8 digits within a CI budget: a classifier trained here
recognises the requested class in >= 95% of its guided samples, the classifier-feature FID it logs on
validation every epoch falls, and `mlgen-sample` with labels rebuilds it from the checkpoint alone,
sampling with DDIM from the EMA denoiser."""

from __future__ import annotations

import pytest
import torch

from mlgen.checkpoints.load import load_model
from mlgen.metrics.label_agreement import label_agreement
from mlgen.models.diffusion.sampler import ddim_sample
from mlgen.tasks.sample import sample
from mlgen.tasks.train import train
from tests.helpers.config import CPU_QUICK, compose_config
from tests.helpers.metrics_csv import logged_curve

EPOCHS = 60  # ~70 s on one core (the whole module: 80 s)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("diffusion")
    train(compose_config("train", [*CPU_QUICK, "trainer.max_epochs=10", "test=false"], root / "clf"))
    clf = root / "clf" / "checkpoints" / "last.ckpt"
    ddpm = train(compose_config("train", [*CPU_QUICK, "experiment=digits_ddpm_cond", "callbacks.image_grid=null",
                                          f"trainer.max_epochs={EPOCHS}", f"model.metrics.feature_ckpt={clf}"], root / "ddpm"))
    return {"clf": clf, "ddpm": ddpm}


@pytest.mark.slow
def test_conditional_ddpm_draws_the_requested_digits(runs):
    ddpm, _ = load_model(runs["ddpm"].output_dir / "checkpoints" / "last.ckpt")
    classifier, _ = load_model(runs["clf"])
    torch.manual_seed(0)
    agreement = label_agreement(ddpm.eval(), classifier.eval(), num_classes=10, n_per_class=50)
    assert agreement >= 0.95, agreement  # seen: 0.998 (guidance 3; 0.976 at 2, 0.76 unguided)
    assert runs["ddpm"].metrics["test/label_agreement"] >= 0.95  # the shared metric on the test split (seen: 1.0)
    fid = logged_curve(runs["ddpm"], "val/fid_clf")
    assert len(fid) == len(logged_curve(runs["ddpm"], "val/label_agreement")) == len(logged_curve(runs["ddpm"], "train/loss_epoch")) == EPOCHS
    assert fid[-1] < fid[0] / 5  # seen: 168 -> 7
    loss = logged_curve(runs["ddpm"], "train/loss_epoch")
    assert loss[-1] < 0.5 * loss[0]  # seen: 0.91 -> 0.23


@pytest.mark.slow
def test_mlgen_sample_with_labels_uses_ddim_on_the_ema_denoiser(runs, tmp_path):
    ckpt = runs["ddpm"].output_dir / "checkpoints" / "last.ckpt"
    out = tmp_path / "grid.png"
    cfg = compose_config("sample", [f"ckpt_path={ckpt}", "n=20", "labels=[3,7]", "nrow=10", f"out={out}",
                                    "save_tensor=true", "seed=5"], tmp_path / "sample")
    sample(cfg)
    saved = torch.load(out.with_suffix(".pt"), weights_only=True)
    assert out.is_file() and saved["samples"].shape == (20, 1, 8, 8) and saved["labels"].tolist() == [3, 7] * 10

    ddpm, _ = load_model(ckpt)
    ddpm.eval()
    torch.manual_seed(5)
    again = ddim_sample(lambda x, t: ddpm.predict_noise(ddpm.denoiser_ema.module, x, t, saved["labels"]), torch.randn,
                        (20, 1, 8, 8), ddpm.alphas_cumprod, ddpm.hparams.sampling_steps)
    assert torch.equal(saved["samples"], again)
    torch.manual_seed(5)
    raw = ddim_sample(lambda x, t: ddpm.predict_noise(ddpm.denoiser, x, t, saved["labels"]), torch.randn,
                      (20, 1, 8, 8), ddpm.alphas_cumprod, ddpm.hparams.sampling_steps)
    assert not torch.allclose(saved["samples"], raw, atol=1e-3)  # not the raw denoiser
