"""Examples of services built on SalesFlow Events."""
