"""The append-only run log: records, file layout, self-check, lock, and the replay that resumes."""
