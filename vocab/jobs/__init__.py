"""Job kinds\x27 payloads: one module per kind (the envelope is `vocab.spec`)."""
