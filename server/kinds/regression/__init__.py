"""The regression kind at the coordinator."""
