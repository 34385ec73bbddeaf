"""A quality report for an uploaded spec: structural validity, then documentation coverage.

`core.lint.coverage` finds the gaps (operations without a summary or description, parameters and fields
without descriptions, missing examples, write operations without auth, undocumented errors, unused or undefined
schemas, duplicate operationIds), each at a location (a JSON pointer and method + path); `core.lint.validity`
checks the document against the OpenAPI / Swagger schema with `openapi-spec-validator`; `core.lint.report`
puts them into words (one line for an upload's reply, a summary for chat, the full report as a file).
"""
