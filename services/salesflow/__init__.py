"""SalesFlow Events: CRM events on Kafka, processed by a Faust worker, projected into Postgres."""

__version__ = "0.1.0"
