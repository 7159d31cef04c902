"""Helpers with no domain of their own: error causes, option ranges, redaction, verbosity."""
