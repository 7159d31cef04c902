"""Text in, items out: seed tasks, prompts, prompting modes, parsing, and the paper's filters."""
