"""RDS (MySQL/MariaDB) and Redshift (PostgreSQL protocol) queries, streamed
with a server-side cursor into a CSV file that is then staged like S3 data."""
from __future__ import annotations

import csv
import datetime as dt
import decimal
import io
from dataclasses import dataclass
from urllib.parse import quote, urlsplit, urlunsplit

import sqlalchemy as sa

FETCH_ROWS = 5000


class QueryError(Exception):
    pass


@dataclass
class QueryResult:
    columns: list[str]
    types: list[str]  # NUMERIC | BINARY | CATEGORICAL | TEXT, from the column types
    rows: int


def connection_url(registered: str, database: str, username: str, password: str) -> str:
    """The registered server address with the request's database and credentials."""
    parts = urlsplit(registered)
    scheme = parts.scheme.split("+", 1)[0]
    driver = {"mysql": "mysql+pymysql", "mariadb": "mysql+pymysql",
              "postgresql": "postgresql+psycopg", "postgres": "postgresql+psycopg",
              "redshift": "postgresql+psycopg"}[scheme]
    host = parts.hostname or "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{quote(username, safe='')}:{quote(password, safe='')}@{host}"
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((driver, netloc, "/" + quote(database), parts.query, ""))


# Column type codes of unbounded text: MySQL's BLOB/TEXT family (pymysql
# field types 249-252) and PostgreSQL's `text` (OID 25). Such columns become
# TEXT attributes; bounded strings (varchar, char, enum) are CATEGORICAL.
_LONG_TEXT_CODES = {249, 250, 251, 252, 25}


def _attribute_type(type_code, python_type) -> str:
    if python_type is bool:
        return "BINARY"
    if python_type in (int, float, decimal.Decimal):
        return "NUMERIC"
    if python_type is str and type_code in _LONG_TEXT_CODES:
        return "TEXT"
    return "CATEGORICAL"


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8", errors="replace")
    # End-of-line characters cannot appear in Amazon ML's CSV records, even
    # quoted; they become spaces.
    return str(value).replace("\r\n", " ").replace("\n", " ").replace("\r", " ")


def run_query(url: str, query: str, out: io.TextIOBase, timeout: float | None = None) -> QueryResult:
    """Write the query's rows as CSV with a header line to `out`; `timeout`
    bounds the query's time on the database server, in seconds."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool, connect_args=_connect_args(url, timeout))
    writer = csv.writer(out, lineterminator="\n")
    try:
        with _connect(engine) as conn:
            result = conn.execution_options(stream_results=True, yield_per=FETCH_ROWS).exec_driver_sql(query)
            if not result.returns_rows:
                raise QueryError("SelectSqlQuery returned no result set; it must be a SELECT")
            columns = list(result.keys())
            type_codes = [d[1] for d in result.cursor.description]
            writer.writerow(columns)
            python_types: list[type | None] = [None] * len(columns)
            count = 0
            for batch in result.partitions(FETCH_ROWS):
                for row in batch:
                    for i, value in enumerate(row):
                        if python_types[i] is None and value is not None:
                            python_types[i] = type(value)
                    writer.writerow([_text(v) for v in row])
                count += len(batch)
    except QueryError:
        raise
    except sa.exc.DBAPIError as error:
        raise QueryError(_database_message(error))
    except sa.exc.SQLAlchemyError as error:
        raise QueryError(str(error).split("\n", 1)[0])
    finally:
        engine.dispose()
    types = [_attribute_type(code, t) for code, t in zip(type_codes, python_types)]
    return QueryResult(columns, types, count)


def _connect(engine: sa.Engine) -> sa.Connection:
    try:
        return engine.connect()
    except sa.exc.SQLAlchemyError:
        raise
    except Exception as error:
        # Raised by the driver itself, not the server, and its text may quote
        # the credentials (pymysql: the character of a password it cannot
        # encode, and where): only the kind of error is kept.
        raise QueryError(f"the database driver could not use these connection settings "
                         f"({type(error).__name__})") from None


def _connect_args(url: str, timeout: float | None = None) -> dict:
    args: dict = {"connect_timeout": 10}
    if timeout is not None:
        if url.startswith("postgresql"):
            args["options"] = f"-c statement_timeout={int(timeout * 1000)}"
        else:  # pymysql: each read from the server, so a query that sends nothing for that long
            args["read_timeout"] = timeout
    return args


def _database_message(error: sa.exc.DBAPIError) -> str:
    # The driver's own message, without SQLAlchemy's wrapper text and never
    # with the connection URL (it carries the password).
    original = error.orig
    text = str(original.args[1]) if getattr(original, "args", None) and len(original.args) > 1 else str(original)
    return text.strip().split("\n")[0]
