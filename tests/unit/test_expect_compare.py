"""``verify --expect``: the response matches when the keys the expect file names match, at any depth
(a V2 answer's random ``id`` is not compared), lists element by element within --rel-tol."""

from __future__ import annotations

import json
import uuid

import pytest

from compiler.runtime.verify import first_difference


def v2_answer(values: list[float]) -> dict:
    return {"model_name": "iris", "model_version": "1", "id": str(uuid.uuid4()), "parameters": {"content_type": "np"},
            "outputs": [{"name": "predict", "shape": [len(values), 1], "datatype": "FP64", "data": values,
                         "parameters": {"content_type": "np"}}]}  # fmt: skip


EXPECT_V2 = {"model_name": "iris", "outputs": [{"name": "predict", "data": [0.1, 2.0]}]}


def test_a_v2_answer_matches_on_the_keys_the_expect_file_names():
    for _ in range(3):  # a new random id each time, never compared
        assert first_difference(v2_answer([0.1000000001, 2.0]), EXPECT_V2, 1e-6, 1e-9) is None
    assert first_difference(v2_answer([0.1, 2.0]), {}, 1e-6, 1e-9) is None  # {} names nothing


@pytest.mark.parametrize("expected, where", [
    ({"model_name": "other"}, '$.model_name: got "iris", expected "other"'),
    ({"outputs": [{"data": [0.1, 2.5]}]}, "$.outputs[0].data[1]: got 2.0, expected 2.5"),
    ({"outputs": [{"data": [0.1]}]}, "$.outputs[0].data: 2 items, expected 1"),
    ({"outputs": [{"name": "predict", "labels": ["a"]}]}, '$.outputs[0]: no key "labels"'),
    ({"score": 1}, '$: no key "score"'),
    ({"outputs": {"name": "predict"}}, "$.outputs: got [{"),
])  # fmt: skip
def test_a_named_key_that_differs_or_is_missing_is_pointed_at(expected, where):
    diff = first_difference(v2_answer([0.1, 2.0]), expected, 1e-6, 1e-9)
    assert diff is not None and diff.startswith(where), diff


def test_lists_compare_elementwise_with_the_relative_tolerance():
    assert first_difference([1.0, 2.0, 3.0], [1.001, 2.002, 3.003], 1e-2, 0.0) is None
    assert first_difference([1.0, 2.0, 3.0], [1.001, 2.002, 3.003], 1e-4, 0.0).startswith("$[0]: got 1.0")
    assert first_difference([[1.0], [2.0]], [[1.0], [2.0, 3.0]], 1e-6, 0.0) == "$[1]: 1 items, expected 2"
    rows = [{"id": i, "p": i / 3} for i in range(1, 5)]  # a list of dicts: each dict by the keys expected
    assert first_difference(rows, [{"p": i / 3 + 1e-12} for i in range(1, 5)], 1e-9, 0.0) is None


def test_types_are_not_confused():
    assert first_difference(True, 1, 1e-6, 1e-9) is not None  # a bool is not a number
    assert first_difference("1", 1, 1e-6, 1e-9) is not None
    assert first_difference(None, {}, 1e-6, 1e-9) is not None
    assert first_difference({"a": None}, {"a": None}, 1e-6, 1e-9) is None
    assert json.dumps(first_difference({"a": [1]}, {"a": {"b": 1}}, 1e-6, 1e-9))  # one printable line
