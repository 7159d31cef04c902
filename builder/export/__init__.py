"""From run log to output folder: the rows of the three configurations, files, provenance."""
