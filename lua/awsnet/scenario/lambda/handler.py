"""The article's Lambda: writes a row into the MySQL database in the other account.

Event {"action": "write"} (the default) runs the article's two statements:
CREATE TABLE IF NOT EXISTS users (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(50)) and
INSERT INTO users (name) VALUES ('テストユーザー') (the name bound as a parameter; event "name"
replaces it). With RDS_EXTRA_COLUMNS=1 (the scenario config's extra_columns = true) the table also
has an email column (event "email"). Event {"action": "verify"} reads back what is there:
SHOW TABLES, SHOW COLUMNS FROM users and the rows, each as {columns, rows} with what the mysql
client needs to lay it out (column names, numeric, nullable; values as text, null for NULL), plus
the short forms tables, columns and rows. Connection settings come from the environment:
RDS_HOST, RDS_USERNAME, RDS_PASSWORD, RDS_DATABASE, and optionally RDS_PORT (3306) and
RDS_SSL_CA (a CA bundle: the session is then TLS with the server certificate verified).
PyMySQL is bundled in the deployment zip next to this file.
"""
import os

import pymysql

CREATE_USERS = "CREATE TABLE IF NOT EXISTS users (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(50))"
INSERT_USER = "INSERT INTO users (name) VALUES (%s)"
ARTICLE_NAME = "テストユーザー"

CREATE_USERS_EXTRA = (
    "CREATE TABLE IF NOT EXISTS users (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(50),"
    " email VARCHAR(255))"
)
INSERT_USER_EXTRA = "INSERT INTO users (name, email) VALUES (%s, %s)"

# MySQL field types the mysql client right-aligns (its IS_NUM: DECIMAL..INT24 but TIMESTAMP, YEAR,
# NEWDECIMAL).
_NUMERIC = {0, 1, 2, 3, 4, 5, 6, 8, 9, 13, 246}


def _extra_columns():
    return os.environ.get("RDS_EXTRA_COLUMNS", "") in ("1", "true")


def _connect():
    ssl = None
    if os.environ.get("RDS_SSL_CA"):
        ssl = {"ca": os.environ["RDS_SSL_CA"]}
    return pymysql.connect(
        host=os.environ["RDS_HOST"],
        port=int(os.environ.get("RDS_PORT", "3306")),
        user=os.environ["RDS_USERNAME"],
        password=os.environ["RDS_PASSWORD"],
        database=os.environ["RDS_DATABASE"],
        charset="utf8mb4",
        connect_timeout=5,
        ssl=ssl,
    )


def _write(conn, event):
    name = event.get("name", ARTICLE_NAME)
    with conn.cursor() as cur:
        if _extra_columns():
            cur.execute(CREATE_USERS_EXTRA)
            cur.execute(INSERT_USER_EXTRA, (name, event.get("email", "test@example.com")))
        else:
            cur.execute(CREATE_USERS)
            cur.execute(INSERT_USER, (name,))
        row_id = cur.lastrowid
    conn.commit()
    return {"statusCode": 200, "body": "row %d inserted into users" % row_id, "id": row_id}


def _text(v):
    # MySQL 8 sends SHOW COLUMNS' Type as a binary string; the client shows it as text
    if isinstance(v, (bytes, bytearray)):
        return v.decode("utf-8", "replace")
    if v is None or isinstance(v, str):
        return v
    return str(v)


def _query(cur, sql):
    """A result as the mysql client sees it: column names, numeric and nullable flags, and the
    rows as text (None for NULL)."""
    cur.execute(sql)
    columns = [{"name": d[0], "numeric": d[1] in _NUMERIC, "nullable": bool(d[6])} for d in cur.description]
    rows = [[_text(v) for v in r] for r in cur.fetchall()]
    return {"sql": sql, "columns": columns, "rows": rows}


def _verify(conn):
    with conn.cursor() as cur:
        show_tables = _query(cur, "SHOW TABLES")
        tables = [r[0] for r in show_tables["rows"]]
        results, columns, rows = [show_tables], [], []
        if "users" in tables:
            show_columns = _query(cur, "SHOW COLUMNS FROM users")
            results.append(show_columns)
            keys = ("field", "type", "null", "key", "default", "extra")
            columns = [dict(zip(keys, r)) for r in show_columns["rows"]]
            select = _query(cur, "SELECT * FROM users ORDER BY id")
            results.append(select)
            names = [c["name"] for c in select["columns"]]
            for r in select["rows"]:
                row = dict(zip(names, r))
                if row.get("id") is not None:
                    row["id"] = int(row["id"])
                rows.append(row)
    return {"statusCode": 200, "database": os.environ["RDS_DATABASE"], "tables": tables, "columns": columns,
            "rows": rows, "results": results}


def lambda_handler(event, context):
    event = event or {}
    action = event.get("action", "write")
    if action not in ("write", "verify"):
        return {"statusCode": 400, "body": "unknown action %r" % action}
    try:
        conn = _connect()
    except pymysql.MySQLError as e:
        # The message names the host and the reason, never the password.
        return {"statusCode": 502, "body": "cannot connect to %s: %s" % (os.environ.get("RDS_HOST"), e.args[-1])}
    try:
        if action == "verify":
            return _verify(conn)
        return _write(conn, event)
    finally:
        conn.close()
