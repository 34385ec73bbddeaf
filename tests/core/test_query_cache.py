"""The query-embedding cache holds vectors packed (base64 float32), exact, and still reads entries stored as
JSON numbers before packing."""

import numpy as np

from core.actions import Origin, PathAttachment, UploadSpec
from core.assistant import pack_vector, unpack_vector
from core.state import NS_EMBEDDINGS


def test_query_vectors_are_cached_packed_and_exact():
    vector = [float(x) for x in np.random.default_rng(3).standard_normal(384).astype(np.float32)]
    packed = pack_vector(vector)
    assert unpack_vector(packed) == vector  # the model's float32 values survive exactly
    assert len(packed) == 2048  # against about 7,700 characters as JSON numbers


async def test_cached_query_vectors_are_packed_and_old_entries_still_read(assistant, example_spec):
    team = Origin("slack", "T1", user="U1")
    await assistant.ingest(UploadSpec(team, PathAttachment(example_spec), "bookshop"))
    first = await assistant.search(team, "how do I refund an order?")
    key = f"{(await assistant.embedder.identity()).key}|how do I refund an order?"
    stored = await assistant.state.get(NS_EMBEDDINGS, key)
    assert isinstance(stored, str) and len(stored) == 2048
    vector = await assistant.embedder.embed_query("how do I refund an order?")
    await assistant.state.set(NS_EMBEDDINGS, key, [float(x) for x in vector])  # as stored before packing
    again = await assistant.search(team, "how do I refund an order?")
    assert [i.document.key for i in again] == [i.document.key for i in first]
