"""The `silobridge` command line: one module per command group."""
