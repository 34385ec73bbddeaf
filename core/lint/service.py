"""Making a quality report for a stored spec: coverage from the document (or the parsed model), then validity."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from typing import Any

import structlog

from core.lint.coverage import lint_document, lint_model
from core.lint.model import INVALID, Findings
from core.lint.report import LintReport, counts_of
from core.lint.validity import VALIDATION_SECONDS, Validity, validate
from core.models import ApiSpec, SpecFormat

log = structlog.get_logger(__name__)

DOCUMENT_FORMATS = (SpecFormat.OPENAPI3, SpecFormat.SWAGGER2)


def coverage(spec: ApiSpec, document: Any) -> tuple[Findings, int]:
    """Coverage findings: from the document for OpenAPI / Swagger, else from the parsed model."""
    if spec.format in DOCUMENT_FORMATS and isinstance(document, dict):
        return lint_document(document)
    return lint_model(spec)


def build_report(
    name: str, spec: ApiSpec, findings: Findings, operations: int, validity: Validity | None
) -> LintReport:
    """The report of coverage `findings` and `validity`."""
    counts: Counter[str] = Counter(findings.counts)
    items = list(findings.items)
    if validity is not None and validity.checked:
        counts[INVALID] = len(validity.errors) + validity.more
        items = list(validity.errors) + items
    return LintReport(name, spec.format.label, operations, validity, tuple(items), counts_of(items, counts))


async def lint_spec(name: str, spec: ApiSpec, document: Any, seconds: float = VALIDATION_SECONDS) -> LintReport:
    """The full report: coverage, then structural validation in a thread that gives up after `seconds`."""
    started = time.monotonic()
    findings, operations = await asyncio.to_thread(coverage, spec, document)
    validity: Validity | None = None
    if spec.format in DOCUMENT_FORMATS and isinstance(document, dict):
        stop = threading.Event()
        deadline = time.monotonic() + seconds
        try:
            validity = await asyncio.wait_for(asyncio.to_thread(validate, document, deadline, stop), seconds + 1)
        except TimeoutError:
            stop.set()  # the thread ends at the validator's next error
            validity = Validity(False, note="did not finish in time")
    report = build_report(name, spec, findings, operations, validity)
    log.info("spec_linted", spec=name, findings=report.total, valid=None if validity is None else validity.checked
             and not validity.errors, seconds=round(time.monotonic() - started, 2))
    return report
