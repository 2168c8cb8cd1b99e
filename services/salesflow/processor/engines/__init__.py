"""The worker's engines: how records arrive, are published and committed around the batch core."""
