"""Sample quality of a generator: FID and KID (torchmetrics) on a pluggable feature extractor,
and label agreement (a classifier's accuracy on class-conditional samples).

Inception weights can't be downloaded everywhere, so the default extractor is the penultimate
layer of an mlgen classifier trained on the same data; its scores are named `fid_clf` / `kid_clf`
because they are not comparable with published (Inception) FIDs. `features=inception` gives the
standard FID where torch-fidelity and its weights are available.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torchmetrics.classification import MulticlassAccuracy
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.kid import KernelInceptionDistance

from mlgen.errors import ConfigError

FEATURES = ("classifier", "inception")


class FrozenFeatures(nn.Module):
    """Base of the extractors: no gradients, always in eval mode (so Lightning's `model.train()`
    does not switch dropout/batch norm back on), `num_features` as torchmetrics expects."""

    num_features: int

    def train(self, mode: bool = True) -> FrozenFeatures:
        return super().train(False)

    def classify(self, x: Tensor) -> Tensor | None:
        """Class logits, when the extractor is a classifier (for label agreement)."""
        return None


class ClassifierFeatures(FrozenFeatures):
    """Penultimate layer (`forward_features`) of an mlgen classifier net; its head gives logits."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net.requires_grad_(False).eval()
        self.num_features = int(net.num_features)

    def forward(self, x: Tensor) -> Tensor:
        return self.net.forward_features(x)

    def classify(self, x: Tensor) -> Tensor:
        return self.net(x)


class InceptionFeatures(FrozenFeatures):
    """torchmetrics' FID Inception-v3 (2048-d pool features) for [-1, 1] images of any size;
    grey images are repeated to three channels, the network resizes to 299x299 itself."""

    def __init__(self, weights_path: str | None = None) -> None:
        super().__init__()
        try:
            from torchmetrics.image.fid import NoTrainInceptionV3

            self.inception = NoTrainInceptionV3(name="inception-v3-compat", features_list=["2048"],
                                                feature_extractor_weights_path=weights_path)
        except Exception as err:
            raise ConfigError(
                f"model.metrics.features=inception could not load the Inception network ({type(err).__name__}: {err}). "
                "It needs the torch-fidelity package and its weights (pt_inception-2015-12-05, downloaded on first use, "
                "so not offline). Fix: `pip install torch-fidelity` and run once online, or give the weights file as "
                "model.metrics.inception_weights=PATH; offline, use model.metrics.features=classifier with "
                "model.metrics.feature_ckpt=<a classifier checkpoint trained on the same data>."
            ) from None
        self.num_features = 2048

    def forward(self, x: Tensor) -> Tensor:
        x = ((x + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)
        return self.inception(x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x)


def load_classifier_features(path: str, shape: Sequence[int]) -> ClassifierFeatures:
    """The net of an mlgen classifier checkpoint, checked against the generator's data shape."""
    from mlgen.checkpoints.load import load_model

    if not Path(path).is_file():
        raise ConfigError(
            f"model.metrics.feature_ckpt={path} does not exist. Fix: train a classifier on the same data "
            "(e.g. `mlgen-train experiment=mnist_cnn`) and pass its <run dir>/checkpoints/last.ckpt."
        )
    model, run_config = load_model(path)
    net = getattr(model, "net", None)
    if not hasattr(net, "forward_features"):
        raise ConfigError(
            f"model.metrics.feature_ckpt={path} holds a {type(model).__name__}, not an mlgen classifier. "
            "Fix: train one on the same data (e.g. `mlgen-train experiment=mnist_cnn`) and pass its checkpoint."
        )
    trained_on = [int(s) for s in run_config["data"]["shape"]]
    if trained_on != [int(s) for s in shape]:
        raise ConfigError(
            f"model.metrics.feature_ckpt={path} was trained on data of shape {trained_on}, but this data has "
            f"shape {list(shape)}. Fix: use a classifier trained on the same data."
        )
    return ClassifierFeatures(net)


class _Given(nn.Identity):
    """Lets FID and KID share one pass of the extractor: they receive features, not images."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = num_features


class SampleQuality(nn.Module):
    """FID, KID and (for conditional generators with a classifier extractor) label agreement,
    accumulated over batches of real and generated images and synchronised across DDP ranks.

    Args:
        features: the extractor; its `classify` gives logits for label agreement.
        suffix: appended to metric names (`_clf` for classifier features, so they are never
            mistaken for Inception FIDs).
        num_classes: classes of the data.
        conditional: whether to measure label agreement.
        kid_subsets, kid_subset_size: KID's random subsets and their size.
    """

    def __init__(self, features: FrozenFeatures, suffix: str, num_classes: int, conditional: bool,
                 kid_subsets: int = 50, kid_subset_size: int = 100) -> None:
        super().__init__()
        self.features = features
        self.suffix = suffix
        given = _Given(features.num_features)
        self.fid = FrechetInceptionDistance(feature=given)
        self.kid = KernelInceptionDistance(feature=given, subsets=kid_subsets, subset_size=kid_subset_size)
        self.agreement = MulticlassAccuracy(num_classes, average="micro") if conditional and isinstance(features, ClassifierFeatures) else None

    @torch.no_grad()
    def update(self, images: Tensor, real: bool, labels: Tensor | None = None) -> None:
        feats = self.features(images).float()
        self.fid.update(feats, real=real)
        self.kid.update(feats, real=real)
        if self.agreement is not None and not real:
            self.agreement.update(self.features.classify(images), labels)

    def compute(self) -> dict[str, Tensor]:
        try:
            kid_mean, _ = self.kid.compute()
        except ValueError as err:  # torchmetrics: fewer samples than one KID subset
            raise ConfigError(
                f"model.metrics.kid_subset_size={self.kid.subset_size} is larger than the number of evaluated "
                f"samples ({err}). Fix: lower model.metrics.kid_subset_size."
            ) from None
        out = {f"fid{self.suffix}": self.fid.compute(), f"kid{self.suffix}": kid_mean}
        if self.agreement is not None:
            out["label_agreement"] = self.agreement.compute()
        return out

    def reset(self) -> None:
        for metric in (self.fid, self.kid, self.agreement):
            if metric is not None:
                metric.reset()


def build_sample_quality(cfg: Mapping[str, Any], shape: Sequence[int], num_classes: int, conditional: bool) -> SampleQuality | None:
    """`SampleQuality` from `model.metrics`; None when no extractor is configured (no feature_ckpt)."""
    kind = cfg.get("features", "classifier")
    if kind not in FEATURES:
        raise ConfigError(f"model.metrics.features={kind!r} is unknown. Fix: use one of {list(FEATURES)}.")
    kid = {"kid_subsets": int(cfg.get("kid_subsets", 50)), "kid_subset_size": int(cfg.get("kid_subset_size", 100))}
    if kind == "inception":
        return SampleQuality(InceptionFeatures(cfg.get("inception_weights")), "", num_classes, conditional, **kid)
    if not cfg.get("feature_ckpt"):
        return None
    return SampleQuality(load_classifier_features(cfg["feature_ckpt"], shape), "_clf", num_classes, conditional, **kid)
