"""The long-running coordinator service: API servicers, auth, job store, scheduler."""
