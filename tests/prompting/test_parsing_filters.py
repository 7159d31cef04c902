"""The parser and each filter, pinned against hand-written model outputs (malformed ones too)."""

from __future__ import annotations

import pytest

from self_instruct.prompting.filters import filter_instances, instruction_rejection
from self_instruct.prompting.parsing import (
    ParsedInstance,
    ParsedItem,
    parse_instances,
    parse_is_classification,
    split_instructions,
)


def test_numbered_continuation_is_split_and_normalised():
    text = " Name three  rivers in Europe.\n10. explain why   leaves fall\n11.Tell a joke\n12. "
    assert [p.text for p in split_instructions(text, hit_length_limit=False)] == [
        "Name three rivers in europe.",  # str.capitalize(), as the paper stores it
        "Explain why leaves fall 11.tell a joke",  # "11." without a space is no item break
    ]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("Explain it now", "too_short"),  # 3 words: <= 3 is too short
        ("word " * 151, "too_long"),
        ("Describe the image below in detail", "blacklisted_word"),
        ("Plot the sales numbers by month", "blacklisted_word"),
        ("Tell me how to go to the station", "blacklisted_word"),
        ("Write a program that sorts numbers", "write_a_program"),
        ("- Give me five fruit names", "starts_with_punctuation"),
        ("¿Cómo se dice hello en francés?", "starts_with_non_ascii"),
        ("Explain the imagery in this poem", None),  # "imagery" is not the word "image"
        ("Give me five names for a dog", None),
        ("word " * 150, None),
    ],
)
def test_instruction_filters(text, reason):
    assert instruction_rejection(ParsedItem(text.strip())) == reason


def test_classification_answer():
    assert parse_is_classification(" Yes")
    assert not parse_is_classification(" No")
    assert not parse_is_classification("")


def test_input_first_examples():
    text = (
        "Example 1\nInput: 2, 3\nOutput: 5\n"
        "Example 2\nParagraph: The cat sat.\nOutput: One cat.\n"
        "Example 3\nInput: 1, 1\nOutput: 2\nInput: 4, 4\nOutput: 8"
    )
    assert parse_instances(text, is_classification=False, hit_length_limit=False) == [
        ParsedInstance("2, 3", "5"),
        ParsedInstance("Paragraph: The cat sat.", "One cat."),
        ParsedInstance("1, 1", "2"),  # a second pair run on inside one example is dropped
    ]


def test_input_first_without_examples_is_an_output_only_task():
    parsed = parse_instances(" Output: Sleep well and drink water.", False, False)
    assert parsed == [ParsedInstance("", "Sleep well and drink water.")]


def test_output_first_classification():
    text = "Class label: Positive\nInput: Lovely day.\nClass label: Negative\nSentence: Awful.\n"
    assert parse_instances(text, True, False) == [
        ParsedInstance("Input: Lovely day.", "Positive"),  # kept as written, as in the paper
        ParsedInstance("Sentence: Awful.", "Negative"),
    ]
    assert parse_instances("no labels here at all", True, False) == []
    assert parse_instances("Class label: Spam", True, False) == [ParsedInstance("", "Spam")]


def test_length_cut_marks_last_instance():
    parsed = parse_instances(
        "Example 1\nInput: a\nOutput: b\nExample 2\nInput: c\nOut", False, True
    )
    assert [p.truncated for p in parsed] == [False, True]


def test_instance_filters_count_every_reason():
    kept, rejected = filter_instances(
        [
            ParsedInstance("x", "y"),
            ParsedInstance("x", "y"),  # duplicate
            ParsedInstance("", ""),  # empty output
            ParsedInstance("same", "same"),  # output equals input
            ParsedInstance("List:", "a"),  # unfinished input
            ParsedInstance("q", "cut", truncated=True),
        ]
    )
    assert kept == [ParsedInstance("x", "y")]
    assert sorted(reason for _, reason in rejected) == [
        "duplicate",
        "empty_output",
        "output_equals_input",
        "truncated",
        "unfinished",
    ]


def test_same_input_with_different_outputs_discards_the_task():
    kept, rejected = filter_instances(
        [ParsedInstance("2+2", "4"), ParsedInstance("2+2", "5"), ParsedInstance("", "ok")]
    )
    assert kept == []
    assert [reason for _, reason in rejected] == ["conflicting_outputs"] * 3


def test_empty_inputs_never_conflict():
    kept, _ = filter_instances([ParsedInstance("", "a"), ParsedInstance("", "b")])
    assert kept == [ParsedInstance("", "a"), ParsedInstance("", "b")]
