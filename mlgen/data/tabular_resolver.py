"""`${mlgen_table:shape}` and `${mlgen_table:num_classes}`: a table's encoded width and class count,
computed from the data config that holds them (see `mlgen.data.tabular` for why). `${mlgen_table:layout}`
(in model configs) is the fitted layout as plain data, a list of `Span` fields, read from the root's `data`:
tabular models need it at construction and keep it in their hyper-parameters, so a checkpoint alone
rebuilds them.

Kept apart from `mlgen.data.tabular` so that registering the resolver imports neither pandas nor
Lightning (the CLI's `--help` and tab completion stay fast).
"""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from mlgen.errors import MLGenError

FACTS = ("shape", "num_classes")
MODEL_FACTS = ("layout",)


def table_fact(name: str, *, _parent_: DictConfig, _root_: DictConfig) -> Any:
    """Build the data config's TabularDataModule (its fit is cached for the run's own) and return
    `name`. A bad table or option resolves to null: building the datamodule for the run then raises
    the same error, with its one-paragraph message, where the entry points report it."""
    if name not in FACTS + MODEL_FACTS:
        raise ValueError(f"${{mlgen_table:{name}}}: the argument must be one of {list(FACTS + MODEL_FACTS)}")
    from dataclasses import asdict

    from mlgen.data.tabular import TabularDataModule

    data = _parent_ if name in FACTS else _root_.get("data")
    if not isinstance(data, DictConfig):
        return None
    options = {}
    for key in data:
        if str(key) in FACTS or str(key).startswith("_"):
            continue
        value = data[key]
        options[str(key)] = OmegaConf.to_container(value, resolve=True) if isinstance(value, (DictConfig, ListConfig)) else value
    try:
        datamodule = TabularDataModule(**options)
    except (MLGenError, TypeError):
        return None
    # a ListConfig, not a list: OmegaConf.resolve (`--cfg job --resolve`) refuses plain lists from resolvers
    if name == "layout":
        return ListConfig([{**asdict(span), "names": list(span.names)} for span in datamodule.layout])
    return ListConfig(list(datamodule.shape)) if name == "shape" else datamodule.num_classes
