"""FID / KID / label agreement of `SampleQuality` against direct numpy/scipy computations."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import linalg

from mlgen.errors import ConfigError
from mlgen.metrics.fid import (
    ClassifierFeatures,
    FrozenFeatures,
    SampleQuality,
    build_sample_quality,
)
from mlgen.nets.mlp import MLPClassifierNet


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """|mu_a - mu_b|^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2)), computed directly in float64."""
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = linalg.sqrtm(cov_a @ cov_b).real
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a + cov_b - 2 * root))


@pytest.fixture
def quality():
    torch.manual_seed(0)
    net = MLPClassifierNet(shape=(1, 8, 8), num_classes=10, hidden=[32, 16])
    return SampleQuality(ClassifierFeatures(net), "_clf", num_classes=10, conditional=True, kid_subsets=10, kid_subset_size=50)


class FirstPixels(FrozenFeatures):
    """The first 12 pixels as features: full-rank covariances, so the matrix square root is well posed."""

    num_features = 12

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1)[:, :12]


def test_fid_matches_scipy_on_the_same_features():
    quality = SampleQuality(FirstPixels(), "", num_classes=10, conditional=False, kid_subsets=10, kid_subset_size=50)
    torch.manual_seed(0)
    real = torch.randn(400, 1, 8, 8)
    fake = torch.randn(400, 1, 8, 8) @ torch.eye(8).add(0.3) * 0.7 + 0.2  # other mean and covariance
    for chunk_r, chunk_f in zip(real.split(64), fake.split(64)):  # accumulated over batches
        quality.update(chunk_r, real=True)
        quality.update(chunk_f, real=False)
    fid = quality.compute()["fid"].item()
    expected = frechet_distance(real.flatten(1)[:, :12].double().numpy(), fake.flatten(1)[:, :12].double().numpy())
    assert expected > 0.5
    assert fid == pytest.approx(expected, rel=1e-3)


def test_fid_and_kid_of_a_dataset_with_itself_are_zero(quality):
    images = torch.rand(200, 1, 8, 8) * 2 - 1
    quality.update(images, real=True)
    quality.update(images, real=False, labels=torch.zeros(200, dtype=torch.long))
    scores = quality.compute()
    quality.reset()
    quality.update(images, real=True)
    quality.update(torch.rand(200, 1, 8, 8) - 1, real=False, labels=torch.zeros(200, dtype=torch.long))  # darker
    other = quality.compute()
    assert abs(scores["fid_clf"].item()) < 1e-4 * other["fid_clf"].item()
    # KID draws its subsets of real and fake features independently, so with itself it is only ~0
    assert abs(scores["kid_clf"].item()) < 0.05 * other["kid_clf"].item(), (scores, other)


def test_label_agreement_is_the_classifier_accuracy_on_samples(quality):
    images = torch.rand(60, 1, 8, 8) * 2 - 1
    with torch.no_grad():
        predicted = quality.features.classify(images).argmax(1)
    labels = predicted.clone()
    labels[:15] = (predicted[:15] + 1) % 10  # a quarter drawn for another class
    quality.update(images, real=True)
    quality.update(images, real=False, labels=labels)
    assert quality.compute()["label_agreement"].item() == pytest.approx(0.75)


def test_features_stay_frozen_in_eval_mode(quality):
    quality.train()
    assert not quality.features.training and not quality.features.net.training
    assert not any(p.requires_grad for p in quality.features.parameters())


def test_too_few_samples_for_kid_is_a_config_error(quality):
    quality.update(torch.rand(20, 1, 8, 8), real=True)
    quality.update(torch.rand(20, 1, 8, 8), real=False, labels=torch.zeros(20, dtype=torch.long))
    with pytest.raises(ConfigError, match="model.metrics.kid_subset_size=50 is larger than the number of evaluated samples"):
        quality.compute()


def test_build_sample_quality_options():
    assert build_sample_quality({"features": "classifier", "feature_ckpt": None}, (1, 8, 8), 10, False) is None
    with pytest.raises(ConfigError, match="model.metrics.features='vgg' is unknown"):
        build_sample_quality({"features": "vgg"}, (1, 8, 8), 10, False)
    with pytest.raises(ConfigError, match="model.metrics.feature_ckpt=/nowhere.ckpt does not exist"):
        build_sample_quality({"feature_ckpt": "/nowhere.ckpt"}, (1, 8, 8), 10, False)


def test_inception_features_without_torch_fidelity_explain_the_offline_alternative():
    with pytest.raises(ConfigError, match=r"model.metrics.features=inception could not load the Inception network.*"
                                          r"model.metrics.features=classifier with model.metrics.feature_ckpt="):
        build_sample_quality({"features": "inception"}, (1, 28, 28), 10, False)
