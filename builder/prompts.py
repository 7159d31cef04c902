"""The paper's prompt formats, with in-context examples written by us.

Four prompts drive a run (paper section 2.2-2.3, released code `bootstrap_instructions.py`,
`identify_clf_or_not.py`, `generate_instances.py`): a numbered list of instructions for the model
to continue, a yes/no few-shot prompt that asks whether a task is classification, and two instance
prompts -- input-first for most tasks, output-first (class label, then an input) for
classification tasks, so that generated inputs are not all biased towards one label.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

INSTRUCTION_HEADER = "Come up with a series of tasks:\n"
CLASSIFICATION_INSTRUCTION_HEADER = (
    "Come up with a series of classification tasks. "
    "Try to specify the possible output labels when possible.\n"
)
# The paper stops after item 15 of the list, so one completion holds at most 7 new instructions.
INSTRUCTION_STOP = ("\n\n", "\n16", "16.", "16 .")

CLASSIFICATION_QUESTION = "Is it classification?"
CLASSIFICATION_STOP = ("\n", "Task")
_CLASSIFICATION_EXAMPLES = (
    ("Decide whether the review below is positive or negative.", "Yes"),
    ("Suggest three names for a bakery that sells only bread.", "No"),
    ("Is the following number prime? Answer yes or no.", "Yes"),
    ("Explain why the sky looks blue during the day.", "No"),
    ("Label each email as spam or not spam.", "Yes"),
    ("Rewrite the sentence in the passive voice.", "No"),
    ("Which of the three options is a mammal: shark, dolphin or trout?", "Yes"),
    ("Plan a three-day trip to a mountain town on a small budget.", "No"),
    ("Tell whether the statement is a fact or an opinion.", "Yes"),
    ("Summarize the paragraph in one sentence.", "No"),
    ("Classify the news headline into sports, politics, science or business.", "Yes"),
    ("Give a polite reply to a customer who received a late order.", "No"),
)

INSTANCE_STOP = ("Example 6", "Task:")
INPUT_FIRST_HEADER = (
    "Come up with examples for the following tasks. Try to generate multiple examples when "
    "possible. If the task doesn't require additional input, you can generate the output "
    "directly.\n\n"
)
_INPUT_FIRST_EXAMPLES = (
    "Task: Give two tips for sleeping better.\n"
    "Output: Keep a fixed bedtime, and avoid screens for an hour before sleep.\n\n"
    "Task: Turn the sentence into a question.\n"
    "Example 1\nInput: The museum opens at nine.\nOutput: Does the museum open at nine?\n"
    "Example 2\nInput: She likes green tea.\nOutput: Does she like green tea?\n\n"
    "Task: Find the sum of the numbers.\n"
    "Example 1\nInput: 12, 30, 8\nOutput: 50\n\n"
)
OUTPUT_FIRST_HEADER = (
    "Given the classification task definition and the class labels, generate an input that "
    "corresponds to each of the class labels. If the task doesn't require input, just generate "
    "possible class labels.\n\n"
)
_OUTPUT_FIRST_EXAMPLES = (
    "Task: Decide whether the movie review is positive or negative.\n"
    "Class label: Positive\nInput: The acting was warm and the ending made me smile.\n"
    "Class label: Negative\nInput: Two hours of noise and a plot that goes nowhere.\n\n"
    "Task: Is the number even or odd?\n"
    "Class label: Even\nInput: 42\n"
    "Class label: Odd\nInput: 17\n\n"
)

# User-message layouts for the `sft` rows: the paper varied the instruction/input layout per
# example so that the tuned model does not overfit one format. Ours, chosen at random per row.
SFT_TEMPLATES_WITH_INPUT = (
    "{instruction}\n\n{input}",
    "{instruction}\nInput: {input}",
    "Task: {instruction}\n\nInput: {input}",
    "{input}\n\n{instruction}",
    "{instruction}\n\n```\n{input}\n```",
)
SFT_TEMPLATES_WITHOUT_INPUT = (
    "{instruction}",
    "Task: {instruction}",
    "{instruction}\nAnswer:",
)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def instruction_prompt(instructions: Sequence[str], classification: bool = False) -> str:
    """Number the in-context instructions and leave the next number open for the model."""
    header = CLASSIFICATION_INSTRUCTION_HEADER if classification else INSTRUCTION_HEADER
    lines = [f"{i}. {_one_line(text).rstrip(':')}\n" for i, text in enumerate(instructions, 1)]
    return header + "".join(lines) + f"{len(instructions) + 1}."


def classification_prompt(instruction: str) -> str:
    """Few-shot yes/no: is this a classification task with a finite label set?"""
    question = (
        "Can the following task be regarded as a classification task with finite output labels?"
    )
    shots = "".join(
        f"Task: {task}\n{CLASSIFICATION_QUESTION} {answer}\n\n"
        for task, answer in _CLASSIFICATION_EXAMPLES
    )
    return f"{question}\n\n{shots}Task: {_one_line(instruction)}\n{CLASSIFICATION_QUESTION}"


def instance_prompt(instruction: str, is_classification: bool) -> str:
    """Output-first for classification tasks, input-first otherwise (paper section 2.3)."""
    if is_classification:
        return OUTPUT_FIRST_HEADER + _OUTPUT_FIRST_EXAMPLES + f"Task: {_one_line(instruction)}\n"
    return INPUT_FIRST_HEADER + _INPUT_FIRST_EXAMPLES + f"Task: {_one_line(instruction)}\n"


def sft_user_message(instruction: str, input_text: str, template: int) -> str:
    """Fill template number `template` of the with-input or without-input family."""
    family = SFT_TEMPLATES_WITH_INPUT if input_text else SFT_TEMPLATES_WITHOUT_INPUT
    return family[template % len(family)].format(instruction=instruction, input=input_text)


def templates_fingerprint() -> str:
    """Hash of every prompt text, so a card can say exactly which prompts made the data."""
    parts = [
        INSTRUCTION_HEADER,
        CLASSIFICATION_INSTRUCTION_HEADER,
        *INSTRUCTION_STOP,
        classification_prompt("x"),
        instance_prompt("x", True),
        instance_prompt("x", False),
        *SFT_TEMPLATES_WITH_INPUT,
        *SFT_TEMPLATES_WITHOUT_INPUT,
    ]
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()
