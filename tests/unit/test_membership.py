"""Instance identity (static membership): stable default ids, settings checks, the fence watch."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from pydantic import ValidationError

from salesflow import membership
from salesflow.kafka_clients import aiokafka_group_options, faust_group_options, librdkafka_group_options
from salesflow.settings import Settings


def _settings(**values: object) -> Settings:
    defaults: dict[str, object] = {"processor_group": "workers", "projection_group": "projectors"}
    return Settings(**{**defaults, **values})  # type: ignore[arg-type]  # test values, checked by Settings itself


def test_default_ids_differ_per_service_and_per_process_and_are_valid(tmp_path: Path) -> None:
    settings = _settings()
    first = membership.default_instance_id(settings, "worker", tmp_path)
    second = membership.default_instance_id(settings, "worker", tmp_path)  # a second worker on this host
    projection = membership.default_instance_id(settings, "projection", tmp_path)
    assert first.endswith("-worker-0") and second.endswith("-worker-1") and projection.endswith("-projection-0")
    assert all(membership.INSTANCE_ID_PATTERN.match(i) for i in (first, second, projection))
    # Slots are per group: another group's first worker is slot 0 as well.
    other = membership.default_instance_id(_settings(processor_group="other"), "worker", tmp_path)
    assert other.endswith("-worker-0")


def test_a_process_killed_with_sigkill_gives_its_slot_back_to_its_restart(tmp_path: Path) -> None:
    claim = textwrap.dedent(
        f"""
        import sys, time
        from salesflow import membership
        from salesflow.settings import Settings
        s = Settings(processor_group="workers")
        print(membership.default_instance_id(s, "worker", __import__("pathlib").Path({str(tmp_path)!r})), flush=True)
        time.sleep(60)
        """
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    child = subprocess.Popen([sys.executable, "-c", claim], stdout=subprocess.PIPE, text=True, env=env)
    assert child.stdout is not None
    held = child.stdout.readline().strip()
    assert held.endswith("-worker-0")
    # While it lives, this process gets the next slot; once it is killed, its restart gets its id back.
    assert membership.default_instance_id(_settings(), "worker", tmp_path).endswith("-worker-1")
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert membership.default_instance_id(_settings(), "worker", tmp_path) == held


def test_an_explicit_instance_id_wins_and_reaches_every_client() -> None:
    settings = membership.with_instance_id(_settings(instance_id="worker-3"), "worker")
    assert settings.instance_id == "worker-3"
    assert aiokafka_group_options(settings)["group_instance_id"] == "worker-3"
    assert faust_group_options(settings)["consumer_group_instance_id"] == "worker-3"
    assert librdkafka_group_options(settings)["group.instance.id"] == "worker-3"


def test_the_default_is_resolved_when_unset() -> None:
    assert _settings(instance_id="").instance_id is None
    resolved = membership.with_instance_id(_settings(), "projection")
    assert resolved.instance_id is not None and "-projection-" in resolved.instance_id


def test_static_membership_can_be_turned_off_but_not_half_way() -> None:
    dynamic = membership.with_instance_id(_settings(static_membership=False), "worker")
    assert dynamic.instance_id is None
    assert "group_instance_id" not in aiokafka_group_options(dynamic)
    with pytest.raises(ValidationError, match="SALESFLOW_STATIC_MEMBERSHIP=false"):
        _settings(static_membership=False, instance_id="worker-0")


@pytest.mark.parametrize("bad", ["two words", "a/b", "x" * 250, "ünïcode"])
def test_an_instance_id_kafka_would_refuse_is_refused_here(bad: str) -> None:
    with pytest.raises(ValidationError, match="instance_id"):
        _settings(instance_id=bad)


def test_a_heartbeat_too_slow_for_the_session_is_refused() -> None:
    with pytest.raises(ValidationError, match="SALESFLOW_KAFKA_HEARTBEAT_INTERVAL_SECONDS=5 must be at most a third"):
        _settings(kafka_session_timeout_seconds=10, kafka_heartbeat_interval_seconds=5)
    assert _settings(kafka_session_timeout_seconds=9, kafka_heartbeat_interval_seconds=3)


def _joined(group: str, generation: int, member: str) -> logging.LogRecord:
    return logging.LogRecord(
        membership.COORDINATOR_LOGGER, logging.INFO, __file__, 1, membership.JOINED, (group, generation, member), None
    )


def test_the_fence_watch_fires_when_told_again_that_its_id_was_taken() -> None:
    fired: list[str] = []
    watch = membership.FenceWatch("host-worker-0", "workers", fired.append)
    for generation, member in [(1, "a"), (2, "b"), (3, "c")]:  # real rebalances move the generation on
        watch.emit(_joined("workers", generation, member))
    watch.emit(_heartbeat_unknown())  # a session that expired: rejoin, nothing more
    watch.emit(_joined("others", 3, "x"))  # another group's line is not ours
    assert fired == []
    watch.emit(_joined("workers", 3, "d"))  # our id was taken and we took it back: once may be chance
    assert fired == []
    watch.emit(_heartbeat_unknown())  # taken again: exit now, before taking it back from the other
    assert len(fired) == 1
    assert "'host-worker-0'" in fired[0] and "SALESFLOW_INSTANCE_ID" in fired[0] and "'workers'" in fired[0]


def test_the_fence_watch_counts_commits_refused_for_an_unknown_member_and_takeovers() -> None:
    fired: list[str] = []
    watch = membership.FenceWatch("id-1", "workers", fired.append)
    watch.emit(_joined("workers", 4, "a"))
    watch.emit(_joined("workers", 4, "b"))
    refused = logging.LogRecord(
        membership.COORDINATOR_LOGGER,
        logging.ERROR,
        __file__,
        1,
        membership.COMMIT_FAILED,
        ("workers", "[Error 25] UnknownMemberIdError: workers"),
        None,
    )
    watch.emit(refused)
    assert len(fired) == 1
    # Without the unknown-member lines, the third takeover is enough.
    quiet: list[str] = []
    watch = membership.FenceWatch("id-1", "workers", quiet.append)
    for member in "abc":
        watch.emit(_joined("workers", 4, member))
    assert quiet == []
    watch.emit(_joined("workers", 4, "d"))
    assert len(quiet) == 1


def _heartbeat_unknown() -> logging.LogRecord:
    return logging.LogRecord(
        membership.COORDINATOR_LOGGER, logging.WARNING, __file__, 1, membership.HEARTBEAT_UNKNOWN, None, None
    )


def test_the_fence_watch_sees_join_lines_even_when_the_log_level_hides_them() -> None:
    logger = logging.getLogger(membership.COORDINATOR_LOGGER)
    root = logging.getLogger()
    saved = (root.level, logger.level, list(logger.handlers), list(logger.filters))
    fired: list[str] = []
    try:
        root.setLevel(logging.WARNING)
        logger.setLevel(logging.NOTSET)
        watch = membership.FenceWatch("id-1", "workers", fired.append)
        logger.addHandler(watch)
        logger.setLevel(logging.INFO)
        logger.addFilter(membership._forward_at_root_level)
        for member in ("a", "b"):
            logger.info(membership.JOINED, "workers", 7, member)
        logger.warning(membership.HEARTBEAT_UNKNOWN)
        assert len(fired) == 1
    finally:
        root.setLevel(saved[0])
        logger.setLevel(saved[1])
        logger.handlers[:] = saved[2]
        logger.filters[:] = saved[3]


def test_the_lines_the_watch_reads_are_the_ones_aiokafka_logs() -> None:
    """An aiokafka upgrade that rewords them must fail here, not silently turn the watch off."""
    import inspect
    import re

    from aiokafka.consumer import group_coordinator

    source = re.sub(r'"\s*"', "", inspect.getsource(group_coordinator))  # join split string literals
    for line in (membership.JOINED, membership.HEARTBEAT_UNKNOWN, membership.COMMIT_FAILED):
        assert f'"{line}"' in source, line
