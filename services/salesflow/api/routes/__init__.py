"""The API's routes: events (status and replay), analytics, and the operational endpoints."""
