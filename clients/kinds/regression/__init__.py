"""The regression kind at the node."""
