"""The node's app launch path: the warm launcher, the app-bundle gate and its refusal app."""

__all__: list[str] = []
