"""The training job's disk cache of featurized rows: every row once per
pass, the same order every pass, a real shuffle, bounded pending memory."""
import numpy as np
import pytest

from treadle.jobs import feature_cache as fc
from treadle.jobs.feature_cache import FeatureCache, Rows
from treadle.learning.features import CsrBatch


def chunk(start: int, n: int) -> Rows:
    """Row r (global id start+i) has r % 3 + 1 entries, each holding the id."""
    ids = np.arange(start, start + n)
    lens = ids % 3 + 1
    indptr = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
    indices = np.repeat(ids, lens).astype(np.int32)
    return Rows(CsrBatch(indptr, indices, indices.astype(np.float32), 1 << 30), ids.astype(np.float64),
                np.ones(n))


def one_pass(cache: FeatureCache) -> np.ndarray:
    out = []
    for rows in cache.passes(1 << 30):
        b, ids = rows.batch, rows.y.astype(np.int64)
        assert np.array_equal(np.diff(b.indptr), ids % 3 + 1)
        owner = np.repeat(ids, np.diff(b.indptr))
        assert np.array_equal(b.indices, owner) and np.array_equal(b.data, owner)
        out.append(rows.y.astype(np.int64))
    return np.concatenate(out)


@pytest.mark.parametrize("shuffle", [True, False])
def test_every_row_once_per_pass_in_a_fixed_order(tmp_path, shuffle):
    n = 50_000
    cache = FeatureCache(expected_rows=n, shuffle=shuffle, seed=7, directory=str(tmp_path))
    for start in range(0, n, 4096):
        cache.add(chunk(start, min(4096, n - start)))
    cache.seal()
    first, second = one_pass(cache), one_pass(cache)
    cache.close()
    assert np.array_equal(np.sort(first), np.arange(n))
    assert np.array_equal(first, second)
    if shuffle:
        # far from the input order: rank correlation of a real shuffle is ~0
        assert abs(np.corrcoef(first, np.arange(n))[0, 1]) < 0.05
    else:
        assert np.array_equal(first, np.arange(n))


def test_seeds_give_different_orders(tmp_path):
    orders = []
    for seed in (1, 2):
        cache = FeatureCache(expected_rows=10_000, shuffle=True, seed=seed, directory=str(tmp_path))
        cache.add(chunk(0, 10_000))
        cache.seal()
        orders.append(one_pass(cache))
        cache.close()
    assert not np.array_equal(orders[0], orders[1])


def test_pending_rows_stay_under_the_budget_with_many_buckets(tmp_path, monkeypatch):
    monkeypatch.setattr(fc, "PENDING_BUDGET", 1 << 20)
    monkeypatch.setattr(fc, "BUCKET_TARGET_BYTES", 64 << 10)
    cache = FeatureCache(expected_rows=400_000, shuffle=True, seed=3, directory=str(tmp_path))
    most = 0
    for start in range(0, 400_000, 20_000):
        cache.add(chunk(start, 20_000))
        most = max(most, cache._pending_total)
    assert cache.buckets > 100  # ~16 MB of rows in 64 KB buckets
    assert most <= (1 << 20) + 20_000 * 40  # the budget, plus at most one chunk's rows
    cache.seal()
    assert np.array_equal(np.sort(one_pass(cache)), np.arange(400_000))
    cache.close()


def test_rows_in_order_fill_bounded_buckets(tmp_path, monkeypatch):
    """Without a shuffle the cache still reads a pass bucket by bucket, so a
    pass never holds more than two buckets, however many rows there are."""
    monkeypatch.setattr(fc, "BUCKET_TARGET_BYTES", 64 << 10)
    cache = FeatureCache(expected_rows=100_000, shuffle=False, directory=str(tmp_path))
    for start in range(0, 100_000, 1000):
        cache.add(chunk(start, 1000))
    cache.seal()
    assert cache.buckets > 30  # ~3 MB of rows in 64 KB buckets
    chunk_bytes = chunk(0, 1000).nbytes
    for bucket in range(cache.buckets):
        assert sum(rows.nbytes for rows in cache._prepare(bucket, 1 << 30)) <= (64 << 10) + chunk_bytes
    assert np.array_equal(one_pass(cache), np.arange(100_000))
    cache.close()


def test_bucket_count_follows_the_rows_expected_and_their_size(tmp_path, monkeypatch):
    monkeypatch.setattr(fc, "BUCKET_TARGET_BYTES", 1 << 20)
    per_row = chunk(0, 1000).nbytes / 1000
    for rows in (10_000, 100_000):
        cache = FeatureCache(expected_rows=rows, shuffle=True, directory=str(tmp_path))
        cache.add(chunk(0, 1000))
        assert cache.buckets == int(np.ceil(rows * per_row / (1 << 20)))
        cache.close()


def test_the_shuffle_is_uniform(tmp_path, monkeypatch):
    """Where row 0 lands over many seeds: every position about equally often,
    including with several buckets and pieces (riffles of shuffled pieces)."""
    monkeypatch.setattr(fc, "BUCKET_TARGET_BYTES", 200)
    monkeypatch.setattr(fc, "FLUSH_BYTES", 60)
    n, seeds = 16, 640
    landed = np.zeros((n, n))
    for seed in range(seeds):
        cache = FeatureCache(expected_rows=n, shuffle=True, seed=seed, directory=str(tmp_path))
        for start in range(0, n, 4):
            cache.add(chunk(start, 4))
        cache.seal()
        order = one_pass(cache)
        cache.close()
        landed[order, np.arange(n)] += 1
    assert cache.buckets > 1
    expected = seeds / n
    # chi-square per row id over positions, 15 degrees of freedom: median ~14.3, 99.9th percentile ~37.7
    chi2 = ((landed - expected) ** 2 / expected).sum(axis=1)
    print(cache.buckets, np.median(chi2), chi2.max())
    assert np.median(chi2) < 22 and chi2.max() < 45, chi2
