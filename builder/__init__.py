"""Self-Instruct (Wang et al., ACL 2023) as a Hugging Face-native pipeline.

The public API, each name imported only when first used (`import self_instruct` stays cheap, so
`self-instruct --help` answers at once and a server run never loads `torch` for a name it does
not touch):

    SelfInstruct    the `datasets` builder: `load_dataset` of a generated folder or Hub repo
    PipelineConfig  every option of a run
    run_to_folder   a whole run: the loop, its log, the rows, the card, into an output folder
    Pipeline        the bootstrap loop itself, over any `Backend`
    Backend         the interface between the loop and anything that writes text
    RougeIndex      the pool and its exact ROUGE-L near-duplicate filter
    push_folder     a finished folder to the Hub as a new tagged version
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from self_instruct.about import __version__

# name -> the module that defines it
_PUBLIC = {
    "SelfInstruct": "self_instruct.dataset_builder",
    "PipelineConfig": "self_instruct.config",
    "run_to_folder": "self_instruct.run",
    "Pipeline": "self_instruct.generation.pipeline",
    "Backend": "self_instruct.backends.base",
    "RougeIndex": "self_instruct.rouge.index",
    "push_folder": "self_instruct.hub.push",
}
__all__ = [
    "Backend",
    "Pipeline",
    "PipelineConfig",
    "RougeIndex",
    "SelfInstruct",
    "__version__",
    "push_folder",
    "run_to_folder",
]

if TYPE_CHECKING:
    from self_instruct.backends.base import Backend
    from self_instruct.config import PipelineConfig
    from self_instruct.dataset_builder import SelfInstruct
    from self_instruct.generation.pipeline import Pipeline
    from self_instruct.hub.push import push_folder
    from self_instruct.rouge.index import RougeIndex
    from self_instruct.run import run_to_folder


def __getattr__(name: str) -> Any:
    if name not in _PUBLIC:
        raise AttributeError(f"module 'self_instruct' has no attribute {name!r}")
    value = getattr(importlib.import_module(_PUBLIC[name]), name)
    globals()[name] = value  # the next lookup is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_PUBLIC])
