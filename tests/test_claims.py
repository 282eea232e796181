"""Claims on output objects in the metadata database: kept for their owner,
refused to anyone else, refused where an unclaimed object exists, and
exactly one winner when jobs race for one object."""
import threading

import pytest

from support import drop_postgres_database, postgres_database
from treadle.store import db
from treadle.store.claims import ClaimRefused, OutputClaims, Owner


@pytest.fixture(params=["sqlite", "postgresql"])
def claims(request, tmp_path):
    url = postgres_database() if request.param == "postgresql" else db.sqlite_url(tmp_path)
    engine = db.create_engine(url)
    db.migrate(engine)
    yield OutputClaims(engine)
    engine.dispose()
    if request.param == "postgresql":
        drop_postgres_database(url)


def test_a_claim_is_kept_for_its_owner(claims):
    alice = Owner("111111111111", "BatchPrediction", "bp-1")
    bob = Owner("222222222222", "BatchPrediction", "bp-1")
    uri = "s3://bucket/out/batch-prediction/bp-1.manifest"
    claims.claim(alice, [uri], exists=lambda u: False)
    claims.claim(alice, [uri], exists=lambda u: True)  # a retry: its own object
    with pytest.raises(ClaimRefused) as refused:
        claims.claim(bob, [uri], exists=lambda u: True)
    assert refused.value.uri == uri and refused.value.taken


def test_an_unclaimed_object_that_exists_is_refused(claims):
    owner = Owner("111111111111", "DataSource", "ds-1")
    with pytest.raises(ClaimRefused) as refused:
        claims.claim(owner, ["s3://b/staging/ds-1.csv"], exists=lambda u: True)
    assert not refused.value.taken
    # Refused as a whole: the other object of the request is not claimed either.
    other = Owner("222222222222", "DataSource", "ds-1")
    claims.claim(other, ["s3://b/staging/other.csv"], exists=lambda u: False)
    with pytest.raises(ClaimRefused):
        claims.claim(owner, ["s3://b/staging/free.csv", "s3://b/staging/other.csv"], exists=lambda u: False)
    claims.claim(other, ["s3://b/staging/free.csv"], exists=lambda u: False)


def test_racing_claims_have_exactly_one_winner(claims):
    uri = "s3://bucket/shared/batch-prediction/bp-1.manifest"
    contenders = 8
    start = threading.Barrier(contenders)
    won, refused = [], []

    def contend(n: int) -> None:
        owner = Owner(f"{n:012d}", "BatchPrediction", "bp-1")

        def absent(_):
            start.wait()  # every contender has seen no claim and no object
            return False
        try:
            claims.claim(owner, [uri], exists=absent)
            won.append(owner)
        except ClaimRefused:
            refused.append(owner)

    threads = [threading.Thread(target=contend, args=(n,)) for n in range(contenders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(won) == 1 and len(refused) == contenders - 1
