"""One vocabulary: the names of configurations and files, and the run identity, declared once."""

from __future__ import annotations

import ast
from pathlib import Path

from self_instruct import layout
from self_instruct.dataset_builder import SelfInstruct
from self_instruct.testing.scripted_backend import ScriptedBackend

REPO = Path(__file__).resolve().parents[2]
MISSING_MODEL = "no-such-org/no-such-model"  # offline and uncached: only the scripted one answers
# The names layout.py holds, as they would be spelled out by a module declaring its own copy.
DECLARED = {
    layout.CARD,
    layout.DATA_DIR,
    layout.PLOTS_DIR,
    layout.RUN_DIR,
    layout.OPTIONS_FILE,
    layout.MANIFEST,
    layout.STAGE_DIR,
    layout.AUDIT_DIR,
    layout.EXPORTED_FROM,
}
# The run log's own module keeps its constants until the run-log rewrite imports them from here.
EXEMPT = {"layout.py"}


def build(cache: Path, **options) -> SelfInstruct:
    builder = SelfInstruct(
        config_name="instructions",
        model=MISSING_MODEL,
        cache_dir=str(cache),
        backend_instance=ScriptedBackend(),
        **options,
    )
    builder.download_and_prepare()
    return builder


def test_a_builder_asked_for_more_extends_its_own_run(tmp_path):
    """The default run directory is named by the run identity, which leaves out the options that
    only say when to stop or where to send requests: asking for more reopens the same run log."""
    cache = tmp_path / "cache"
    build(cache, num_instructions=3)
    more = build(cache, num_instructions=6, max_attempts=2)
    assert len(more.as_dataset(split="train")) == 6
    assert len(list((cache / "self_instruct_runs").iterdir())) == 1
    build(cache, num_instructions=3, seed=7)  # other data: another run
    assert len(list((cache / "self_instruct_runs").iterdir())) == 2


def test_the_builder_and_the_card_describe_the_same_configurations():
    from self_instruct.dataset_card import render

    assert SelfInstruct.DEFAULT_CONFIG_NAME == layout.DEFAULT_CONFIG
    for config in SelfInstruct.BUILDER_CONFIGS:
        assert config.description == layout.CONFIG_DESCRIPTIONS[config.name]
    assert render.CONFIG_DESCRIPTIONS is layout.CONFIG_DESCRIPTIONS


def test_no_module_declares_its_own_copy_of_a_layout_name():
    """A module-level `CARD = "README.md"` (or `Path("README.md")`, or any other name layout.py
    holds) is a second declaration that can drift from the first."""
    copies = []
    for folder in ("builder", "dataset_card", "scripts"):
        for path in sorted((REPO / folder).rglob("*.py")):
            if path.name in EXEMPT:
                continue
            for node in ast.parse(path.read_text(encoding="utf-8")).body:
                if isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
                    names = {n.id for n in ast.walk(node.value) if isinstance(n, ast.Name)}
                    strings = {n.value for n in ast.walk(node.value) if isinstance(n, ast.Constant)}
                    # a path inside the package (`Path(__file__).parent / "data"`) is no dataset's
                    if strings & DECLARED and "__file__" not in names:
                        copies.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert not copies, f"declare these in self_instruct/layout.py and import them: {copies}"


def test_without_a_cache_dir_the_runs_go_to_the_datasets_cache(tmp_path, monkeypatch):
    """The builder reads the cache root as datasets does (its argument, else HF_DATASETS_CACHE),
    never from a private attribute of datasets' builder."""
    import datasets.config

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "hf-cache"))
    builder = SelfInstruct(config_name="instructions", model=MISSING_MODEL, run_dir=None)
    assert builder.cache_root == tmp_path / "hf-cache"
    assert build(tmp_path / "given").cache_root == tmp_path / "given"
