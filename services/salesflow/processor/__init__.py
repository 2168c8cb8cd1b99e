"""The processor: decode, validate, run the handlers, publish outcomes, commands and dead letters."""
