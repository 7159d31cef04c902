"""Run-log records -> the rows of the three dataset configurations, with their schemas.

`instructions`: one row per accepted machine-generated instruction, with its ROUGE-L provenance.
`instances`: one row per kept (input, output) instance, the paper's released-data layout.
`sft`: conversational prompt-completion rows that TRL's SFTTrainer trains on as they are
(it masks the prompt from the loss by itself).
"""

from __future__ import annotations

from datasets import Features, List, Value

CONFIG_NAMES = ("instructions", "instances", "sft")

_MESSAGE = {"role": Value("string"), "content": Value("string")}

FEATURES = {
    "instructions": Features(
        {
            "id": Value("string"),
            "instruction": Value("string"),
            "is_classification": Value("bool"),
            "max_rouge_l": Value("float64"),
            "mean_rouge_l": Value("float64"),
            "most_similar": List({"instruction": Value("string"), "rouge_l": Value("float64")}),
            "num_instances": Value("int32"),
            "round": Value("int32"),
            "prompt_instructions": List(Value("string")),
        }
    ),
    "instances": Features(
        {
            "id": Value("string"),
            "instruction_id": Value("string"),
            "instruction": Value("string"),
            "is_classification": Value("bool"),
            "input": Value("string"),
            "output": Value("string"),
        }
    ),
    "sft": Features(
        {
            "id": Value("string"),
            "instance_id": Value("string"),
            "template": Value("int32"),
            "prompt": List(_MESSAGE),
            "completion": List(_MESSAGE),
        }
    ),
}
