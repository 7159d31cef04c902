"""One entry point for a run, with the backend passed in (issue 17).

Tests and benchmarks hand their stand-in backend to the run (`run_to_folder(..., backend=)`,
`SelfInstruct(..., backend_instance=)`, `Pipeline(..., backend=)`, the CLI's `main(...,
load_backend=)`) instead of patching the module attribute the pipeline loads it from, and
`scripts/` imports its stand-ins from `self_instruct.testing`, never from `tests/`.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from self_instruct.backends import backend_class
from self_instruct.backends.transformers import TransformersBackend
from self_instruct.config import PipelineConfig
from self_instruct.dataset_builder import SelfInstruct
from self_instruct.export.folder import prepare_output
from self_instruct.export.provenance import describe_model
from self_instruct.run import run_to_folder
from self_instruct.testing.scripted_backend import ScriptedBackend

REPO = Path(__file__).resolve().parents[2]
# `x.load_backend = ...` or `setattr("....load_backend", ...)`: replacing the loader in a module.
MISSING_MODEL = "no-such-org/no-such-model"
PATCHED = re.compile(r"\.load_backend\s*=[^=]|[\"'][\w.]+\.load_backend[\"']")


def python_files(folder: str) -> list[Path]:
    return sorted((REPO / folder).rglob("*.py"))


def test_no_test_or_script_patches_the_backend_loader():
    patched = [
        f"{path.relative_to(REPO)}:{number}"
        for path in python_files("tests") + python_files("scripts")
        if path != Path(__file__).resolve()
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if PATCHED.search(line)
    ]
    assert not patched


def test_scripts_import_nothing_from_tests():
    test_modules = {path.stem for path in python_files("tests")}
    for path in python_files("scripts"):
        tree = ast.parse(path.read_text())
        imported = {alias.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import)
                    for alias in n.names}  # fmt: skip
        imported |= {n.module.split(".")[0] for n in ast.walk(tree)
                     if isinstance(n, ast.ImportFrom) and n.module and not n.level}  # fmt: skip
        assert not imported & test_modules, path
        literals = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant)}
        assert "tests" not in literals, f"{path} reaches into tests/"


def test_the_run_generates_with_the_backend_it_is_given(tmp_path):
    """The options name a model that cannot load (offline, not cached): only the passed backend
    can have answered."""
    config = PipelineConfig(model=MISSING_MODEL, num_instructions=4)
    backend = ScriptedBackend()
    folder = tmp_path / "out"
    prepare_output(folder, resume=False, overwrite=False)
    result = run_to_folder(config, folder, command="test", backend=backend)
    assert backend.calls and result.funnel["instructions"]["kept"] == 4


def test_the_builder_takes_a_backend_beside_the_backend_option(tmp_path):
    backend = ScriptedBackend()
    builder = SelfInstruct(
        config_name="instructions",
        num_instructions=3,
        model=MISSING_MODEL,
        run_dir=str(tmp_path / "run"),
        cache_dir=str(tmp_path / "cache"),
        backend_instance=backend,
    )
    builder.download_and_prepare()
    assert builder.config.backend == "transformers"  # the option, untouched by the object
    assert len(builder.as_dataset(split="train")) == 3 and backend.calls


def test_the_backend_names_its_model_without_loading_it():
    """A class-level answer: the card of a replayed run names the model with none loaded."""
    embedded = PipelineConfig()
    assert TransformersBackend.describe_model(embedded)[0] == "HuggingFaceTB/SmolLM2-135M-Instruct"
    served = PipelineConfig(backend="tgi", model="org/served", model_revision="v2")
    assert backend_class("tgi").describe_model(served) == ("org/served", "v2")
    for config in (embedded, served):
        assert describe_model(config) == backend_class(config.backend).describe_model(config)
