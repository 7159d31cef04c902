"""`self-instruct audit DIR`: the command; the audit itself (sample, judge, summary) is audit.py."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from self_instruct.cli.args import make_parser, parse
from self_instruct.layout import AUDIT_DIR, CARD

if TYPE_CHECKING:
    from self_instruct.backends import BackendLoader

_EXAMPLES = """examples:
  self-instruct audit my-data                              # the embedded 135M model judges
  self-instruct audit my-data --backend openai --chat --endpoint http://gpu1:8000 \\
      --model Qwen/Qwen2.5-72B-Instruct                    # a strong judge: numbers worth reading
  self-instruct audit my-data --sample-size 50 --seed 1

then: datasets.load_dataset("my-data", "audit")"""


def audit(argv: Sequence[str], load_backend: BackendLoader | None = None) -> None:
    """`self-instruct audit DIR [options]`: judge, write the configuration and card, print.
    `load_backend` replaces the judge the options name (tests pass one)."""
    from self_instruct.audit.review import CONFIG_NAME, AuditConfig, audit_lock, run_audit
    from self_instruct.dataset_card.audit import LABELS, write_audit

    parser = make_parser(
        (AuditConfig,),
        "self-instruct audit",
        "Have a judge model review a sample of a generated dataset with the three questions of "
        "the Self-Instruct paper's Table 2; the card gains a 'Quality audit' section.",
        _EXAMPLES,
        positional=("folder",),
    )
    (config,), _ = parse(parser, list(argv))
    folder = Path(config.folder)
    with audit_lock(folder):  # no export between the sample and the card (nor a second audit)
        try:
            result = run_audit(config, loader=load_backend) if load_backend else run_audit(config)
        except KeyboardInterrupt:
            print(
                f"\nJudgments so far are kept in {folder / AUDIT_DIR}: rerun the command to go on.",
                file=sys.stderr,
            )
            raise
        data_file = write_audit(folder, result, CONFIG_NAME, config.examples)
    s = result.summary
    print(f"\nQuality audit of {folder}: {s['sample_size']} items, judge {s['judge']}")
    for key, label in LABELS.items():
        q = s["shares"][key]
        shown = "-" if q["share"] is None else f"{100 * q['share']:5.1f}%"
        print(
            f"  {label:<48} {q['yes']:>4}/{q['n']:<4} {shown}  "
            f"[{100 * q['low']:.1f}%, {100 * q['high']:.1f}%]  paper {100 * s['paper'][key]:.0f}%"
        )
    print("Not answered: " + ", ".join(f"{k} {v}" for k, v in s["failures"].items()))
    print(f"Data: {folder / data_file} (card: {folder / CARD})")
    print(f'Load: datasets.load_dataset("{folder}", "{CONFIG_NAME}")')
