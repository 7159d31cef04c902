"""TGI's published OpenAPI schema (in the anchors, never in the repo) as validators for tests.

Reference data and `jsonschema` (a dev extra) stay on the tests' side: the local TGI server of
`self_instruct.testing` takes the check as a function.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from anchors import TGI_OPENAPI


def openapi_validator(schema_name: str) -> Callable[[object], None] | None:
    """A function that raises `jsonschema.ValidationError` unless an object fits TGI's schema.

    None when the anchor file is absent. OpenAPI 3.0's `nullable` is not JSON Schema: it becomes
    `anyOf [..., null]` so that, say, a null `logprob` is accepted as TGI's spec means it.
    """
    if not TGI_OPENAPI.is_file():
        return None
    import jsonschema

    spec = _nullable_to_json_schema(json.loads(TGI_OPENAPI.read_text()))
    schema = {"components": spec["components"], "$ref": f"#/components/schemas/{schema_name}"}
    return jsonschema.Draft202012Validator(schema).validate


def _nullable_to_json_schema(node):
    if isinstance(node, list):
        return [_nullable_to_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: _nullable_to_json_schema(value) for key, value in node.items()}
    if node.pop("nullable", False):
        return {"anyOf": [node, {"type": "null"}]}
    return node


def request_check() -> Callable[[dict], str | None] | None:
    """What `ModelTGIApp(check_request=)` takes: the schema's objection to a request, if any."""
    validate = openapi_validator("GenerateRequest")
    if validate is None:
        return None
    import jsonschema

    def check(request: dict) -> str | None:
        try:
            validate(request)
        except jsonschema.ValidationError as error:
            return error.message
        return None

    return check
