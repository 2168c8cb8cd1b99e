"""The projection: mirrors statuses, facts and dead letters from Kafka into Postgres."""
