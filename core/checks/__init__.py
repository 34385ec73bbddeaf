"""Checking a pasted request (or response) against the spec it is meant for.

`core.checks.pasted` reads what was pasted (a curl command, a raw HTTP request, a body with the operation
named, a body alone) without ever running a shell; `core.checks.secrets` masks credentials in it;
`core.checks.contract` finds the operation in the spec's original document and turns its schemas into JSON
Schema (OpenAPI 3.0 `nullable`, Swagger 2, 3.1 as it is); `core.checks.validate` checks the request against
it with `jsonschema`, bounded in time; `core.checks.service` ties them to the registry and builds the reply.
"""
