"""`self-instruct audit`: a judge model reviews a sample of a generated dataset."""
