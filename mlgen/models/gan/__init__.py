"""GAN family: the LightningModule (`module.py`) and its adversarial losses (`losses.py`).

`mlgen.models.gan.GAN` is the name configs use as `_target_`.
"""

from mlgen.models.gan.module import GAN

__all__ = ["GAN"]
