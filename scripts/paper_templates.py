"""Write the paper's own prompts as a `--prompt-templates` file.

The paper's prompt texts are not ours to ship; its repository (github.com/yizhongw/self-instruct,
Apache-2.0) has them. Point this script at a clone of it, or at a JSON file holding the five
texts under the keys below, and run with the result:

```bash
git clone https://github.com/yizhongw/self-instruct
python scripts/paper_templates.py self-instruct --output paper-templates.yaml
self-instruct generate --prompt-templates paper-templates.yaml --output paper-prompts
```

From a clone the `sft` layouts are the prompt halves of the paper's fine-tuning encodings
(`prepare_for_finetuning.py`); from a JSON file they stay ours. Stop sequences are the paper's,
which are also our defaults.
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from pathlib import Path
from typing import Any

import yaml

from self_instruct.prompting.prompts import DEFAULT_TEMPLATES_PATH, TemplateError, load_templates

PAPER_TEXTS = (
    "instruction_header",
    "classification_instruction_header",
    "classification_prefix",
    "output_first_prefix",
    "input_first_prefix",
)
# Where each text is in a clone: file, then the name it is assigned to (or the function whose
# string constants hold the two headers).
_IN_CLONE = {
    "classification_prefix": ("templates/clf_task_template.py", "template_1"),
    "output_first_prefix": ("templates/instance_gen_template.py", "output_first_template_for_clf"),
    "input_first_prefix": ("templates/instance_gen_template.py", "input_first_template_for_gen"),
}


def from_paper_texts(texts: dict[str, str], sft: dict[str, list[str]] | None = None) -> dict:
    """Our template layout filled with the paper's texts, joined as the paper's code joins them:
    prefix + " " + stripped instruction + the rest."""
    ours = yaml.safe_load(DEFAULT_TEMPLATES_PATH.read_text(encoding="utf-8"))
    ours["instructions"]["header"] = texts["instruction_header"]
    ours["instructions"]["classification_header"] = texts["classification_instruction_header"]
    ours["classification"]["prefix"] = texts["classification_prefix"]
    ours["classification"]["query"] = " {instruction}\nIs it classification?"
    ours["instances"]["input_first_prefix"] = texts["input_first_prefix"]
    ours["instances"]["output_first_prefix"] = texts["output_first_prefix"]
    ours["instances"]["query"] = " {instruction}\n"
    if sft:
        ours["sft"] = sft
    return ours


def _assignments(path: Path) -> dict[str, Any]:
    """Module-level `name = "text"` of a Python file, read without running it."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {
        target.id: node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
        for target in node.targets
        if isinstance(target, ast.Name)
    }


def _function(path: Path, name: str) -> ast.FunctionDef:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return next(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == name)


def read_clone(repo: Path) -> tuple[dict[str, str], dict[str, list[str]]]:
    """The five texts and the `sft` layouts of a clone of yizhongw/self-instruct."""
    code = repo / "self_instruct" if (repo / "self_instruct").is_dir() else repo
    texts = {key: _assignments(code / file)[name] for key, (file, name) in _IN_CLONE.items()}
    headers = [
        node.value
        for node in ast.walk(_function(code / "bootstrap_instructions.py", "encode_prompt"))
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and node.value.startswith("Come up with a series of")
    ]
    texts["classification_instruction_header"], texts["instruction_header"] = headers[:2]
    layouts = {}
    for node in ast.walk(_function(code / "prepare_for_finetuning.py", "encode_instance")):
        target = node.targets[0] if isinstance(node, ast.Assign) else None
        if isinstance(target, ast.Name) and target.id.startswith("encoding_templates"):
            pairs = ast.literal_eval(node.value)
            layouts[target.id] = [prompt for prompt, _ in pairs]
    sft = {
        "with_input": layouts["encoding_templates_w_input"],
        "without_input": layouts["encoding_templates_wo_input"],
    }
    return texts, sft


def convert(source: Path) -> dict:
    if source.is_dir():
        return from_paper_texts(*read_clone(source))
    texts = json.loads(source.read_text(encoding="utf-8"))
    missing = [key for key in PAPER_TEXTS if key not in texts]
    if missing:
        raise TemplateError(f"{source}: missing {', '.join(missing)}")
    return from_paper_texts(texts)


class _BlockDumper(yaml.SafeDumper):
    """Multi-line texts as `|` blocks, short ones double-quoted, so that each reads as written."""


def _text(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    lines = text.count("\n")
    style = "|" if lines > 2 else '"' if lines else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


_BlockDumper.add_representer(str, _text)


def make_parser(prog: str | None = None) -> argparse.ArgumentParser:
    from self_instruct.cli.args import strict

    parser = strict(argparse.ArgumentParser)(prog=prog, description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "source", type=Path, help="a clone of yizhongw/self-instruct or a JSON file"
    )
    parser.add_argument("--output", type=Path, required=True, help="the template file to write")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    try:
        templates = convert(args.source)
    except (OSError, KeyError, StopIteration, SyntaxError, ValueError) as err:
        print(f"{args.source}: not the paper's repository or texts ({err})", file=sys.stderr)
        return 1
    text = yaml.dump(templates, Dumper=_BlockDumper, allow_unicode=True, sort_keys=False, width=100)
    args.output.write_text(text, encoding="utf-8")
    load_templates(str(args.output))  # what we wrote must load
    print(f"Wrote {args.output}: use it with --prompt-templates {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
