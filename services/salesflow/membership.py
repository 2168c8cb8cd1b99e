"""Who this process is in its consumer group (static membership, docs/explanation/failover.md).

A static member (Kafka's ``group.instance.id``) that restarts within the session timeout gets its
partitions back without a rebalance. Its id must therefore be stable across restarts and unique among
the live members of the group:

- ``SALESFLOW_INSTANCE_ID`` when set (Kubernetes passes the StatefulSet pod name);
- none with ``SALESFLOW_STATIC_MEMBERSHIP=false`` (dynamic membership: a member leaves on SIGTERM);
- otherwise ``<host>-<service>-<slot>``: the host name, the service (``worker``, ``projection``) and
  the lowest slot no other process of that service and group on this host holds. A slot is held by an
  ``flock`` that the kernel releases when the process dies, even by SIGKILL, so a restarted process
  takes its old slot (and id) back, and two workers on one laptop get ``-0`` and ``-1``.

When two live processes claim one id anyway (the same ``SALESFLOW_INSTANCE_ID`` given twice), the
broker hands the id to the newest and the other is fenced; aiokafka then rejoins under the same id and
fences the first in turn, forever. ``exit_when_fenced`` turns that loop into one clear error line and a
non-zero exit of one of the two; the other keeps the id and runs on.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import re
import socket
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Literal

from salesflow.settings import Settings

log = logging.getLogger(__name__)

Service = Literal["worker", "projection"]

# Kafka accepts [a-zA-Z0-9._-], at most 249 characters, for a group instance id (as for topic names).
INSTANCE_ID_PATTERN = re.compile(r"^[a-zA-Z0-9._-]{1,249}$")
MAX_SLOTS = 64
# The exit status of a process fenced out of its group: neither a crash (1) nor a clean stop (0).
EXIT_FENCED = 3
COORDINATOR_LOGGER = "aiokafka.consumer.group_coordinator"
# aiokafka's coordinator logs every join with its group, generation and member id, and says when the
# broker no longer knows its member id (a heartbeat or a commit answered UNKNOWN_MEMBER_ID).
JOINED = "Joined group '%s' (generation %s) with member_id %s"
HEARTBEAT_UNKNOWN = "Heartbeat failed: local member_id was not recognized; resetting and re-joining group"
COMMIT_FAILED = "OffsetCommit failed for group %s due to group error (%s), will rejoin"
# Taken over once already (a rejoin into an unchanged generation) and told again that our member id is
# unknown: exit instead of rejoining, so the other process keeps the id. If those lines were missed,
# exit at the third takeover.
TAKEOVERS_BEFORE_EXIT = 3
TAKEOVER_WINDOW_SECONDS = 120.0

_held: list[IO[bytes]] = []  # slot locks live as long as the process


def group_of(settings: Settings, service: Service) -> str:
    return settings.processor_group if service == "worker" else settings.projection_group


def default_instance_id(settings: Settings, service: Service, lock_dir: Path | None = None) -> str:
    """``<host>-<service>-<slot>``, holding the slot's lock for the life of this process."""
    host = re.sub(r"[^a-zA-Z0-9._-]", "-", socket.gethostname()) or "host"
    group = group_of(settings, service)
    directory = lock_dir or Path(tempfile.gettempdir()) / "salesflow-members"
    directory.mkdir(parents=True, exist_ok=True)
    # The group is hashed into the lock's name: slots are per group, like the ids they make.
    key = hashlib.sha256(group.encode()).hexdigest()[:12]
    for slot in range(MAX_SLOTS):
        handle = open(directory / f"{service}-{key}-{slot}.lock", "ab")  # noqa: SIM115 - held until exit
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            continue
        _held.append(handle)
        return f"{host[: 249 - len(service) - 6]}-{service}-{slot}"
    raise RuntimeError(f"{MAX_SLOTS} {service} processes of group {group!r} already run on this host")


def with_instance_id(settings: Settings, service: Service) -> Settings:
    """``settings`` with ``instance_id`` resolved: the one given, or this host's default."""
    if settings.instance_id or not settings.static_membership:
        return settings
    return settings.model_copy(update={"instance_id": default_instance_id(settings, service)})


class FenceWatch(logging.Handler):
    """Reads aiokafka's group lines. A rejoin into an unchanged generation means that another live
    member took our id meanwhile (a real rebalance always moves the generation on)."""

    def __init__(self, instance_id: str, group: str, on_fenced: Callable[[str], None]) -> None:
        super().__init__(logging.DEBUG)
        self.instance_id = instance_id
        self.group = group
        self.on_fenced = on_fenced
        self.generation: int | None = None
        self.takeovers: list[float] = []

    def emit(self, record: logging.LogRecord) -> None:
        args = record.args if isinstance(record.args, tuple) else ()
        now = time.monotonic()
        self.takeovers = [t for t in self.takeovers if now - t < TAKEOVER_WINDOW_SECONDS]
        if record.msg == JOINED and len(args) == 3 and args[0] == self.group:
            generation = int(str(args[1]))
            if generation == self.generation:
                self.takeovers.append(now)
                if len(self.takeovers) >= TAKEOVERS_BEFORE_EXIT:
                    self.on_fenced(fenced_message(self.instance_id, self.group))
            self.generation = generation
        elif self.takeovers and _member_unknown(record, args, self.group):
            self.on_fenced(fenced_message(self.instance_id, self.group))


def _member_unknown(record: logging.LogRecord, args: tuple[object, ...], group: str) -> bool:
    if record.msg == HEARTBEAT_UNKNOWN:
        return True
    return record.msg == COMMIT_FAILED and len(args) == 2 and args[0] == group and "UnknownMemberId" in str(args[1])


def fenced_message(instance_id: str, group: str) -> str:
    """The error line for a duplicate static member: what happened, which id, which setting to change."""
    return (
        f"another live member of consumer group {group!r} claims the group instance id {instance_id!r}, "
        "and the broker fenced this one: give every process its own SALESFLOW_INSTANCE_ID "
        "(or leave it unset for the default <host>-<service>-<slot>); exiting"
    )


def exit_when_fenced(settings: Settings, service: Service) -> None:
    """Watch the consumer's group joins; on a duplicate id, log the error and exit with ``EXIT_FENCED``."""
    if not settings.instance_id:
        return
    coordinator = logging.getLogger(COORDINATOR_LOGGER)
    coordinator.addHandler(FenceWatch(settings.instance_id, group_of(settings, service), _exit_fenced))
    # The join lines are INFO: make sure they reach the watch even when SALESFLOW_LOG_LEVEL is higher
    # (they still reach the log only if the configured level lets them: see _forward_at_root_level).
    if coordinator.getEffectiveLevel() > logging.INFO:
        coordinator.setLevel(logging.INFO)
        coordinator.addFilter(_forward_at_root_level)


def _forward_at_root_level(record: logging.LogRecord) -> bool:
    # Filters on a logger run before its handlers; the watch sees the record through emit()
    # of a handler on this logger, so below-level records are handed to it and dropped here.
    if record.levelno >= logging.getLogger().level:
        return True
    for handler in logging.getLogger(COORDINATOR_LOGGER).handlers:
        if isinstance(handler, FenceWatch):
            handler.handle(record)
    return False


def _exit_fenced(message: str) -> None:
    log.critical(message)
    for handler in logging.getLogger().handlers:
        handler.flush()
    # Fenced: whatever this process has not committed is read again by the member that holds the id
    # (at least once, idempotent downstream); a graceful stop would only commit through a fenced member.
    os._exit(EXIT_FENCED)
