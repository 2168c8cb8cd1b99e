"""The broker's ``server.properties``: one combined broker+controller on loopback, its listeners
plain, secured (``kafka_security``) or with a second one behind a proxy (``KafkaConfig.proxied``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .kafka_security import listener_properties

if TYPE_CHECKING:
    from .kafka import KafkaConfig

# Combined broker+controller on loopback. Static quorum (controller.quorum.voters) is the
# simplest KRaft form and is formatted without --standalone. Topics are created explicitly
# by the app and tests; internal topics (__consumer_offsets, ...) are created regardless.
SERVER_PROPERTIES = """\
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:{cport}
controller.listener.names=CONTROLLER
{listeners}log.dirs={data}
num.partitions=6
offsets.topic.replication.factor=1
offsets.topic.num.partitions=6
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
# KIP-848 (the `consumer` group protocol): the broker owns session and heartbeat, and its defaults
# (45 s session, at least 45 s) would leave a dead member's partitions idle that long. The same
# 6 s / 2 s as the classic protocol's default settings (docs/explanation/failover.md).
group.consumer.min.session.timeout.ms=6000
group.consumer.session.timeout.ms=6000
group.consumer.min.heartbeat.interval.ms=1000
group.consumer.heartbeat.interval.ms=2000
"""


# The PLAINTEXT listener plus one advertised at a proxy's port (KafkaConfig.proxied).
PROXIED_LISTENERS = """\
listeners=PLAINTEXT://127.0.0.1:{port},PROXIED://127.0.0.1:{via[0]},CONTROLLER://127.0.0.1:{cport}
advertised.listeners=PLAINTEXT://127.0.0.1:{port},PROXIED://127.0.0.1:{via[1]}
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,PROXIED:PLAINTEXT,CONTROLLER:PLAINTEXT
"""


def write_server_properties(cfg: KafkaConfig) -> Path:
    """(Re)write ``server.properties`` (ports may have changed since the last start)."""
    cfg.home.mkdir(parents=True, exist_ok=True)
    path = cfg.home / "server.properties"
    listeners = listener_properties(cfg.security, cfg.port, cfg.controller_port)
    if cfg.proxied is not None and cfg.security is None:
        listeners = PROXIED_LISTENERS.format(port=cfg.port, cport=cfg.controller_port, via=cfg.proxied)
    path.touch(mode=0o600)  # a secured broker's file holds passwords
    path.write_text(SERVER_PROPERTIES.format(cport=cfg.controller_port, listeners=listeners, data=cfg.home / "data"))
    return path
