"""The `treadle` command: serve, credentials, databases."""
from __future__ import annotations

import argparse
import os
import shlex
import sys

from .config import DEFAULT_PORT, Settings, default_data_dir, is_loopback


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", default=None,
                        help="where Treadle keeps its data (default: $TREADLE_DATA_DIR or ~/.local/share/treadle)")
    parser.add_argument("--database-url", default=os.environ.get("TREADLE_DATABASE_URL"),
                        help="metadata database (default: SQLite in the data dir; postgresql://... for PostgreSQL)")


def _settings(args, **extra) -> Settings:
    return Settings(data_dir=args.data_dir or default_data_dir(), database_url=args.database_url, **extra)


def serve(args) -> int:
    from .logs import configure
    from .workers import run

    if args.auth == "none" and not is_loopback(args.host):
        print("treadle: --auth none is only allowed when binding to a loopback address", file=sys.stderr)
        return 2
    try:
        settings = _serve_settings(args)
    except ValueError as error:
        print(f"treadle: {error}", file=sys.stderr)
        return 2
    if settings.dask_scheduler:
        from .jobs.dask_runner import cluster_problems

        problems = cluster_problems(settings)
        if problems:
            print("treadle: --dask-scheduler cannot be used as configured:\n  " + "\n  ".join(problems),
                  file=sys.stderr)
            return 2
    configure(args.log_level.upper())
    return run(settings, args.log_level)


def _serve_settings(args) -> Settings:
    return _settings(
        args, host=args.host, port=args.port, public_url=args.public_url,
        artifacts_url=args.artifacts_url, allowed_local_paths=args.allow_local_path or [],
        auth=args.auth, job_concurrency=_jobs(args),
        dask_scheduler=args.dask_scheduler, shared_artifacts=args.shared_artifacts,
        peak_requests_per_second=args.peak_requests_per_second, job_lease_seconds=args.job_lease_seconds,
        workers=args.workers, upload_dir=args.upload_dir, max_upload_bytes=args.max_upload_bytes,
        max_request_bytes=args.max_request_bytes, header_timeout=args.header_timeout,
        body_timeout=args.body_timeout, keep_alive_timeout=args.keep_alive_timeout,
        **({"part_bytes": args.part_bytes} if args.part_bytes else {}))


def _jobs(args) -> int:
    """--jobs, else the CPU count; on a Dask cluster 0, which is the
    cluster's thread count at each moment."""
    if args.jobs:
        return args.jobs
    return 0 if args.dask_scheduler else (os.cpu_count() or 1)


def _open_store(args, store_class):
    """An operator store (credentials, databases) on the server's metadata
    database, migrated first so the CLI works before the first `serve`."""
    from .store import db
    from .store.secrets import MasterKey

    settings = _settings(args)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = db.create_engine(settings.effective_database_url)
    db.migrate(engine)
    return store_class(engine, MasterKey.load(settings.data_dir))


def credentials(args) -> int:
    from .store.credentials import CredentialStore

    store = _open_store(args, CredentialStore)
    if args.action == "create":
        try:
            key = store.create(args.user, args.account)
        except ValueError as error:
            print(f"treadle: {error}", file=sys.stderr)
            return 2
        # `export` lines, so that `eval "$(treadle credentials create ...)"`
        # hands the key to the programs the shell starts afterwards.
        print(f"export AWS_ACCESS_KEY_ID={shlex.quote(key.access_key_id)}")
        print(f"export AWS_SECRET_ACCESS_KEY={shlex.quote(key.secret_access_key)}")
        print(f"# account {key.account}, user {key.arn}", file=sys.stderr)
    elif args.action == "list":
        for row in store.list():
            print(f"{row['access_key_id']}\t{row['account']}\t{row['user_name']}\t"
                  f"{'active' if row['active'] else 'inactive'}")
    elif args.action == "revoke":
        if not store.deactivate(args.access_key_id):
            print(f"treadle: no access key {args.access_key_id}", file=sys.stderr)
            return 1
    return 0


def databases(args) -> int:
    from .store.databases import DatabaseRegistry

    registry = _open_store(args, DatabaseRegistry)
    if args.action == "add":
        try:
            kind = registry.add(args.identifier, args.url)
        except ValueError as error:
            print(f"treadle: {error}", file=sys.stderr)
            return 2
        print(f"{args.identifier}\t{kind}")
    elif args.action == "list":
        for identifier, kind in registry.list():
            print(f"{identifier}\t{kind}")
    elif args.action == "remove":
        if not registry.remove(args.identifier):
            print(f"treadle: no database {args.identifier}", file=sys.stderr)
            return 1
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="treadle", description="A self-hosted Amazon Machine Learning service")
    commands = parser.add_subparsers(dest="command", required=True)

    p = commands.add_parser("serve", help="run the API server, job runner and real-time endpoints")
    _common(p)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=DEFAULT_PORT)
    p.add_argument("--public-url", default=None, help="base URL clients reach this server at (EndpointUrl, LogUri)")
    p.add_argument("--artifacts-url", default=os.environ.get("TREADLE_ARTIFACTS_URL"),
                   help="where logs, statistics and models are kept (default: the data dir; s3://bucket/prefix)")
    p.add_argument("--allow-local-path", action="append", metavar="DIR",
                   help="a directory file:// locations may point into (repeatable)")
    p.add_argument("--upload-dir", default=None, metavar="DIR",
                   help="where the console stores uploaded CSV files, inside an --allow-local-path directory "
                        "(default: uploads in the first one; without one, uploads are off)")
    p.add_argument("--max-upload-bytes", type=int, default=1 << 30, metavar="N",
                   help="the largest CSV file the console accepts (default 1 GiB)")
    p.add_argument("--auth", choices=("sigv4", "none"), default="sigv4")
    p.add_argument("--jobs", type=int, default=None,
                   help="concurrent jobs (default: the CPU count; on a Dask cluster, its thread count)")
    p.add_argument("--dask-scheduler", default=os.environ.get("TREADLE_DASK_SCHEDULER"), metavar="ADDRESS",
                   help="run jobs on the Dask cluster of this scheduler (tcp://host:port; "
                        "default $TREADLE_DASK_SCHEDULER); needs PostgreSQL metadata, s3:// artifacts or "
                        "--shared-artifacts, and TREADLE_MASTER_KEY")
    p.add_argument("--shared-artifacts", action="store_true",
                   help="the local artifact folder is mounted at the same path on every Dask worker")
    p.add_argument("--part-bytes", type=int, default=None, metavar="N",
                   help="on a Dask cluster, a job reads its data in parts of about N bytes, each a task of "
                        "its own (default $TREADLE_PART_BYTES, else 64 MiB)")
    p.add_argument("--workers", type=int, default=1,
                   help="HTTP worker processes answering the API and Predict on the one port (default 1; "
                        "a server that mostly answers Predict wants one per core)")
    p.add_argument("--peak-requests-per-second", type=int, default=200,
                   help="per-endpoint Predict rate limit (PeakRequestsPerSecond)")
    p.add_argument("--job-lease-seconds", type=float, default=30.0,
                   help="how long a running job's claim lasts without renewal; after a crash its job "
                        "is run again once the lease has run out")
    # docs/behaviour.md, "Request limits and timeouts"
    p.add_argument("--max-request-bytes", type=int, default=Settings.max_request_bytes,
                   help="the largest request body accepted; a larger one is answered 413 without being "
                        f"read (default {Settings.max_request_bytes})")
    p.add_argument("--header-timeout", type=float, default=Settings.header_timeout,
                   help="seconds a client has to send a request's head, from connecting or, on a "
                        f"kept-alive connection, from the head's first byte (default {Settings.header_timeout:g})")
    p.add_argument("--body-timeout", type=float, default=Settings.body_timeout,
                   help="seconds a client has to send a request's whole body once its head is in "
                        f"(default {Settings.body_timeout:g})")
    p.add_argument("--keep-alive-timeout", type=float, default=Settings.keep_alive_timeout,
                   help=f"seconds an idle connection stays open after a response (default {Settings.keep_alive_timeout:g})")
    p.add_argument("--log-level", default="info")
    p.set_defaults(func=serve)

    p = commands.add_parser("credentials", help="manage access keys")
    p.set_defaults(func=credentials)
    actions = p.add_subparsers(dest="action", required=True)
    c = actions.add_parser("create", help="create an access key; prints export AWS_ACCESS_KEY_ID=... lines for eval")
    _common(c)
    c.add_argument("--user", required=True)
    c.add_argument("--account", default=None, help="12-digit account id (default: the user's, else a new one)")
    c = actions.add_parser("list", help="list access keys (never secrets)")
    _common(c)
    c = actions.add_parser("revoke", help="deactivate an access key")
    _common(c)
    c.add_argument("access_key_id")

    p = commands.add_parser("databases", help="register databases for RDS and Redshift datasources")
    p.set_defaults(func=databases)
    actions = p.add_subparsers(dest="action", required=True)
    c = actions.add_parser("add", help="register ID -> URL (mysql://host:port for RDS, "
                                       "postgresql://host:port for Redshift); credentials come from each request")
    _common(c)
    c.add_argument("identifier")
    c.add_argument("url")
    c = actions.add_parser("list", help="list registered databases (never their URLs)")
    _common(c)
    c = actions.add_parser("remove", help="forget a registered database")
    _common(c)
    c.add_argument("identifier")
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
