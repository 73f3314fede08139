"""Typed backend options: each backend declares a frozen dataclass, validated once from
``--backend-opt K=V`` pairs into an instance; `hwbench list` and parsing read the same fields."""
from __future__ import annotations

import dataclasses

import pytest

from hwbench import backends
from hwbench.errors import UsageError


@pytest.mark.parametrize("name", backends.names())
def test_every_backend_declares_its_options_as_a_frozen_dataclass(name):
    cls = backends.backend_class(name)
    opts = cls.parse_options(())
    assert dataclasses.is_dataclass(opts) and type(opts) is cls.Options
    fields = dataclasses.fields(opts)
    assert [f.name for f in fields] == [o.name for o in cls.options]
    assert [f.default for f in fields] == [o.default for o in cls.options]
    if fields:
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(opts, fields[0].name, fields[0].default)


def test_options_are_parsed_into_their_types_once():
    cpu = backends.backend_class("cpu")
    opts = cpu.parse_options((("threads", "2"), ("graph_optimization", "basic")))
    assert (opts.threads, opts.inter_threads, opts.graph_optimization) == (2, 0, "basic")
    assert cpu(opts).option_values() == {"threads": 2, "inter_threads": 0,
                                         "graph_optimization": "basic"}


@pytest.mark.parametrize("pair, message", [
    (("thread", "2"), "unknown option 'thread'"),
    (("threads", "two"), "is not a valid int"),
    (("threads", "-1"), "must be >= 0"),
    (("graph_optimization", "max"), "must be one of"),
])
def test_bad_options_are_usage_errors(pair, message):
    with pytest.raises(UsageError, match=message):
        backends.backend_class("cpu").parse_options((pair,))
