"""Per-sensor health: NOMINAL -> SUSPECT -> FAILED -> REQUALIFYING -> NOMINAL.

Pure logic, fed one observation at a time. No state is terminal: a FAILED sensor's
samples are still judged by the filter, and enough good ones bring it back.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from flight.estimation.altitude_filter import Status


class Health(IntEnum):
    NOMINAL = 0
    SUSPECT = 1
    FAILED = 2
    REQUALIFYING = 3


class Observation(IntEnum):
    GOOD = 0  # accepted, or a terrain step absorbed
    PENDING = 1  # held as a step candidate: no verdict yet
    BAD = 2  # rejected, stuck, invalid, driver error, flagged invalid
    MISSING = 3  # no sample when one was due


def observe(status: Status | None) -> Observation:
    if status in (Status.ACCEPTED, Status.TERRAIN_STEP):
        return Observation.GOOD
    if status == Status.HELD:
        return Observation.PENDING
    return Observation.BAD


@dataclass
class HealthConfig:
    suspect_after: int = 3  # consecutive bad observations
    fail_after: int = 10
    requalify_after: int = 5  # consecutive good observations while REQUALIFYING


class SensorHealth:
    def __init__(self, config: HealthConfig | None = None) -> None:
        self.config = config or HealthConfig()
        self.state = Health.NOMINAL
        self.bad_run = 0
        self.good_run = 0
        self.transitions = 0

    def update(self, obs: Observation) -> Health | None:
        """Feed one observation; returns the new state if it changed."""
        c = self.config
        if obs == Observation.PENDING:
            return None
        if obs == Observation.GOOD:
            self.bad_run = 0
            self.good_run += 1
        else:
            self.good_run = 0
            self.bad_run += 1
        before = self.state
        if self.state == Health.NOMINAL and self.bad_run >= c.suspect_after:
            self.state = Health.SUSPECT
        elif self.state == Health.SUSPECT:
            if obs == Observation.GOOD:
                self.state = Health.NOMINAL
            elif self.bad_run >= c.fail_after:
                self.state = Health.FAILED
        elif self.state == Health.FAILED and obs == Observation.GOOD:
            self.state = Health.REQUALIFYING
        elif self.state == Health.REQUALIFYING:
            if obs != Observation.GOOD:
                self.state = Health.FAILED
            elif self.good_run >= c.requalify_after:
                self.state = Health.NOMINAL
        if self.state != before:
            self.transitions += 1
            return self.state
        return None

    @property
    def usable(self) -> bool:
        return self.state in (Health.NOMINAL, Health.SUSPECT)
