"""TVAE and CTGAN parts on small tables the tests write: the layout reaching models through config, the
mixed output heads, training-by-sampling, PacGAN packing under DDP sharding, labelled sampling, errors."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from mlgen.config.instantiate import instantiate_model
from mlgen.errors import ConfigError
from mlgen.models.gan.conditions import TrainingBySampling, class_condition_counts
from mlgen.models.tabular_heads import TableLayout
from mlgen.nets.tabular import PacDiscriminator
from tests.helpers.config import compose_config

LAYOUT = [  # a mode-normalised column (scalar + 2 modes), a quantile scalar, a 3-way category
    {"column": "a", "kind": "value", "start": 0, "width": 1, "activation": "tanh", "names": []},
    {"column": "a", "kind": "mode", "start": 1, "width": 2, "activation": "softmax", "names": ["mode 0", "mode 1"]},
    {"column": "b", "kind": "value", "start": 3, "width": 1, "activation": "identity", "names": []},
    {"column": "c", "kind": "category", "start": 4, "width": 3, "activation": "softmax", "names": ["x", "y", "z"]},
]


def _table(n: int = 300) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    city = rng.choice(["berlin", "lima", "osaka"], n, p=[0.7, 0.25, 0.05])
    income = np.where(city == "lima", rng.normal(30, 3, n), rng.normal(90, 8, n)).round(2)
    return pd.DataFrame({"income": income, "kids": rng.integers(0, 4, n), "city": city,
                         "label": np.where(income > 60, "high", "low")})


@pytest.fixture
def table_cfg(tmp_path):
    path = tmp_path / "people.csv"
    _table().to_csv(path, index=False)

    def compose(model: str, *overrides: str):
        return compose_config("train", ["data=csv", f"data.path={path}", "data.target=label", f"model={model}", *overrides],
                              tmp_path / "run")
    return compose


def test_layout_resolves_into_the_model_config_as_plain_data(table_cfg):
    cfg = table_cfg("tvae")
    layout = cfg.model.layout
    assert sum(span["width"] for span in layout) == cfg.data.shape[0] == cfg.model.shape[0]
    city = next(span for span in layout if span["column"] == "city")
    assert city["kind"] == "category" and list(city["names"]) == ["berlin", "lima", "osaka"]
    model = instantiate_model(cfg.model)
    assert isinstance(model.hparams.layout, list) and isinstance(model.hparams.layout[0], dict)  # checkpoint-safe
    assert model.table.category_width == 3 and model.num_classes == 2


@pytest.mark.parametrize("model", ["tvae", "ctgan"])
def test_untrained_models_sample_rows_of_the_asked_classes(table_cfg, model):
    cfg = table_cfg(model)
    net = instantiate_model(cfg.model)
    labels = torch.tensor([0, 1, 1, 0, 1, 1, 1, 0, 0, 1])
    rows = net.sample(10, labels)
    assert rows.shape == (10, cfg.data.shape[0])
    for start, stop in net.table.one_hots:  # exact one-hots in data space
        assert torch.equal(rows[:, start:stop].sum(1), torch.ones(10))
    assert rows[:, net.table.scalar_index][:, net.table.tanh_mask].abs().max() <= 1


def test_ctgan_auxiliary_classifier_is_built_for_labelled_models_and_trained_by_its_own_optimizer(table_cfg):
    plain = instantiate_model(table_cfg("ctgan").model)
    assert plain.label_classifier is None and len(plain.configure_optimizers()) == 2  # CTGAN's default: off
    labelled = instantiate_model(table_cfg("ctgan", "model.class_loss_weight=1.0").model)
    optimizers = labelled.configure_optimizers()
    assert len(optimizers) == 3 and labelled.label_classifier[-1].out_features == labelled.num_classes
    assert {id(p) for p in optimizers[2]["optimizer"].param_groups[0]["params"]} == {id(p) for p in labelled.label_classifier.parameters()}
    unlabelled = instantiate_model(table_cfg("ctgan", "model.class_loss_weight=1.0", "model.conditional=false").model)
    assert unlabelled.label_classifier is None
    with pytest.raises(ConfigError, match=r"model.class_loss_weight=-1.0 is invalid"):
        instantiate_model(table_cfg("ctgan", "model.class_loss_weight=-1.0").model)


@pytest.mark.parametrize("model", ["tvae", "ctgan"])
def test_models_on_image_data_say_they_need_a_table(tmp_path, model):
    cfg = compose_config("train", ["data=digits", f"model={model}"], tmp_path)
    with pytest.raises(ConfigError, match=r"needs the table's column layout.*data=breast_cancer"):
        instantiate_model(cfg.model)


def test_log_likelihood_is_gaussian_per_scalar_and_categorical_per_one_hot():
    heads = TableLayout(LAYOUT, 7, "test")
    raw = torch.randn(4, 7)
    x = torch.tensor([[0.3, 1, 0, -1.2, 0, 0, 1]] * 4)
    log_sigma = torch.tensor([math.log(0.2), math.log(0.5)])
    expected = (torch.distributions.Normal(torch.tanh(raw[:, 0]), 0.2).log_prob(x[:, 0])
                + torch.distributions.Normal(raw[:, 3], 0.5).log_prob(x[:, 3])
                + torch.log_softmax(raw[:, 1:3], 1)[:, 0] + torch.log_softmax(raw[:, 4:7], 1)[:, 2])
    torch.testing.assert_close(heads.log_likelihood(raw, log_sigma, x), expected)


def test_activation_is_tanh_identity_and_gumbel_softmax():
    heads = TableLayout(LAYOUT, 7, "test")
    raw = torch.randn(5, 7) * 3
    out = heads.activate(raw, torch.zeros(5, 7), tau=0.2)
    torch.testing.assert_close(out[:, 0], torch.tanh(raw[:, 0]))
    torch.testing.assert_close(out[:, 3], raw[:, 3])
    torch.testing.assert_close(out[:, 4:7], torch.softmax(raw[:, 4:7] / 0.2, 1))
    with pytest.raises(ConfigError, match="rows of 7 values, the data has 8"):
        TableLayout(LAYOUT, 8, "test")


def test_training_by_sampling_picks_categories_by_log_frequency_and_matching_rows():
    counts = [700, 250, 50]
    slot = torch.cat([torch.full((c,), k) for k, c in enumerate(counts)])
    x = torch.cat([torch.randn(len(slot), 1), torch.nn.functional.one_hot(slot, 3).float()], dim=1)
    y = (slot == 2).long()  # the rare category is class 1
    sampler = TrainingBySampling(x, y, [(1, 4)])
    torch.manual_seed(0)
    real, labels, vector, _, chosen = sampler.draw(20_000)
    assert torch.equal(real[:, 1:4], vector) and torch.equal(vector.argmax(1), chosen)  # rows have their condition
    assert torch.equal(labels, (chosen == 2).long())  # and bring their own class
    share = torch.bincount(chosen, minlength=3).float() / len(chosen)
    expected = torch.log1p(torch.tensor(counts, dtype=torch.float))
    torch.testing.assert_close(share, expected / expected.sum(), atol=0.015, rtol=0)  # the rare 5% gets ~23%
    assert torch.equal(class_condition_counts(x, y, [(1, 4)], 2), torch.tensor([[700.0, 250, 0], [0, 0, 50]]))


def test_pac_packs_of_interleaved_rank_shards_are_the_global_batchs_packs():
    critic = PacDiscriminator([3], condition_dim=0, pac=5, hidden=[8], dropout=0.0)
    rows = torch.randn(40, 3)
    packs = critic.pack(rows)
    world = 2
    per_rank = [critic.pack(rows[rank::world]) for rank in range(world)]  # rank r holds rows r, r + 2, ...
    for rank, local in enumerate(per_rank):
        assert torch.equal(local, packs[rank::world])  # local pack j is global pack 2j + r
    with pytest.raises(ValueError, match="multiple of 5"):
        critic.pack(rows[:12])
