"""The fault schedule: drawn from the seed alone, so a seed replays the same faults at the same offsets.

Pure: no I/O, no clock. A fault names what it does (``kind``), to whom (``target``), when (seconds
from the start of the load) and for how long (``hold_s``: how long a process stays stopped, the broker
or Postgres down, a network fault in place).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

PROCESSES = ("worker-0", "worker-1", "projection", "relay-0", "relay-1")
PROXIES = ("kafka", "postgres")  # Toxiproxy proxies: services -> broker, services -> Postgres

# kind -> the targets it can hit. SIGKILL/SIGTERM: the supervisor restarts the process; SIGSTOP: a
# SIGCONT after hold_s; restarts: the broker or Postgres down for hold_s; net-*: a toxic for hold_s.
KINDS: dict[str, tuple[str, ...]] = {
    "sigkill": PROCESSES,
    "sigterm": PROCESSES,
    "sigstop": PROCESSES,
    "broker-restart": ("broker",),
    "postgres-restart": ("postgres",),
    "net-latency": PROXIES,
    "net-cut": PROXIES,
    "net-slow": PROXIES,
}
NETWORK_KINDS = frozenset(k for k in KINDS if k.startswith("net-"))
HOLD_S = {"sigstop": (3.0, 15.0), "broker-restart": (2.0, 10.0), "postgres-restart": (2.0, 10.0)}
NET_HOLD_S = (3.0, 15.0)
GAP_S = (5.0, 20.0)  # between one fault's start and the next
PAIR_CHANCE = 0.1  # "rarely, two faults at once"


@dataclass(frozen=True)
class Fault:
    at_s: float
    kind: str
    target: str
    hold_s: float

    def label(self) -> str:
        hold = f" {self.hold_s:.0f}s" if self.hold_s else ""
        return f"{self.kind} {self.target}{hold}"


def _one(rng: random.Random, at_s: float, kinds: list[str], busy: set[str]) -> Fault | None:
    kind = rng.choice(kinds)
    targets = [t for t in KINDS[kind] if t not in busy]
    if not targets:
        return None
    hold = 0.0
    if kind in HOLD_S:
        hold = rng.uniform(*HOLD_S[kind])
    elif kind in NETWORK_KINDS:
        hold = rng.uniform(*NET_HOLD_S)
    return Fault(round(at_s, 1), kind, rng.choice(targets), round(hold, 1))


def schedule(seed: int, duration_s: float, kinds: list[str] | None = None) -> list[Fault]:
    """Faults every 5-20 s over ``duration_s`` (none in the last 5 s), from ``kinds`` (default: all),
    sometimes two at once on different targets. The same seed and arguments give the same list."""
    chosen = sorted(kinds or KINDS)
    unknown = set(chosen) - set(KINDS)
    if unknown:
        raise ValueError(f"unknown fault kinds {sorted(unknown)}; known: {sorted(KINDS)}")
    rng = random.Random(seed)
    faults: list[Fault] = []
    at = rng.uniform(*GAP_S)
    while at < duration_s - 5:
        first = _one(rng, at, chosen, set())
        if first is not None:
            faults.append(first)
            if rng.random() < PAIR_CHANCE:
                second = _one(rng, at, chosen, {first.target})
                if second is not None:
                    faults.append(second)
        at += rng.uniform(*GAP_S)
    return faults
