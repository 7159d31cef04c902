"""scripts/ as modules the tests import (the SFT, evaluation and data scripts), and the real
checkpoint the SFT and evaluation tests train from."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"


def load_script(name: str) -> ModuleType:
    """Import scripts/<name>.py (scripts are not a package) to test its functions in-process.

    scripts/ goes on the import path, as when Python runs a script: a script imports its sibling
    modules (sft.py -> sft_dataset.py) by their bare names."""
    if str(SCRIPTS) not in sys.path:
        sys.path.insert(0, str(SCRIPTS))
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses resolve their annotations through sys.modules
    spec.loader.exec_module(module)
    return module


def smollm2_checkpoint(tmp_path_factory) -> Path:
    """The embedded GGUF saved as a regular checkpoint (about 45 s), made once per session
    however many test modules' session fixtures ask for it."""
    folder = tmp_path_factory.getbasetemp() / "smollm2-135m-instruct"
    if not (folder / "model.safetensors").is_file():
        export = load_script("export_gguf_checkpoint")
        export.export_checkpoint(export.resolve_gguf("embedded"), folder)
    return folder
