"""Scenario files: TOML in ``scenarios/``, validated on load into a frozen :class:`Scenario`.

One job per module: ``spec`` (the frozen objects the model, the population and the load test
read), ``reader`` (plain TOML data validated into them, one-line errors naming file, field and
expectation), ``files`` (where a bare name is looked up; :func:`load_scenario`), ``fields``
(:data:`FIELD_DOCS`, the README's format table).  The file format is documented in the README
("Scenarios").
"""

from __future__ import annotations

from sim.errors import ScenarioError
from sim.scenario.fields import FIELD_DOCS
from sim.scenario.files import available_scenarios, load_scenario, resolve_scenario_path, scenario_dirs
from sim.scenario.reader import parse_scenario
from sim.scenario.spec import (
                               DEFAULT_GROUP,
                               DEFAULT_TOPIC,
                               Arrivals,
                               Group,
                               Jobs,
                               Operators,
                               PolicySpec,
                               Scenario,
                               Shift,
                               Topic,
                               Users,
)

__all__ = [
    "DEFAULT_GROUP", "DEFAULT_TOPIC", "FIELD_DOCS", "Arrivals", "Group", "Topic", "Jobs", "Operators", "PolicySpec", "Scenario", "ScenarioError", "Shift", "Users",
    "available_scenarios", "load_scenario", "parse_scenario", "resolve_scenario_path", "scenario_dirs",
]
