"""The contracts other teams build against: event types, payloads, the envelope, topics, outputs."""
