"""The orjson hook in kopf's watch decoding: it applies, decodes as json does (managedFields aside), and
notices kopf changing."""

from __future__ import annotations

import inspect
import json

from kopf._cogs.clients import api as kopf_api

from assay.controller import fastjson


def test_kopf_still_decodes_each_watch_line_with_its_json_module() -> None:
    # The hook replaces the `json` name of this module; if kopf decodes otherwise, it silently stops applying.
    source = inspect.getsource(kopf_api.stream)
    assert "json.loads(line" in source


def test_installed_kopf_decodes_with_orjson_and_keeps_the_rest_of_json() -> None:
    original = kopf_api.json
    try:
        fastjson.install()
        assert fastjson.installed()
        assert kopf_api.json.loads is fastjson.loads
        assert kopf_api.json.dumps is json.dumps
    finally:
        kopf_api.json = original
    assert not fastjson.installed()


def test_loads_decodes_what_the_standard_module_decodes() -> None:
    line = b'{"type": "MODIFIED", "object": {"metadata": {"name": "p\\u00e9"}, "n": [1, 2.5, null, true]}}'
    assert fastjson.loads(line.decode()) == json.loads(line)
    assert fastjson.loads("NaN") != fastjson.loads("NaN")  # refused by orjson, decoded by json


def test_loads_drops_the_objects_managed_fields_and_keeps_the_rest() -> None:
    event = {
        "type": "MODIFIED",
        "object": {
            "metadata": {"name": "p", "uid": "u", "managedFields": [{"manager": "kubelet", "fieldsV1": {}}]},
            "status": {"phase": "Running"},
        },
    }
    decoded = fastjson.loads(json.dumps(event))
    assert decoded["object"]["metadata"] == {"name": "p", "uid": "u"}
    assert decoded["object"]["status"] == {"phase": "Running"} and decoded["type"] == "MODIFIED"
    # An ERROR event carries a Status, not an object with metadata: decoded as it is.
    error = {"type": "ERROR", "object": {"kind": "Status", "code": 410, "reason": "Expired"}}
    assert fastjson.loads(json.dumps(error)) == error
