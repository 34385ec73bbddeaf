"""Spec quality reports: validity with openapi-spec-validator, coverage findings with their locations, pinned
counts on the whole corpus, and bounded walks over hostile documents."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from core.actions import LintSpec, Origin, PathAttachment, UploadSpec
from core.lint.coverage import lint_document
from core.lint.model import (
    DUPLICATE_OPERATION_ID,
    INVALID,
    NO_DESCRIPTION,
    NO_ERROR_RESPONSES,
    PARAMETER_NO_DESCRIPTION,
    UNDEFINED_REFERENCE,
    UNUSED_SCHEMA,
    WRITE_NO_SECURITY,
)
from core.lint.service import coverage, lint_spec
from core.parsing.loader import load_document, load_spec
from core.parsing.openapi import parse_openapi

EXPECTED = Path(__file__).parents[1] / "lint_counts.json"
EXTENSIONS = frozenset({"json", "yaml", "yml", "graphql", "md"})


def load(path: Path) -> tuple[Any, Any]:
    data = path.read_bytes()
    spec = load_spec(path.name, data, max_bytes=50 * 1024 * 1024, allowed_extensions=EXTENSIONS)
    document = load_document(path.name, data) if path.suffix in {".json", ".yaml"} else None
    return spec, document


async def report_counts(path: Path) -> dict[str, Any]:
    spec, document = load(path)
    report = await lint_spec(path.stem, spec, document if isinstance(document, dict) else None)
    validity = report.validity
    return {"operations": report.operations, "valid": None if validity is None else validity.checked and not
            validity.errors, "counts": report.counts}


async def test_whole_corpus_counts_are_pinned(specs_dir: Path) -> None:
    """Every corpus spec, validated and checked; the counts are pinned in tests/lint_counts.json.

    `LINT_PIN=1` rewrites the file (after a deliberate change to the rules).
    """
    found = {}
    for path in sorted(specs_dir.glob("*.*")):
        if path.suffix in {".json", ".yaml", ".graphql", ".md"} and path.name != "SOURCES.md":
            started = time.perf_counter()
            found[path.name] = await report_counts(path)
            assert time.perf_counter() - started < 120, path.name  # Stripe included: it must finish
    if os.environ.get("LINT_PIN") == "1":
        EXPECTED.write_text(json.dumps(found, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    assert found == json.loads(EXPECTED.read_text(encoding="utf-8"))


BROKEN = """
openapi: 3.0.3
info: {title: Gaps, version: "1"}
security: [{key: []}]
paths:
  /pets:
    get:
      operationId: listPets
      summary: List pets
      description: Every pet.
      parameters: [{$ref: "#/components/parameters/limit"}]
      responses:
        "200": {description: ok, content: {application/json: {schema: {$ref: "#/components/schemas/Pets"}}}}
        "400": {description: bad}
    post:
      operationId: listPets
      security: []
      requestBody: {content: {application/json: {schema: {$ref: "#/components/schemas/Pet"}, example: {name: Rex}}}}
      responses: {"201": {description: created}}
  /pets/{id}:
    parameters: [{name: id, in: path, required: true, schema: {type: string}}]
    delete:
      summary: Remove
      description: Gone.
      security: [{}, {key: []}]
      parameters: [{$ref: "#/components/parameters/limit"}]
      responses: {"204": {description: gone}, default: {description: error}}
components:
  securitySchemes: {key: {type: apiKey, in: header, name: X-Key}}
  parameters:
    limit: {name: limit, in: query, schema: {type: integer}}
  schemas:
    Pets: {type: array, items: {$ref: "#/components/schemas/Pet"}}
    Pet:
      type: object
      properties: {name: {type: string, description: Its name}, owner: {$ref: "#/components/schemas/Missing"}}
    Orphan: {type: object, properties: {x: {type: string}}}
"""


def test_each_kind_names_its_location() -> None:
    findings, operations = lint_document(yaml.safe_load(BROKEN))
    assert operations == 3
    found = {(f.kind, f.pointer, f.where) for f in findings.items}
    assert (NO_DESCRIPTION, "#/paths/~1pets/post", "POST /pets") in found
    assert (WRITE_NO_SECURITY, "#/paths/~1pets/post", "POST /pets") in found  # security: []
    assert (WRITE_NO_SECURITY, "#/paths/~1pets~1{id}/delete", "DELETE /pets/{id}") in found  # {} is "or no auth"
    assert (NO_ERROR_RESPONSES, "#/paths/~1pets/post/responses", "POST /pets") in found
    assert (DUPLICATE_OPERATION_ID, "#/paths/~1pets/post/operationId", "POST /pets") in found
    # a shared parameter is reported once, where it is defined; the path-level one at its own pointer
    assert {f.pointer for f in findings.items if f.kind == PARAMETER_NO_DESCRIPTION} == {
        "#/components/parameters/limit", "#/paths/~1pets~1{id}/parameters/0"}
    assert (UNDEFINED_REFERENCE, "#/components/schemas/Pet/properties/owner/$ref", "") in found
    assert [f.where for f in findings.items if f.kind == UNUSED_SCHEMA] == ["Orphan"]
    assert findings.counts[NO_ERROR_RESPONSES] == 1  # GET has a 400, DELETE a default


async def test_invalid_documents_are_reported_with_pointers() -> None:
    document = yaml.safe_load(BROKEN)
    document["paths"]["/pets"]["get"]["responses"]["200"]["content"]["application/json"]["schema"] = {"type": 5}
    clean = yaml.safe_load(BROKEN)
    del clean["components"]["schemas"]["Pet"]["properties"]["owner"]  # the parser refuses broken refs
    spec = parse_openapi(clean)
    report = await lint_spec("gaps", spec, document)
    assert report.validity is not None and report.validity.checked and report.counts[INVALID] >= 1
    invalid = [f for f in report.findings if f.kind == INVALID]
    assert invalid[0].pointer == "#/paths/~1pets/get/responses/200"
    assert invalid[-2].pointer == "#/paths/~1pets/post" and "not unique" in invalid[-2].detail
    assert invalid[-1].pointer == "#/components/schemas/Missing" and "unresolvable reference" in invalid[-1].detail
    assert all(f.pointer.startswith("#") or f.pointer == "(not located)" for f in invalid)
    assert "Not valid OpenAPI 3.0" in report.summary()
    assert "#/components/parameters/limit" in report.full_text()


async def test_bookshop_upload_line_and_report(assistant: Any, example_spec: Path) -> None:
    origin = Origin("console", "local", user="you", is_admin=True)
    ingest = await assistant.ingest(UploadSpec(origin, PathAttachment(example_spec), "bookshop"))
    assert ingest.quality.startswith("2 operations have no description; 6 operations document no error response")
    assert ingest.quality.endswith("(`/api lint bookshop` for the full report)")
    report = await assistant.lint(LintSpec(origin, "bookshop"))
    assert report.validity is not None and report.validity.checked and not report.validity.errors
    assert report.counts[NO_DESCRIPTION] == 2 and "Valid OpenAPI 3.0" in report.summary()
    assert report.needs_file() and "#/components/schemas/Book/properties/isbn" in report.full_text()


def test_model_formats_are_checked_from_the_parsed_model(specs_dir: Path) -> None:
    spec, _ = load(specs_dir / "twitter_api_v2.postman_collection.json")
    findings, operations = coverage(spec, None)
    assert operations == 56 and all(f.where and not f.pointer for f in findings.items)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.sampled_from(["$ref", "properties", "items", "paths", "get", "post", "parameters",
                                       "responses", "allOf", "security", "components", "schemas", "x"]), children,
                      max_size=5),
    max_leaves=60,
)


@settings(max_examples=150, deadline=None)
@given(json_values)
def test_coverage_never_fails_on_arbitrary_documents(value: Any) -> None:
    document = {"openapi": "3.0.0", "paths": value, "components": {"schemas": value}}
    lint_document(document)


def test_deep_and_self_referencing_documents_are_bounded() -> None:
    deep: dict[str, Any] = {"type": "string"}
    for _ in range(5000):
        deep = {"type": "object", "properties": {"a": deep}}
    loop = {"$ref": "#/components/schemas/Loop"}
    document = {"openapi": "3.0.0", "paths": {"/x": {"get": {"responses": {}}}},
                "components": {"schemas": {"Deep": deep, "Loop": loop}}}
    started = time.perf_counter()
    findings, _ = lint_document(document)
    assert time.perf_counter() - started < 5
    assert findings.counts  # it reports, and stops walking where the bounds say


@pytest.mark.parametrize("paths", [10_000])
def test_many_operations_keep_a_bounded_number_of_findings(paths: int) -> None:
    document = {"openapi": "3.0.0", "paths": {f"/p{i}": {"post": {"responses": {}}} for i in range(paths)}}
    findings, operations = lint_document(document)
    assert operations == paths and findings.counts[NO_DESCRIPTION] == paths
    assert len([f for f in findings.items if f.kind == NO_DESCRIPTION]) <= 5000
