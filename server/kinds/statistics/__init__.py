"""The statistics kind at the coordinator."""
