"""The article's Lambda: writes a row into the MySQL database in the other account.

Event {"action": "write"} (the default) does what the article does: CREATE TABLE users if it is
missing, then INSERT one row. Event {"action": "verify"} reads back what is there: SHOW TABLES,
SHOW COLUMNS FROM users and the rows. Connection settings come from the environment:
RDS_HOST, RDS_USERNAME, RDS_PASSWORD, RDS_DATABASE, and optionally RDS_PORT (3306) and
RDS_SSL_CA (a CA bundle: the session is then TLS with the server certificate verified).
PyMySQL is bundled in the deployment zip next to this file.
"""
import os

import pymysql

CREATE_USERS = (
    "CREATE TABLE IF NOT EXISTS users ("
    " id INT AUTO_INCREMENT PRIMARY KEY,"
    " name VARCHAR(255) NOT NULL,"
    " email VARCHAR(255) NOT NULL"
    ")"
)
INSERT_USER = "INSERT INTO users (name, email) VALUES (%s, %s)"


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
        connect_timeout=5,
        ssl=ssl,
    )


def _write(conn, event):
    name = event.get("name", "John Doe")
    email = event.get("email", "john.doe@example.com")
    with conn.cursor() as cur:
        cur.execute(CREATE_USERS)
        cur.execute(INSERT_USER, (name, email))
        row_id = cur.lastrowid
    conn.commit()
    return {"statusCode": 200, "body": "row %d inserted into users" % row_id, "id": row_id}


def _verify(conn):
    with conn.cursor() as cur:
        cur.execute("SHOW TABLES")
        tables = [r[0] for r in cur.fetchall()]
        columns, rows = [], []
        if "users" in tables:
            cur.execute("SHOW COLUMNS FROM users")
            columns = [{"field": r[0], "type": r[1], "null": r[2], "key": r[3]} for r in cur.fetchall()]
            cur.execute("SELECT id, name, email FROM users ORDER BY id")
            rows = [{"id": r[0], "name": r[1], "email": r[2]} for r in cur.fetchall()]
    return {"statusCode": 200, "tables": tables, "columns": columns, "rows": rows}


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
