"""`${mlgen_table:shape}` and `${mlgen_table:num_classes}`: a table's encoded width and class count,
computed from the data config that holds them (see `mlgen.data.tabular` for why).

Kept apart from `mlgen.data.tabular` so that registering the resolver imports neither pandas nor
Lightning (the CLI's `--help` and tab completion stay fast).
"""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from mlgen.errors import MLGenError

FACTS = ("shape", "num_classes")


def table_fact(name: str, *, _parent_: DictConfig) -> Any:
    """Build the data config's TabularDataModule (its fit is cached for the run's own) and return
    `name`. A bad table or option resolves to null: building the datamodule for the run then raises
    the same error, with its one-paragraph message, where the entry points report it."""
    if name not in FACTS:
        raise ValueError(f"${{mlgen_table:{name}}}: the argument must be one of {list(FACTS)}")
    from mlgen.data.tabular import TabularDataModule

    options = {}
    for key in _parent_.keys():
        if str(key) in FACTS or str(key).startswith("_"):
            continue
        value = _parent_[key]
        options[str(key)] = OmegaConf.to_container(value, resolve=True) if isinstance(value, (DictConfig, ListConfig)) else value
    try:
        datamodule = TabularDataModule(**options)
    except (MLGenError, TypeError):
        return None
    # a ListConfig, not a list: OmegaConf.resolve (`--cfg job --resolve`) refuses plain lists from resolvers
    return ListConfig(list(datamodule.shape)) if name == "shape" else datamodule.num_classes
