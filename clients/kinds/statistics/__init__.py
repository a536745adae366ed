"""The statistics kind at the node."""
