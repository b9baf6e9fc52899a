"""CTGAN (Xu et al. 2019) on the GAN family: a conditional WGAN-GP for table rows.

What it adds to `GAN` (whose optimisers, losses, EMA generator, schedulers and checks it keeps):
- the generator's outputs go through per-span activations built from the table's layout
  (`mlgen.models.tabular_heads`): tanh / identity scalars, Gumbel-softmax one-hots (temperature `tau`);
- CTGAN's conditional vector with training-by-sampling (`mlgen.models.gan.conditions`): every row of a
  step picks a categorical column and a category by log-frequency, and the real rows are drawn from the
  training rows having it; the generator is also penalised by the cross-entropy between its output for
  that column and the asked category (`cond_loss_weight`);
- a PacGAN critic (`mlgen.nets.tabular.PacDiscriminator`, `pac` rows per pack);
- for a labelled model, an auxiliary classifier of the target (as CTAB-GAN, Zhao et al. 2021): an MLP trained
  on each step's real rows to predict their class, whose cross-entropy on the generated rows against the
  asked classes joins the generator's loss (`class_loss_weight`). Without it nothing but the packed critic
  ties a row to its label, and on breast_cancer (no categorical column, so no conditional vector) samples
  asked as one diagnosis were recognised as it no more often than the majority class.

How the target and CTGAN's condition combine (`conditional: true`): the condition fed to G and D is the
conditional vector concatenated with the target's one-hot. The target is not one of CTGAN's categorical
columns (it is not in the encoded row), so it cannot be the per-row chosen column; instead the real row
drawn for a condition brings its own class, so (category, class) pairs follow the data's joint
distribution during training, and the critic judges rows given both. `sample(n, labels)` then draws the
conditional vector from the categories' frequencies within each asked class (buffer `condition_counts`,
kept in the checkpoint), so every sample carries its label and a realistic condition.

The real rows of a step come from training-by-sampling, not from the loader's batch; the loader sets the
number of steps and the batch size (rounded up to a multiple of `pac`). Every random draw follows the
per-rank noise convention, so with `generator.batch_norm=false` and `discriminator.dropout=0`, N DDP
ranks train exactly as one process on the global batch.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from mlgen.config.checks import check_int, check_number
from mlgen.distributed.noise import global_batch_rows
from mlgen.errors import ConfigError
from mlgen.models.gan.conditions import TrainingBySampling, class_condition_counts
from mlgen.models.gan.losses import generator_loss
from mlgen.models.gan.module import GAN
from mlgen.models.tabular_heads import TableLayout
from mlgen.nets.mlp import mlp

Batch = tuple[Tensor, Tensor]


class CTGAN(GAN):
    """Conditional tabular GAN.

    Args:
        layout: the table's spans as plain data, `${mlgen_table:layout}` (kept in the checkpoint).
        pac: rows per PacGAN pack (CTGAN: 10); each step's batch is rounded up to a multiple of it.
        tau: Gumbel-softmax temperature of the one-hot outputs (CTGAN: 0.2).
        cond_loss_weight: weight of the generator's cross-entropy on the conditioned column.
        class_loss_weight: weight of the auxiliary classifier's cross-entropy on generated rows against
            their asked classes, in the generator's loss (labelled models only; 0: no classifier).
        classifier_hidden: hidden widths of the auxiliary classifier's MLP (trained with `d_optimizer`'s settings).
        **kwargs: `GAN`'s arguments (generator, discriminator, loss: wgan_gp, optimisers, ...).
    """

    def __init__(
        self,
        layout: Sequence[Mapping[str, Any]] | None = None,
        pac: int = 10,
        tau: float = 0.2,
        cond_loss_weight: float = 1.0,
        class_loss_weight: float = 1.0,
        classifier_hidden: Sequence[int] = (128, 128),
        **kwargs: Any,
    ) -> None:
        check_int("model.pac", pac, 1, 10)
        check_number("model.tau", tau, 0.0, True, example=0.2)
        check_number("model.cond_loss_weight", cond_loss_weight, 0.0, example=1.0)
        check_number("model.class_loss_weight", class_loss_weight, 0.0, example=1.0)
        for width in classifier_hidden:
            check_int("model.classifier_hidden", width, 1, 128)
        super().__init__(**kwargs)
        self.sampler: TrainingBySampling | None = None  # built from the training split in `setup("fit")`

    def build_nets(self) -> None:
        hp = self.hparams
        self.table = TableLayout(hp.layout, self.shape[0], "CTGAN")
        condition_dim = self.table.category_width + (self.num_classes if self.conditional else 0)
        self.generator = self.build_net(hp.generator, "model.generator", shape=self.shape, latent_dim=hp.latent_dim,
                                        condition_dim=condition_dim)
        self.discriminator = self.build_net(hp.discriminator, "model.discriminator", shape=self.shape,
                                            condition_dim=condition_dim, pac=hp.pac)
        classes = self.num_classes if self.conditional else 1
        self.register_buffer("condition_counts", torch.zeros(classes, self.table.category_width))
        self.label_classifier = (mlp(self.shape[0], hp.classifier_hidden, self.num_classes)
                                 if self.conditional and hp.class_loss_weight > 0 else None)

    def configure_optimizers(self) -> list[dict[str, Any]]:
        """G's and D's optimizers, and the auxiliary classifier's (with D's settings) when there is one."""
        optimizers = super().configure_optimizers()
        if self.label_classifier is None:
            return optimizers
        return [*optimizers, self.optimizer_config(self.hparams.d_optimizer, None, self.label_classifier.parameters())]

    # --- conditions ----------------------------------------------------------------------
    def setup(self, stage: str) -> None:
        super().setup(stage)
        if stage != "fit" or self.sampler is not None:
            return
        datasets = getattr(self.trainer.datamodule, "datasets", None) if self.trainer.datamodule else None
        if not datasets or "train" not in datasets or not hasattr(self.trainer.datamodule, "layout"):
            raise ConfigError(
                "model=ctgan trains on tables only: it draws its real rows from the table's training split. "
                "Fix: use data=breast_cancer, fair, wine or csv (a TabularDataModule)."
            )
        x, y = datasets["train"].tensors
        y = y if self.conditional else torch.zeros_like(y)
        self.sampler = TrainingBySampling(x, y, self.table.categories)
        self.condition_counts.copy_(class_condition_counts(x, y, self.table.categories, len(self.condition_counts)))

    def on_fit_start(self) -> None:
        self.sampler.to(self.device)

    def condition(self, vector: Tensor, labels: Tensor | None) -> Tensor:
        """What G and D are conditioned on: the conditional vector and, for a labelled model, the class one-hot."""
        if not self.conditional:
            return vector
        return torch.cat([vector, F.one_hot(labels.long(), self.num_classes).to(vector.dtype)], dim=1)

    def _sampling_condition(self, n: int, labels: Tensor | None) -> Tensor:
        """Conditional vectors for sampling: a categorical column uniformly, a category by its frequency among
        the training rows of each row's class."""
        spans = self.table.categories
        vector = torch.zeros(n, self.table.category_width, device=self.device)
        if not spans:
            return vector
        classes = labels if self.conditional else torch.zeros(n, dtype=torch.long, device=self.device)
        span = torch.randint(len(spans), (n,), device=self.device)
        offset = 0
        for j, (start, stop) in enumerate(spans):
            rows = (span == j).nonzero()[:, 0]
            counts = self.condition_counts[classes[rows], offset:offset + stop - start]
            counts = counts + (counts.sum(1, keepdim=True) == 0)  # an untrained model: uniform
            if len(rows):
                vector[rows, offset + torch.multinomial(counts, 1)[:, 0]] = 1.0
            offset += stop - start
        return vector

    # --- generation ----------------------------------------------------------------------
    def generate(self, n: int, labels: Tensor | None) -> Tensor:
        """Rows from the (EMA) generator: activated scalars and one category drawn per one-hot."""
        condition = self.condition(self._sampling_condition(n, labels), labels)
        raw = self.sampling_net("generator")(self.noise(n, self.hparams.latent_dim), condition)
        return self.table.draw(self.table.scalar_means(raw), raw)

    def _fake(self, condition: Tensor) -> tuple[Tensor, Tensor]:
        """Raw generator outputs and their activated rows (Gumbel noise per the per-rank convention)."""
        n = len(condition)
        raw = self.generator(self.noise(n, self.hparams.latent_dim), condition)
        gumbels = global_batch_rows(lambda m: -torch.empty(m, raw.shape[1], device=raw.device).exponential_().log(), n)
        return raw, self.table.activate(raw, gumbels.to(raw.dtype), self.hparams.tau)

    def conditional_cross_entropy(self, raw: Tensor, span: Tensor, slot: Tensor) -> Tensor:
        """Mean over rows of the cross-entropy between G's logits for each row's chosen column and its category."""
        loss = raw.new_zeros(len(raw))
        for j, (start, stop) in enumerate(self.table.categories):
            chosen = span == j
            loss = loss + F.cross_entropy(raw[:, start:stop], torch.where(chosen, slot, 0), reduction="none") * chosen
        return loss.mean()

    # --- training ------------------------------------------------------------------------
    def train_batch(self, batch: Batch, batch_idx: int) -> None:
        pac = self.hparams.pac
        n = pac * math.ceil(len(batch[0]) / pac)
        real, labels, vector, span, slot = self.sampler.draw(n)
        condition = self.condition(vector, labels)
        opt_g, opt_d, *opt_classifier = self.optimizers()
        raw, fake = self._fake(condition)  # before any toggle, so the graph reaches G

        critic = self.discriminator
        logs = self.discriminator_step(opt_d, critic.score, critic.pack(real, condition), critic.pack(fake.detach(), condition))
        if opt_classifier:
            logs["train/classifier_loss"] = self.classifier_step(opt_classifier[0], real, labels)

        if (batch_idx + 1) % self.hparams.n_critic == 0:
            self.toggle_optimizer(opt_g)
            adversarial = generator_loss(self.hparams.loss, critic(fake, condition))
            cond_loss = self.conditional_cross_entropy(raw, span, slot)
            g_loss = adversarial + self.hparams.cond_loss_weight * cond_loss
            if opt_classifier:  # the classifier's weights are frozen by the toggle; its gradient reaches G
                class_loss = F.cross_entropy(self.label_classifier(fake), labels)
                g_loss = g_loss + self.hparams.class_loss_weight * class_loss
                logs["train/class_loss"] = class_loss.detach()
            self.generator_step(opt_g, g_loss)
            logs.update({"train/g_loss": adversarial.detach(), "train/cond_loss": cond_loss.detach()})
        self.log_train_values(logs, n)

    def classifier_step(self, opt: Any, real: Tensor, labels: Tensor) -> Tensor:
        """One step of the auxiliary classifier on real rows and their classes; its loss, detached."""
        self.toggle_optimizer(opt)
        loss = F.cross_entropy(self.label_classifier(real), labels)
        opt.zero_grad()
        self.manual_backward(loss)
        opt.step()
        self.untoggle_optimizer(opt)
        return loss.detach()
