"""The DataLoaders' ready values: what a resolver may return without awaiting."""

from __future__ import annotations

from collections.abc import Sequence

from graphql_schema.loaders import MISSING, Loader, loaded


async def test_values_are_ready_once_loaded_or_primed_and_gone_once_cleared():
    batches: list[list[int]] = []

    async def double(keys: Sequence[int]) -> list[int]:
        batches.append(list(keys))
        return [2 * key for key in keys]

    loader = Loader(double)
    assert loaded(loader, 1) is MISSING
    assert await loader.load_many([1, 2]) == [2, 4]
    assert (loaded(loader, 1), loaded(loader, 2), loaded(loader, 3)) == (2, 4, MISSING)
    loader.prime(3, 30)
    loader.prime(1, 10)  # already loaded: kept, as DataLoader keeps it
    assert (loaded(loader, 3), loaded(loader, 1)) == (30, 2)
    assert await loader.load(3) == 30
    loader.prime(1, 10, force=True)
    assert (loaded(loader, 1), await loader.load(1)) == (10, 10)
    loader.clear(1)
    loader.clear_many([2])
    assert (loaded(loader, 1), loaded(loader, 2)) == (MISSING, MISSING)
    assert await loader.load_many([1, 2]) == [2, 4]
    loader.clear_all()
    assert loaded(loader, 3) is MISSING
    assert batches == [[1, 2], [1, 2]]
