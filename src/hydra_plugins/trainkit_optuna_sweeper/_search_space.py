"""Hydra sweep overrides -> Optuna distributions.

Kept apart from the sweeper so that it can be unit-tested without Hydra's launch machinery. The
leading underscore keeps Hydra's plugin scanner from importing it (and Optuna) at every start.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from hydra.core.override_parser.types import IntervalSweep, Override, RangeSweep, Transformer
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

KNOWN_TAGS = {"log"}


@dataclass(frozen=True)
class SearchParam:
    """One searched key: its Optuna distribution and, for a categorical, how each Optuna choice
    is written back as override text and read as a config value (lists and dicts are not valid
    Optuna choices, so they travel as their override text, e.g. "[64,64]")."""

    key: str  # the override's key as written: "model.hidden", "+foo", "model" (a group)
    distribution: BaseDistribution
    choices: dict[Any, tuple[str, Any]] = field(default_factory=dict)  # choice -> (text, value)

    def override(self, value: Any) -> str:
        """The override a trial passes to its job, e.g. `model.hidden=[64,64]`."""
        text = self.choices[value][0] if self.choices else str(value)
        return f"{self.key}={text}"

    def config_value(self, value: Any) -> Any:
        """The value as the job's config holds it (a list stays a list), for the results file."""
        return self.choices[value][1] if self.choices else value


def search_param(override: Override) -> SearchParam:
    """The Optuna distribution of one sweep override.

    choice(a,b,c) and a,b,c -> categorical; range(a,b[,step]) -> int (float if an end or the step
    is a float) over the values range() yields; interval(a,b) -> float; int(interval(a,b)) -> int
    (Hydra itself makes interval ends floats); tag(log, ...) -> log scale.
    """
    value = override.value()
    tags = set(getattr(value, "tags", set()) or set())
    if unknown := tags - KNOWN_TAGS:
        raise ValueError(f"{override.input_line}: unknown tag(s) {sorted(unknown)}; known: log")
    log = "log" in tags
    key = override.get_key_element()
    try:
        if isinstance(value, IntervalSweep):
            ints = isinstance(value.start, int) and isinstance(value.end, int)
            dist_type = IntDistribution if ints else FloatDistribution
            return SearchParam(key, dist_type(value.start, value.end, log=log))
        if isinstance(value, RangeSweep):
            return SearchParam(key, _range_distribution(override, value, log))
        if override.is_discrete_sweep():  # choice(...), a,b,c, glob(...)
            if log:
                raise ValueError("tag(log, ...) applies to interval() and range() only")
            return _categorical(key, override)
    except ValueError as err:
        raise ValueError(f"{override.input_line}: {err}") from err
    raise ValueError(f"{override.input_line}: this sweep type is not supported by Optuna")


def _range_distribution(override: Override, value: RangeSweep, log: bool) -> BaseDistribution:
    """range() as Optuna's stepped distribution over exactly the values range() would yield."""
    values = sorted(override.sweep_iterator())
    if not values:
        raise ValueError("the range is empty")
    step = abs(value.step)
    if all(isinstance(v, int) for v in (value.start, value.stop, value.step)):
        return IntDistribution(values[0], values[-1], log=log, step=step)
    if log:
        raise ValueError("tag(log, range(...)) needs integers; use tag(log, interval(a, b))")
    return FloatDistribution(values[0], values[0] + step * (len(values) - 1), step=step)


def _categorical(key: str, override: Override) -> SearchParam:
    choices: dict[Any, tuple[str, Any]] = {}
    for raw in override.sweep_iterator():  # one pass: shuffle() reorders on every pass
        text = Transformer.str(raw)  # escaped override text: "[64,64]", "a\\ b"
        choice = raw if raw is None or isinstance(raw, (bool, int, float, str)) else text
        if choice in choices:  # also catches 1 vs 1.0 vs true, which Optuna cannot tell apart
            raise ValueError(f"duplicate choice {raw!r}")
        choices[choice] = (text, raw)
    return SearchParam(key, CategoricalDistribution(list(choices)), choices)


def split_overrides(overrides: Iterable[Override]) -> tuple[list[str], dict[str, SearchParam]]:
    """Fixed overrides (passed verbatim to every trial) and the search space, keyed by the
    override key. A later override of the same key wins (the command line after `params`)."""
    fixed: dict[str, str] = {}
    space: dict[str, SearchParam] = {}
    for override in overrides:
        key = override.get_key_element()
        fixed.pop(key, None)
        space.pop(key, None)
        if override.is_sweep_override():
            space[key] = search_param(override)
        else:
            fixed[key] = override.input_line or f"{key}={override.get_value_element_as_str()}"
    return list(fixed.values()), space
