"""The parameters one load-test run hands to its Locust process (as a JSON file).

The runner writes this file and passes its path in ``CHATLAB_LOADTEST_CONFIG``; the
locustfile reads it at start-up.  A file rather than many environment variables because
it also carries the seeded operators, and because in distributed mode every worker needs
exactly the same parameters (copy the file, set the variable, start the worker).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sim.errors import ChatLabError

CONFIG_ENV = "CHATLAB_LOADTEST_CONFIG"


class BadLoadTestConfig(ChatLabError):
    """The load-test configuration file is missing, unreadable or has a wrong field."""


@dataclass(frozen=True)
class SeededOperator:
    """One operator row created in the run's schema before Locust starts."""

    operator_id: int
    name: str
    max_chats: int = 1
    #: on-shift windows in scenario seconds; empty = always on shift
    shifts: tuple[tuple[float, float], ...] = ()


@dataclass(frozen=True)
class LoadTestConfig:
    """Everything the locustfile needs; times are *scenario* seconds unless named ``*_wall_s``."""

    dsn: str
    schema: str
    scenario: str  # a scenario name or TOML path, as sim.scenario.load_scenario accepts
    policy: str
    time_scale: float
    seed: int
    run_time_wall_s: float
    operators: tuple[SeededOperator, ...]
    policy_params: dict[str, float] = field(default_factory=dict)
    user_pool: int = 20  # RealUser Locust users (each holds one conversation at a time)
    poll_interval: float = 5.0  # scenario seconds between polls of a user or an operator
    min_poll_wall_s: float = 0.02  # never poll faster than this, whatever K
    workers: int = 1  # Locust worker processes sharing the arrivals (distributed mode)
    run_info_path: str | None = None  # where the locustfile writes its start time and counters

    @property
    def duration(self) -> float:
        """Scenario seconds the run covers."""
        return self.run_time_wall_s * self.time_scale

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    def write(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(self.to_json())
        return path

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LoadTestConfig:
        try:
            ops = tuple(
                SeededOperator(
                    operator_id=int(o["operator_id"]), name=str(o["name"]), max_chats=int(o.get("max_chats", 1)),
                    shifts=tuple((float(a), float(b)) for a, b in o.get("shifts", ())),
                )
                for o in data["operators"]
            )
            return cls(**{**data, "operators": ops})
        except (KeyError, TypeError, ValueError) as exc:
            raise BadLoadTestConfig(f"load-test configuration is invalid: {exc!r}") from None

    @classmethod
    def read(cls, path: str | Path) -> LoadTestConfig:
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise BadLoadTestConfig(f"{path}: cannot read load-test configuration ({exc})") from None
        return cls.from_dict(data)

    @classmethod
    def from_env(cls) -> LoadTestConfig:
        path = os.environ.get(CONFIG_ENV)
        if not path:
            raise BadLoadTestConfig(
                f"${CONFIG_ENV} is not set: run the suite with 'chatlab loadtest SCENARIO' "
                "or point the variable at a configuration file it wrote"
            )
        return cls.read(path)
