"""Department node: Flower ClientApp, data sources, node ledger."""
