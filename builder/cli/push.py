"""`self-instruct push FOLDER REPO_ID` and `self-instruct stats DATA`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from self_instruct.cli.args import make_parser, parse


def push(argv: Sequence[str]) -> None:
    """Push a generated folder as a new version (tag) of a Hub dataset."""
    from self_instruct.hub.push import PushConfig, push_main

    parser = make_parser(
        (PushConfig,),
        "self-instruct push",
        "Push a folder written by `self-instruct generate` to a Hub dataset repo: one commit, "
        "tagged as the next version (v1, v2, ...). The token comes from HF_TOKEN or "
        "`hf auth login`.",
        "example:\n  self-instruct push my-data my-name/my-self-instruct --private",
        positional=("folder", "repo_id"),
    )
    (config,), _ = parse(parser, argv)
    push_main(config)  # under the folder's lock: never while a run, an audit or a push writes it


@dataclass
class StatsArguments:
    data: str = field(
        metadata={
            "help": "A seed_tasks.jsonl-style file, a folder written by `self-instruct generate`, "
            "or a Hub dataset id."
        }
    )


def stats(argv: Sequence[str]) -> None:
    """Print the paper's Table 1 for a seed file, an output folder or a Hub dataset."""
    parser = make_parser(
        (StatsArguments,),
        "self-instruct stats",
        "Print the paper's Table 1 statistics (instructions, instances, lengths) for a dataset.",
        positional=("data",),
    )
    (args,), _ = parse(parser, argv)
    from self_instruct.dataset_card.stats import stats_main

    print(stats_main(args.data))
