"""The HTTP API's documentation as a page the server renders from the app's OpenAPI schema.

FastAPI's own pages (Swagger UI, ReDoc) load their scripts from a CDN and start them with an
inline script: offline, and under the app's Content-Security-Policy (script-src 'self'), they
stay blank. This page needs no script at all; `/api/openapi.json` keeps the schema for programs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

METHODS = ("get", "post", "put", "patch", "delete")  # the order operations of one path are listed in


@dataclass
class Field:
    """A parameter, or one field of a request body."""

    name: str
    where: str  # query, path, header, cookie; "body" for a body's field
    required: bool
    type: str
    description: str = ""


@dataclass
class Body:
    media_type: str
    type: str
    fields: list[Field] = field(default_factory=list)


@dataclass
class Operation:
    method: str
    path: str
    summary: str
    description: str
    parameters: list[Field]
    bodies: list[Body]
    responses: list[tuple[str, str, list[str]]]  # (status, description, media types)

    @property
    def anchor(self) -> str:
        return f"{self.method}-{self.path}".lower().replace("/", "-").replace("{", "").replace("}", "").strip("-")


def operations(openapi: dict) -> list[Operation]:
    """Every operation of an OpenAPI document, by path then method, with schemas put in words."""
    components = openapi.get("components", {}).get("schemas", {})
    listed = []
    for path, item in openapi.get("paths", {}).items():
        for method in (name for name in METHODS if name in item):
            operation = item[method]
            listed.append(Operation(
                method.upper(), path, operation.get("summary", ""), operation.get("description", ""),
                [Field(p["name"], p.get("in", ""), p.get("required", False), type_of(p.get("schema", {}), components),
                       p.get("description", "")) for p in operation.get("parameters", [])],
                [body_of(media_type, content.get("schema", {}), components)
                 for media_type, content in operation.get("requestBody", {}).get("content", {}).items()],
                [(status, response.get("description", ""), list(response.get("content", {})))
                 for status, response in operation.get("responses", {}).items()],
            ))
    return listed


def resolved(schema: dict, components: dict) -> dict:
    """A schema with its `$ref` (to #/components/schemas/NAME) followed."""
    while "$ref" in schema:
        schema = components.get(schema["$ref"].rsplit("/", 1)[-1], {})
    return schema


def type_of(schema: dict, components: dict) -> str:
    """A schema in a few words: 'integer', 'array of string', 'one of png, jpeg', 'Answer'."""
    if "$ref" in schema:
        return schema["$ref"].rsplit("/", 1)[-1]
    if "enum" in schema:
        return "one of " + ", ".join(map(str, schema["enum"]))
    if "anyOf" in schema or "oneOf" in schema:
        return " or ".join(type_of(option, components) for option in schema.get("anyOf", schema.get("oneOf")))
    kind = schema.get("type", "any")
    if kind == "array":
        return f"array of {type_of(schema.get('items', {}), components)}"
    if schema.get("format") == "binary":
        return "file"
    return kind + (f" ({schema['format']})" if "format" in schema else "")


def body_of(media_type: str, schema: dict, components: dict) -> Body:
    target = resolved(schema, components)
    required = set(target.get("required", []))
    fields = [Field(name, "body", name in required, type_of(property_schema, components),
                    property_schema.get("description", ""))
              for name, property_schema in target.get("properties", {}).items()]
    return Body(media_type, type_of(schema, components), fields)
