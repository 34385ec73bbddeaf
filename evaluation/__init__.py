"""Benchmark tooling, not runtime code: measuring how well the assistant retrieves, on question files.

`evaluation.retrieval` scores retrieval against gold items (recall@k, MRR@10, next to a plain BM25 baseline).
It is used by `api-assistant eval` (imported only when that command runs), the benchmarks and the real-spec
tests. The core never imports it; it uses the core only through `core.assistant.Assistant`.
"""
