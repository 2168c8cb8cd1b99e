"""Producing events: the producer client, the envelope builder, and the demo load generator."""
