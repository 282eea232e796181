"""Before a job writes into a user's location, it claims every object it
will write there (docs/behaviour.md, "Output locations are never
overwritten by someone else's job")."""
from __future__ import annotations

from ..data import locations
from ..data.locations import LocationError
from ..store.claims import ClaimRefused, OutputClaims, Owner
from .context import JobContext, JobFailed


def claim_outputs(ctx: JobContext, uris: list[str], member: str) -> None:
    """Claim `uris` (named as the request's `member` led to them) for this
    job's object, or fail the job naming the first one it may not write."""
    allowed = ctx.settings.confinement
    try:
        # Messages name the user's spelling of an object, never the server's path.
        given = {locations.canonical(uri, allowed): uri for uri in uris}
        owner = Owner(ctx.account, ctx.entity.kind, ctx.entity.entity_id)
        OutputClaims(ctx.entities.engine).claim(owner, list(given), lambda uri: locations.exists(uri, allowed))
    except LocationError as error:
        raise JobFailed(f"Cannot write to the {member}: {error}")
    except ClaimRefused as refused:
        uri, kind = given[refused.uri], ctx.entity.kind
        if refused.taken:
            raise JobFailed(f"Cannot write {uri}: another job has written or is writing it, and a {kind} never "
                            f"replaces an object it did not write; choose another {member}")
        raise JobFailed(f"Cannot write {uri}: an object this {kind} did not write is already there, and it "
                        f"is left as it is; choose another {member}")
