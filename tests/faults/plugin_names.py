"""Names shared by the fault suite's handler plugin and its tests (the tests must not import the
plugin itself: importing it registers its handlers in the test process's default registry)."""

FLAKY_SECONDS = "SALESFLOW_TEST_FLAKY_SECONDS"
DOOMED_PREFIX = "doomed-"
