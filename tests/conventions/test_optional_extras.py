"""One rule for a missing optional extra (tests/optional_extras.py): the test skips, naming the
extra and the command that installs it; no test module finds its own way."""

from __future__ import annotations

import configparser
from pathlib import Path

import pytest
from optional_extras import EXTRAS, missing, needs_extra, require_extra

TESTS = Path(__file__).resolve().parents[1]
SETUP = configparser.ConfigParser()
SETUP.read(TESTS.parent / "setup.cfg")


def test_every_extra_named_is_one_setup_cfg_declares():
    declared = set(SETUP["options.extras_require"])
    assert set(EXTRAS) <= declared, set(EXTRAS) - declared


def test_a_missing_extra_skips_with_its_name_and_install_command(monkeypatch):
    monkeypatch.setitem(EXTRAS, "structured", "no_such_module_for_this_test")
    expected = 'needs the optional "structured" extra (no_such_module_for_this_test): '
    expected += 'pip install -e ".[structured]"'
    assert missing("structured") == expected
    with pytest.raises(pytest.skip.Exception, match=r"pip install -e \"\.\[structured\]\""):
        require_extra("structured")
    mark = needs_extra("structured").mark
    assert mark.args == (True,) and mark.kwargs["reason"] == expected


def test_an_installed_extra_runs(monkeypatch):
    monkeypatch.setitem(EXTRAS, "structured", "json")  # a module every Python has
    assert missing("structured") is None
    assert needs_extra("structured").mark.args == (False,)
    require_extra("structured")  # no skip


def test_no_test_module_skips_on_a_missing_import_its_own_way():
    offenders = [
        str(path.relative_to(TESTS))
        for path in TESTS.rglob("*.py")
        if path.resolve() != Path(__file__).resolve()  # this file names the call it looks for
        and "importorskip(" in path.read_text(encoding="utf-8")
    ]
    assert offenders == []
