"""Doing a fault to the rig, and undoing it: signals to processes, the broker or Postgres down for a
while, a Toxiproxy toxic for a while. Each fault lands by construction (the signal is sent, the server
is down, the toxic is in place) before its hold starts."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from dataclasses import dataclass

from salesflow.devstack import kafka
from tests.faults.nemesis.rig import Rig
from tests.faults.nemesis.schedule import Fault

# A slow link: 64 KB/s each way, delivered in small slices (what a congested path looks like).
SLOW = {"rate": 64}
LATENCY = {"latency": 1500, "jitter": 500}


@dataclass
class Landed:
    fault: Fault
    started: float  # time.time(), when the fault landed
    healed: float = 0.0  # time.time(), when it was undone


async def do(rig: Rig, fault: Fault) -> Landed:
    """Apply ``fault``, hold it, undo it; returns when it was healed."""
    landed = Landed(fault, time.time())
    kind, target = fault.kind, fault.target
    if kind in ("sigkill", "sigterm", "sigstop"):
        await _signal(rig, kind, target, fault.hold_s)
    elif kind == "broker-restart":
        # SIGKILL (no controlled shutdown), down for hold_s, start again.
        await asyncio.to_thread(rig.stack.kill_broker)
        await asyncio.sleep(fault.hold_s)
        await asyncio.to_thread(rig.stack.start_broker)
    elif kind == "postgres-restart":
        await asyncio.to_thread(rig.stack.stop_postgres)
        await asyncio.sleep(fault.hold_s)
        await asyncio.to_thread(rig.stack.start_postgres)
    else:
        await _network(rig, kind, target, fault.hold_s)
    landed.healed = time.time()
    return landed


async def _signal(rig: Rig, kind: str, target: str, hold_s: float) -> None:
    process = rig.services[target].process
    if process is None or process.poll() is not None:
        return  # already down and being restarted by the supervisor: nothing to hit
    if kind == "sigstop":
        os.kill(process.pid, signal.SIGSTOP)
        try:
            await asyncio.sleep(hold_s)
        finally:
            os.kill(process.pid, signal.SIGCONT)
    else:
        os.kill(process.pid, signal.SIGKILL if kind == "sigkill" else signal.SIGTERM)


async def _network(rig: Rig, kind: str, proxy: str, hold_s: float) -> None:
    assert rig.proxy is not None, "a network fault needs Toxiproxy"
    toxics: list[str] = []
    if kind == "net-cut":
        rig.proxy.set_enabled(proxy, False)
    else:
        toxic, attributes = ("latency", LATENCY) if kind == "net-latency" else ("bandwidth", SLOW)
        toxics = [rig.proxy.add_toxic(proxy, toxic, attributes, stream) for stream in ("downstream", "upstream")]
    try:
        await asyncio.sleep(hold_s)
    finally:
        for name in toxics:
            rig.proxy.remove_toxic(proxy, name)
        rig.proxy.set_enabled(proxy, True)


async def heal_all(rig: Rig) -> None:
    """Everything back: processes continued and running, the broker and Postgres up, no toxics."""
    for service in rig.services.values():
        if service.process is not None and service.process.poll() is None:
            os.kill(service.process.pid, signal.SIGCONT)
    if kafka.read_pid(rig.stack.kafka) is None:
        await asyncio.to_thread(rig.stack.start_broker)
    await asyncio.to_thread(rig.stack.start_postgres)  # a no-op when it is running
    if rig.proxy is not None:
        rig.proxy.heal()
