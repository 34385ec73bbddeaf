"""Export a sentence-transformers model to ONNX, once, checked against PyTorch before anyone uses it.

Run as its own process (`python -m core.onnx_export MODEL_FOLDER OUT_FOLDER`): the export needs torch and
sentence-transformers, which the ONNX backend otherwise never imports (they are most of a PyTorch process's
memory), and a crash or hang here must not take the bot with it. `core.embedding` starts it with a time
limit when no export of the configured model is found, and falls back to PyTorch if it fails.

What it writes into OUT_FOLDER:
- `model.onnx`: the transformer (token ids in, last hidden state out), float32;
- `model-int8.onnx`: the same with int8 weights (ONNX Runtime's dynamic quantisation, per channel);
- `tokenizer.json`: the model's fast tokenizer (the runtime sets truncation and padding itself);
- `manifest.json`: the source model's fingerprint, the pooling and sequence length the runtime must
  apply, each file's SHA-256, the versions that made it, and how close each file's vectors came to
  PyTorch's on a fixed set of probe texts. An export whose vectors are not close enough is refused.

Pooling and normalisation stay outside the graph (a few lines of numpy in `core.embedding`), so the graph is
the plain Hugging Face encoder and only models shaped Transformer → Pooling (mean or CLS) → optional
Normalize are exported; anything else is refused and keeps running on PyTorch.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any

EXPORT_FORMAT = 1
"""The recipe's version (graph inputs, opset, quantisation settings); exports made by another are not used."""

MANIFEST = "manifest.json"
FILES = {"onnx": "model.onnx", "onnx-int8": "model-int8.onnx"}
"""The file of each ONNX backend (`EMBEDDING_BACKEND`) inside an export folder."""
TOKENIZER = "tokenizer.json"

OPSET = 17
INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")

# The least cosine similarity, on every probe text, between a file's vector and PyTorch's for the export to
# be accepted. float32 differs from PyTorch only in summation order (measured ≥ 0.99999); int8 weights move
# vectors a little (measured ≥ 0.96 on Stripe's 471 texts, 0.994 on average); below these something broke.
MIN_PROBE_COSINE = {"onnx": 0.999, "onnx-int8": 0.95}

PROBE_TEXTS = (
    "how do I refund a charge?",
    "POST /v1/customers Create a customer",
    "GET /repos/{owner}/{repo}/pulls/{pull_number} Get a pull request",
    "List all members of a channel with pagination",
    "authentication: pass the secret key as a bearer token in the Authorization header",
    "  leading and trailing spaces  ",
    "",
    "a",
    "Ünïcödé, 中文 and emoji 🎉 in a description",
    "delete a webhook endpoint " * 80,  # longer than the 256-token limit: truncation must agree
)


def sha256_file(path: Path) -> str:
    """The SHA-256 of a file, read in chunks."""
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def read_manifest(folder: Path) -> dict[str, Any] | None:
    """The export manifest in `folder`, or None when there is none or it cannot be read."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) else None


def _pooling(model: Any) -> str:
    """`mean` or `cls`: the pooling the runtime applies; raises for a pipeline this export cannot reproduce."""
    from sentence_transformers.base.modules.normalize import Normalize
    from sentence_transformers.base.modules.transformer import Transformer
    from sentence_transformers.sentence_transformer.modules.pooling import Pooling

    modules = list(model)
    if not modules or not isinstance(modules[0], Transformer):
        raise ValueError("the first module is not a Transformer")
    if len(modules) < 2 or not isinstance(modules[1], Pooling):
        raise ValueError("the second module is not a Pooling")
    if any(not isinstance(m, Normalize) for m in modules[2:]):
        raise ValueError("modules after Pooling other than Normalize")
    mode = modules[1].pooling_mode
    if mode not in ("mean", "cls"):
        raise ValueError(f"pooling mode {mode!r} is not supported")
    return str(mode)


def _export(folder: Path, out: Path) -> dict[str, Any]:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import numpy as np
    import onnxruntime as ort
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from sentence_transformers import SentenceTransformer

    from core.embedding import OnnxRuntimeModel, fingerprint_model_folder

    # Eager attention traces to plain MatMul/Softmax, which ONNX Runtime fuses into its own attention kernel;
    # the SDPA path traces to a graph it does not fuse.
    model = SentenceTransformer(str(folder), device="cpu", model_kwargs={"attn_implementation": "eager"})
    pooling = _pooling(model)
    if getattr(model[0], "do_lower_case", False):
        raise ValueError("do_lower_case models are not supported")
    model.tokenizer.backend_tokenizer.save(str(out / TOKENIZER))
    transformer: Any = model[0]
    encoder = transformer.auto_model.eval()

    class _LastHiddenState(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            return self.inner(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    sample = model.preprocess(["an example sentence to trace", "another"])
    dynamic = {0: "batch", 1: "tokens"}
    fp32 = out / FILES["onnx"]
    with torch.no_grad():
        torch.onnx.export(
            _LastHiddenState(encoder),
            tuple(sample[name] for name in INPUT_NAMES),
            str(fp32),
            dynamo=False,
            input_names=list(INPUT_NAMES),
            output_names=["last_hidden_state"],
            dynamic_axes={name: dynamic for name in (*INPUT_NAMES, "last_hidden_state")},
            opset_version=OPSET,
        )
    quantize_dynamic(str(fp32), str(out / FILES["onnx-int8"]), weight_type=QuantType.QInt8, per_channel=True)

    max_seq_length = int(model.max_seq_length or 512)
    manifest: dict[str, Any] = {
        "format": EXPORT_FORMAT,
        "source_fingerprint": fingerprint_model_folder(folder),
        "pooling": pooling,
        "max_seq_length": max_seq_length,
        "tokenizer_sha256": sha256_file(out / TOKENIZER),
        "files": {},
        "versions": {"torch": torch.__version__, "onnxruntime": ort.__version__},
    }
    reference = model.encode(list(PROBE_TEXTS), normalize_embeddings=True, convert_to_numpy=True)
    for backend, name in FILES.items():
        runtime = OnnxRuntimeModel(out / name, out / TOKENIZER, pooling=pooling, max_seq_length=max_seq_length)
        vectors = runtime.encode(list(PROBE_TEXTS), batch_size=4)
        worst = float(np.min(np.sum(vectors * reference, axis=1)))
        if worst < MIN_PROBE_COSINE[backend]:
            least = MIN_PROBE_COSINE[backend]
            raise ValueError(f"{name}: cosine {worst:.4f} to PyTorch on a probe text, under {least}")
        manifest["files"][backend] = {"file": name, "sha256": sha256_file(out / name), "probe_min_cosine": worst}
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest


def main(argv: list[str]) -> int:
    """`python -m core.onnx_export MODEL_FOLDER OUT_FOLDER`: export into OUT_FOLDER (created), 0 on success."""
    if len(argv) != 2:
        print("usage: python -m core.onnx_export MODEL_FOLDER OUT_FOLDER", file=sys.stderr)
        return 2
    folder, out = Path(argv[0]), Path(argv[1])
    out.mkdir(parents=True, exist_ok=True)
    manifest = _export(folder, out)
    print(json.dumps({"files": {k: v["probe_min_cosine"] for k, v in manifest["files"].items()}}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
