"""mlgen: classifiers, VAEs and GANs that share datamodules, configs and metrics.

Kept import-free on purpose: `mlgen-train --help` must not pay for torch or Lightning.
"""

__version__ = "0.1.0"
