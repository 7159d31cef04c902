"""Other libraries are used through their public API: no private attribute of argparse's
parsers, of huggingface_hub's clients or of datasets' builders is read or written."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PRIVATE = re.compile(
    r"\._(actions|option_string_actions|action_groups|group_actions|optionals|positionals"
    r"|parse_dataclass_field|cache_dir_root)\b"
)


def test_no_private_attribute_of_another_library():
    found = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for folder in ("builder", "scripts", "dataset_card")
        for path in sorted((ROOT / folder).rglob("*.py"))
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if PRIVATE.search(line)
    ]
    assert not found, "use the library's public API:\n" + "\n".join(found)
