"""Each metric declares itself once (``SPEC`` in its module); params.yaml and the schema follow.

Adding a metric is its module and its ``evaluate`` entries in params.yaml and the schema: these
tests fail when one of them drifts from the specs.
"""

from __future__ import annotations

import ast
import inspect

import yaml

from pipeline.metrics import registry
from pipeline.metrics.spec import QUALITY, SPEED, MetricSpec
from pipeline.params import SCHEMA_PATH
from pipeline.yamlio import parse_yaml
from tests.conftest import REPO

NOT_OPTIONS = {"metrics"}  # evaluate keys that choose metrics rather than configure them


def _plain(value):
    return list(value) if isinstance(value, tuple) else value


def test_every_metric_module_declares_a_complete_spec() -> None:
    for name, module in registry.modules().items():
        spec = registry.spec(name)
        assert isinstance(spec, MetricSpec) and spec.name == name
        assert spec.module == module  # the function lives beside its spec
        assert spec.protocol and spec.role in {QUALITY, SPEED, "copy detector", "defect detector"}
        assert spec.headlines or spec.role == SPEED, name
        assert spec.reason or spec.role != SPEED, name
        assert list(inspect.signature(spec.function).parameters) == [
            "generated", "train", "valid", "options"
        ]  # fmt: skip


def test_registry_imports_no_metric_until_one_is_asked_for() -> None:
    tree = ast.parse((REPO / "pipeline/metrics/registry.py").read_text())
    imported = {
        node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module
    }
    assert (
        imported & {f"pipeline.metrics.{m.rsplit('.', 1)[1]}" for m in registry.modules().values()}
        == set()
    )


def test_schema_lists_exactly_the_declared_metrics_and_options() -> None:
    schema = yaml.safe_load(SCHEMA_PATH.read_text())["properties"]["evaluate"]
    assert set(schema["properties"]["metrics"]["items"]["enum"]) == set(registry.names())
    options = set(schema["properties"]) - NOT_OPTIONS
    assert options == set(registry.option_defaults())
    assert set(schema["required"]) - NOT_OPTIONS == set(registry.option_defaults())


def test_params_defaults_are_the_declared_defaults() -> None:
    """params.yaml ships every metric with the defaults its spec declares (one default per
    option: a shared option such as ``seed`` agrees across specs, or option_defaults raises)."""
    evaluate = parse_yaml((REPO / "params.yaml").read_text())["evaluate"]
    assert sorted(evaluate["metrics"]) == registry.names()
    defaults = registry.option_defaults()
    assert {key: _plain(value) for key, value in defaults.items()} == {
        key: evaluate[key] for key in defaults
    }


def test_the_evaluate_stage_passes_every_declared_option() -> None:
    from pipeline.grid import BarGrid
    from pipeline.stages.evaluate import metric_options

    evaluate = parse_yaml((REPO / "params.yaml").read_text())["evaluate"]
    options = metric_options(evaluate, BarGrid(16000, 120.0, 4, 1))
    assert set(registry.option_defaults()) <= set(options)
    assert options["sample_rate"] == 16000 and options["beats_per_bar"] == 4
