"""The errors a user can meet anywhere on the path, each with a message that says what to do.

Errors that belong to one step live beside it (a seed file's, a backend's, a push's); these two
are raised by several groups, so they sit below all of them.
"""


class ConfigError(ValueError):
    """An option value that cannot work; the message names the option and the value."""


class OutputFolderError(ValueError):
    """The output folder cannot be used as asked; the message says what to pass instead."""
