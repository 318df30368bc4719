"""schema_lang: the YAML schema language of fsmcluster machines (SPEC section 3).

`compile_machine` turns a definition into a `MachineDef` (closures, built once per
revision) or raises `SchemaError` with every problem found; `render_mermaid` and
`render_dot` draw it; the example machines ship as package data.
"""

from __future__ import annotations

from importlib import resources

from .compiler import compile_machine, machine_summary
from .diagrams import render_dot, render_mermaid
from .errors import Problem, SchemaError
from .model import MachineDef

__all__ = [
    "MachineDef",
    "Problem",
    "SchemaError",
    "compile_machine",
    "example_names",
    "load_example",
    "machine_summary",
    "render_dot",
    "render_mermaid",
]

_SUFFIX = ".yaml"


def example_names() -> list[str]:
    """Names of the example machines shipped in `schema_lang/machines/`, sorted."""
    folder = resources.files(__package__).joinpath("machines")
    return sorted(
        entry.name[: -len(_SUFFIX)] for entry in folder.iterdir() if entry.name.endswith(_SUFFIX)
    )


def load_example(name: str) -> str:
    """The text of example machine `name`; KeyError names the known examples."""
    if name not in example_names():
        raise KeyError(f"no example machine '{name}' (examples: {', '.join(example_names())})")
    return resources.files(__package__).joinpath("machines", name + _SUFFIX).read_text("utf-8")
