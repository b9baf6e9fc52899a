"""A net defined outside mlgen: checkpoints naming it load only when the user trusts it by name."""

from mlgen.nets.mlp import MLPClassifierNet


class OutsideNet(MLPClassifierNet):
    """Same layers (and state_dict keys) as mlgen's MLP, but not one of mlgen's classes."""
