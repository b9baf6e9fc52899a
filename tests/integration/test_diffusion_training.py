"""A class-conditional DDPM really learns the 8x8 digits within a CI budget: a classifier trained here
recognises the requested class in >= 95% of its guided samples, the classifier-feature FID it logs on
validation every epoch falls, and `mlgen-sample` with labels rebuilds it from the checkpoint alone,
sampling with DDIM from the EMA denoiser."""

from __future__ import annotations

import pytest
import torch

from mlgen.checkpoints.load import load_model
from mlgen.config.instantiate import instantiate_datamodule
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


@pytest.mark.slow
def test_sampling_options_change_steps_and_guidance_of_mlgen_sample_and_synth(runs, tmp_path):
    """`mlgen-sample sampling.*=` and `mlgen-synth synthetic.sampling.*=` draw with other DDIM steps and
    guidance than the checkpoint was trained with: exactly the sampler's output for those settings."""
    ckpt = runs["ddpm"].output_dir / "checkpoints" / "last.ckpt"
    out = tmp_path / "few_steps.png"
    sample(compose_config("sample", [f"ckpt_path={ckpt}", "n=6", "labels=[1,4]", f"out={out}", "save_tensor=true",
                                     "seed=2", "sampling.sampling_steps=4", "sampling.guidance_scale=1"], tmp_path / "s"))
    saved = torch.load(out.with_suffix(".pt"), weights_only=True)
    ddpm, _ = load_model(ckpt)
    assert ddpm.eval().hparams.guidance_scale == 3  # trained (and by default sampled) with guidance 3
    torch.manual_seed(2)
    unguided_4 = ddim_sample(lambda x, t: ddpm.denoiser_ema.module(x, t, saved["labels"]), torch.randn,
                             (6, 1, 8, 8), ddpm.alphas_cumprod, 4)
    assert torch.equal(saved["samples"], unguided_4)

    from mlgen.data.synthetic import SyntheticDataModule

    def drawn(sampling):
        real = {"_target_": "mlgen.data.digits.DigitsDataModule", "batch_size": 64}
        module = SyntheticDataModule(str(ckpt), real, shape=(1, 8, 8), num_classes=10, size=10,
                                     cache_dir=str(tmp_path / "cache"), sampling=sampling)
        module.prepare_data()  # draws and caches the samples
        return module.cache_path(), torch.load(module.cache_path(), weights_only=True)["x"]

    default_path, default_x = drawn(None)
    few_path, few_x = drawn({"sampling_steps": 4, "eta": None, "guidance_scale": 1.0})
    assert few_path != default_path  # cached samples of other settings are never reused
    ddpm.configure_sampling(sampling_steps=4, guidance_scale=1.0)
    torch.manual_seed(0)
    assert torch.equal(few_x, ddpm.sample(10, torch.arange(10)).clamp(-1, 1))
    assert not torch.allclose(few_x, default_x, atol=1e-3)


@pytest.mark.parametrize(
    ("task", "override", "message"),
    [
        ("sample", "sampling.sampling_steps=5000", r"sampling.sampling_steps=5000 is invalid.*at most model.timesteps=1000"),
        ("sample", "sampling.guidance_scale=-1", r"sampling.guidance_scale=-1 is invalid"),
        ("synth", "synthetic.sampling.eta=2", r"synthetic.sampling.eta=2 is invalid"),
    ],
)
@pytest.mark.slow
def test_bad_sampling_options_are_refused_before_anything_is_written(runs, tmp_path, task, override, message):
    from mlgen.errors import ConfigError
    from mlgen.tasks.synth import synth

    ckpt = runs["ddpm"].output_dir / "checkpoints" / "last.ckpt"
    key = "ckpt_path" if task == "sample" else "generator_ckpt"
    out = tmp_path / "run"
    cfg = compose_config(task, [f"{key}={ckpt}", override, *([f"out={out}/samples.png"] if task == "sample" else CPU_QUICK)], out)
    with pytest.raises(ConfigError, match=message):
        (sample if task == "sample" else synth)(cfg)
    assert list(out.iterdir()) == []  # no samples, no arm trained


@pytest.mark.slow
def test_mlgen_eval_tests_a_diffusion_checkpoint_with_other_sampling_options(runs, tmp_path):
    """`mlgen-eval sampling.*=` draws the test samples with other DDIM steps and guidance than the checkpoint's
    (the README's MNIST FID without guidance); a checkpoint that does not sample refuses the options."""
    from mlgen.errors import ConfigError
    from mlgen.tasks.evaluate import evaluate

    quiet = ["logger=none", "trainer.enable_progress_bar=false"]
    ckpt = runs["ddpm"].output_dir / "checkpoints" / "last.ckpt"
    few = evaluate(compose_config("eval", [f"ckpt_path={ckpt}", "sampling.sampling_steps=3", "sampling.guidance_scale=1", *quiet],
                                  tmp_path / "few")).metrics
    # 3 unguided steps draw worse digits than the trained 50 guided ones (seen: fid_clf 7.5 at 50 steps)
    assert few["test/fid_clf"] > 2 * runs["ddpm"].metrics["test/fid_clf"], few
    assert few["test/label_agreement"] < runs["ddpm"].metrics["test/label_agreement"], few
    with pytest.raises(ConfigError, match=r"sampling=.*guidance_scale.* is invalid: ckpt_path holds a Classifier, which does not sample"):
        evaluate(compose_config("eval", [f"ckpt_path={runs['clf']}", "sampling.guidance_scale=2", *quiet], tmp_path / "clf"))


@pytest.mark.slow
def test_mlgen_eval_on_validation_samples_as_the_test_split_does(runs, tmp_path):
    """`mlgen-eval split=val`, where a guidance scale or step count is chosen, draws one sample per validation
    image at the model's `sampling_steps` (50), as the test split does, not training's per-epoch budget
    (`val_sampling_steps`, 20 here): otherwise the choice would be made for another sampler."""
    from unittest.mock import patch

    from mlgen.models.diffusion.module import DDPM
    from mlgen.tasks.evaluate import evaluate

    drawn: list[tuple[int, int]] = []
    generate = DDPM.generate

    def recording(self, n, labels):
        drawn.append((n, self._sampling_steps))
        return generate(self, n, labels)

    ckpt = runs["ddpm"].output_dir / "checkpoints" / "last.ckpt"
    ddpm, run_config = load_model(ckpt)
    assert (ddpm.hparams.sampling_steps, ddpm.hparams.val_sampling_steps) == (50, 20)
    with patch.object(DDPM, "generate", recording):
        scored = evaluate(compose_config("eval", [f"ckpt_path={ckpt}", "split=val", "logger=none",
                                                  "trainer.enable_progress_bar=false"], tmp_path / "val")).metrics
    datamodule = instantiate_datamodule(run_config["data"])
    datamodule.setup("validate")
    assert sum(n for n, _ in drawn) == len(datamodule.datasets["val"])
    assert {steps for _, steps in drawn} == {50}
    assert scored["val/label_agreement"] >= 0.95 and not any(k.startswith("test/") for k in scored), scored
