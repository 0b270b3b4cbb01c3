/* awsnet.core.mariadb — a MariaDB/MySQL session over libmariadb (Connector/C).
 *
 * core.mariadb.connect(opts) -> conn | nil, errno, sqlstate, message, seconds (the call took)
 *   opts: host, port, socket, user, password, database, charset, connect_timeout,
 *   read_timeout, write_timeout (whole seconds), tls ("off" | "preferred" | "required"),
 *   ca (PEM file), verify (chain and host name), cleartext (allow mysql_clear_password).
 * conn:prepare(sql) -> stmt (pins conn) | nil, errno, sqlstate, message, seconds
 * conn:run(sql)     -> text protocol, for statements that cannot be prepared and for
 *                      transaction control: {affected_rows, insert_id} or {columns, rows}
 * conn:info()       -> {server_version, tls_version, tls_cipher, host_info, bulk}
 * conn:close()      -> idempotent, also __gc and __close
 * stmt:execute(...) -> ncolumns, affected_rows, insert_id (a result set is then pending)
 * stmt:columns()    -> metadata of the pending result {name, table, type, length, ...}
 * stmt:fetch(as_array) -> row | false at the end | nil, errno, ...
 * stmt:execute_many(rows, first, last) -> affected_rows, insert_id: MariaDB array binding of
 *                      rows[first..last] (arrays of parameters); needs stmt:bulk_supported()
 * stmt:close()
 * Values: nil or core.mariadb.null -> NULL; booleans -> TINYINT; integers -> BIGINT; floats ->
 * DOUBLE; strings are binary-safe. Integer columns come back as Lua integers (an unsigned value
 * above 2^63-1 as a decimal string), FLOAT/DOUBLE as floats, everything else (DECIMAL, dates,
 * text, blobs) as strings, SQL NULL as core.mariadb.null. Only one result is pending per
 * connection: a new command first discards the rows not yet fetched. */
#ifndef AWSNET_MARIADB_H
#define AWSNET_MARIADB_H

#include <lua.h>

void mariadb_open(lua_State *L);

#endif
