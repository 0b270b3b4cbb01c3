/* awsnet.core.mariadb: sessions, prepared statements and array binding over libmariadb. */
#include "mariadb.h"
#include "core.h"

#include <errmsg.h>
#include <limits.h>
#include <mysql.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CONN_MT "awsnet.mariadb.conn"
#define STMT_MT "awsnet.mariadb.stmt"
#define RES_MT "awsnet.mariadb.res"
#define NULL_UPVALUE lua_upvalueindex(1)
/* First buffer for a string column; a longer value is fetched again into a grown buffer. */
#define STRING_BUFFER_START 256

struct stmt;

struct conn {
    MYSQL *mysql;
    struct stmt *pending; /* the statement whose result has rows not yet fetched */
};

struct column {
    MYSQL_BIND *bind;
    long long integer;
    double number;
    char *text;
    unsigned long capacity;
    unsigned long length;
    my_bool is_null;
    my_bool truncated;
};

struct stmt {
    MYSQL_STMT *stmt;
    struct conn *conn; /* pinned by the user value, so valid while the statement is */
    unsigned nparams;
    unsigned ncolumns; /* of the result that is bound */
    MYSQL_RES *meta;
    MYSQL_BIND *result_binds;
    struct column *columns;
    int has_rows;
};

/* --- errors ------------------------------------------------------------------------------ */

/* Seconds on the monotonic clock: how long a failed call took tells a timeout from a failure,
 * since libmariadb reports both as a lost or failed connection. */
static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int push_error(lua_State *L, unsigned err, const char *sqlstate, const char *message, double started)
{
    lua_pushnil(L);
    lua_pushinteger(L, err);
    lua_pushstring(L, sqlstate);
    lua_pushstring(L, message);
    lua_pushnumber(L, now_seconds() - started);
    return 5;
}

static int conn_error(lua_State *L, MYSQL *mysql, double started)
{
    return push_error(L, mysql_errno(mysql), mysql_sqlstate(mysql), mysql_error(mysql), started);
}

static int stmt_error(lua_State *L, MYSQL_STMT *stmt, double started)
{
    return push_error(L, mysql_stmt_errno(stmt), mysql_stmt_sqlstate(stmt), mysql_stmt_error(stmt), started);
}

/* --- values ------------------------------------------------------------------------------ */

static int is_null_value(lua_State *L, int idx)
{
    return lua_isnoneornil(L, idx) || lua_rawequal(L, idx, NULL_UPVALUE);
}

static const char *type_name(enum enum_field_types t)
{
    switch (t) {
    case MYSQL_TYPE_DECIMAL: case MYSQL_TYPE_NEWDECIMAL: return "DECIMAL";
    case MYSQL_TYPE_TINY: return "TINYINT";
    case MYSQL_TYPE_SHORT: return "SMALLINT";
    case MYSQL_TYPE_LONG: return "INT";
    case MYSQL_TYPE_INT24: return "MEDIUMINT";
    case MYSQL_TYPE_LONGLONG: return "BIGINT";
    case MYSQL_TYPE_FLOAT: return "FLOAT";
    case MYSQL_TYPE_DOUBLE: return "DOUBLE";
    case MYSQL_TYPE_NULL: return "NULL";
    case MYSQL_TYPE_TIMESTAMP: return "TIMESTAMP";
    case MYSQL_TYPE_DATE: case MYSQL_TYPE_NEWDATE: return "DATE";
    case MYSQL_TYPE_TIME: return "TIME";
    case MYSQL_TYPE_DATETIME: return "DATETIME";
    case MYSQL_TYPE_YEAR: return "YEAR";
    case MYSQL_TYPE_BIT: return "BIT";
    case MYSQL_TYPE_JSON: return "JSON";
    case MYSQL_TYPE_ENUM: return "ENUM";
    case MYSQL_TYPE_SET: return "SET";
    case MYSQL_TYPE_TINY_BLOB: case MYSQL_TYPE_MEDIUM_BLOB: case MYSQL_TYPE_LONG_BLOB:
    case MYSQL_TYPE_BLOB: return "BLOB";
    case MYSQL_TYPE_VARCHAR: case MYSQL_TYPE_VAR_STRING: return "VARCHAR";
    case MYSQL_TYPE_STRING: return "CHAR";
    case MYSQL_TYPE_GEOMETRY: return "GEOMETRY";
    default: return "UNKNOWN";
    }
}

static int is_integer_type(enum enum_field_types t)
{
    return t == MYSQL_TYPE_TINY || t == MYSQL_TYPE_SHORT || t == MYSQL_TYPE_LONG ||
           t == MYSQL_TYPE_INT24 || t == MYSQL_TYPE_LONGLONG || t == MYSQL_TYPE_YEAR;
}

static int is_float_type(enum enum_field_types t)
{
    return t == MYSQL_TYPE_FLOAT || t == MYSQL_TYPE_DOUBLE;
}

/* Pushes one column's metadata table. */
static void push_field(lua_State *L, const MYSQL_FIELD *f)
{
    lua_createtable(L, 0, 10);
    lua_pushlstring(L, f->name, f->name_length);
    lua_setfield(L, -2, "name");
    lua_pushlstring(L, f->table, f->table_length);
    lua_setfield(L, -2, "table");
    lua_pushstring(L, type_name(f->type));
    lua_setfield(L, -2, "type");
    lua_pushinteger(L, (lua_Integer)f->length);
    lua_setfield(L, -2, "length");
    lua_pushinteger(L, f->decimals);
    lua_setfield(L, -2, "decimals");
    lua_pushboolean(L, !(f->flags & NOT_NULL_FLAG));
    lua_setfield(L, -2, "nullable");
    lua_pushboolean(L, (f->flags & PRI_KEY_FLAG) != 0);
    lua_setfield(L, -2, "primary_key");
    lua_pushboolean(L, (f->flags & UNSIGNED_FLAG) != 0);
    lua_setfield(L, -2, "unsigned");
    lua_pushboolean(L, (f->flags & AUTO_INCREMENT_FLAG) != 0);
    lua_setfield(L, -2, "auto_increment");
    lua_pushinteger(L, f->charsetnr);
    lua_setfield(L, -2, "charset");
}

static void push_fields(lua_State *L, const MYSQL_FIELD *fields, unsigned n)
{
    lua_createtable(L, (int)n, 0);
    for (unsigned i = 0; i < n; i++) {
        push_field(L, &fields[i]);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
}

/* Stores the value on top of the stack into the row at -2: at index i+1, or under the name. */
static void set_in_row(lua_State *L, const MYSQL_FIELD *f, unsigned i, int as_array)
{
    if (as_array)
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    else {
        lua_pushlstring(L, f->name, f->name_length);
        lua_insert(L, -2);
        lua_rawset(L, -3);
    }
}

static void push_unsigned(lua_State *L, unsigned long long v)
{
    if (v <= (unsigned long long)LUA_MAXINTEGER) {
        lua_pushinteger(L, (lua_Integer)v);
    } else {
        char digits[24];
        snprintf(digits, sizeof digits, "%llu", v);
        lua_pushstring(L, digits);
    }
}

/* --- connection -------------------------------------------------------------------------- */

static struct conn *check_conn(lua_State *L, int idx)
{
    return luaL_checkudata(L, idx, CONN_MT);
}

/* An open connection, or raise: using a closed one is a programming error. */
static MYSQL *open_conn(lua_State *L, int idx)
{
    struct conn *c = check_conn(L, idx);
    luaL_argcheck(L, c->mysql != NULL, idx, "connection is closed");
    return c->mysql;
}

/* Discards the rows of a result nobody fetched, so the connection can take a new command. */
static void settle(struct conn *c)
{
    if (c->pending) {
        if (c->pending->stmt)
            mysql_stmt_free_result(c->pending->stmt);
        c->pending->has_rows = 0;
        c->pending = NULL;
    }
}

static int conn_close(lua_State *L)
{
    struct conn *c = check_conn(L, 1);
    settle(c);
    if (c->mysql) {
        MYSQL *mysql = c->mysql;
        c->mysql = NULL;
        mysql_close(mysql); /* detaches its statements: their close only frees memory */
    }
    return 0;
}

static const char *opt_string(lua_State *L, int t, const char *field)
{
    lua_getfield(L, t, field);
    const char *s = luaL_opt(L, luaL_checkstring, -1, NULL);
    lua_pop(L, 1); /* the string stays alive in the options table */
    return s;
}

static unsigned opt_seconds(lua_State *L, int t, const char *field)
{
    lua_getfield(L, t, field);
    lua_Integer v = luaL_optinteger(L, -1, 0);
    lua_pop(L, 1);
    if (v < 0 || v > 86400)
        luaL_error(L, "option %s out of range", field);
    return (unsigned)v;
}

static int opt_bool(lua_State *L, int t, const char *field)
{
    lua_getfield(L, t, field);
    int v = lua_toboolean(L, -1);
    lua_pop(L, 1);
    return v;
}

/* core.mariadb.connect(opts) */
static int mdb_connect(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    const char *host = opt_string(L, 1, "host"), *sock = opt_string(L, 1, "socket");
    const char *user = opt_string(L, 1, "user"), *password = opt_string(L, 1, "password");
    const char *database = opt_string(L, 1, "database"), *ca = opt_string(L, 1, "ca");
    const char *charset = opt_string(L, 1, "charset"), *tls = opt_string(L, 1, "tls");
    lua_getfield(L, 1, "port");
    lua_Integer port = luaL_optinteger(L, -1, 3306);
    lua_pop(L, 1);
    luaL_argcheck(L, port > 0 && port < 65536, 1, "port out of range");
    unsigned connect_timeout = opt_seconds(L, 1, "connect_timeout");
    unsigned read_timeout = opt_seconds(L, 1, "read_timeout");
    unsigned write_timeout = opt_seconds(L, 1, "write_timeout");
    int verify = opt_bool(L, 1, "verify"), cleartext = opt_bool(L, 1, "cleartext");
    if (tls == NULL)
        tls = "off";
    luaL_argcheck(L, !strcmp(tls, "off") || !strcmp(tls, "preferred") || !strcmp(tls, "required"), 1,
                  "tls must be off, preferred or required");
    int required = !strcmp(tls, "required");
    /* a password in cleartext goes only into a verified TLS session */
    luaL_argcheck(L, !cleartext || (required && verify), 1, "cleartext needs tls = required and verify");

    struct conn *c = lua_newuserdatauv(L, sizeof *c, 0);
    memset(c, 0, sizeof *c);
    luaL_setmetatable(L, CONN_MT);
    c->mysql = mysql_init(NULL);
    if (c->mysql == NULL)
        return luaL_error(L, "out of memory");
    MYSQL *m = c->mysql;
    unsigned protocol = sock ? MYSQL_PROTOCOL_SOCKET : MYSQL_PROTOCOL_TCP;
    my_bool off = 0, on = 1;
    mysql_optionsv(m, MYSQL_OPT_PROTOCOL, &protocol);
    mysql_optionsv(m, MYSQL_SET_CHARSET_NAME, charset ? charset : "utf8mb4");
    mysql_optionsv(m, MYSQL_OPT_LOCAL_INFILE, &off);
    if (connect_timeout)
        mysql_optionsv(m, MYSQL_OPT_CONNECT_TIMEOUT, &connect_timeout);
    if (read_timeout)
        mysql_optionsv(m, MYSQL_OPT_READ_TIMEOUT, &read_timeout);
    if (write_timeout)
        mysql_optionsv(m, MYSQL_OPT_WRITE_TIMEOUT, &write_timeout);
    if (strcmp(tls, "off") != 0) {
        /* Any TLS option asks for TLS; without ENFORCE a server without TLS is still accepted. */
        mysql_optionsv(m, MYSQL_OPT_SSL_CIPHER, NULL);
        mysql_ssl_set(m, NULL, NULL, ca, NULL, NULL);
        if (required)
            mysql_optionsv(m, MYSQL_OPT_SSL_ENFORCE, &on);
        mysql_optionsv(m, MYSQL_OPT_SSL_VERIFY_SERVER_CERT, verify ? &on : &off);
    }
    mysql_optionsv(m, MYSQL_ENABLE_CLEARTEXT_PLUGIN, cleartext ? &on : &off);
    double started = now_seconds();
    if (mysql_real_connect(m, sock ? NULL : host, user, password, database, (unsigned)port, sock, 0) == NULL) {
        int n = conn_error(L, m, started);
        c->mysql = NULL;
        mysql_close(m);
        return n;
    }
    /* libmariadb 3.3 enforces TLS only together with verification: check it ourselves too */
    if (required && mysql_get_ssl_cipher(m) == NULL) {
        c->mysql = NULL;
        mysql_close(m);
        return push_error(L, CR_SSL_CONNECTION_ERROR, "HY000",
                          "TLS/SSL error: TLS is required, but the server does not support it", started);
    }
    return 1;
}

/* MariaDB (not MySQL) 10.2+ takes arrays of parameters in one execution. */
static int bulk_supported(MYSQL *m)
{
    unsigned long caps = 0, ext = 0;
    mariadb_get_infov(m, MARIADB_CONNECTION_SERVER_CAPABILITIES, &caps);
    mariadb_get_infov(m, MARIADB_CONNECTION_EXTENDED_SERVER_CAPABILITIES, &ext);
    return !(caps & CLIENT_MYSQL) && (ext & (MARIADB_CLIENT_STMT_BULK_OPERATIONS >> 32));
}

static int conn_info(lua_State *L)
{
    MYSQL *m = open_conn(L, 1);
    lua_createtable(L, 0, 5);
    lua_pushstring(L, mysql_get_server_info(m));
    lua_setfield(L, -2, "server_version");
    lua_pushstring(L, mysql_get_host_info(m));
    lua_setfield(L, -2, "host_info");
    const char *cipher = mysql_get_ssl_cipher(m);
    if (cipher) {
        const char *version = NULL;
        lua_pushstring(L, cipher);
        lua_setfield(L, -2, "tls_cipher");
        if (mariadb_get_infov(m, MARIADB_CONNECTION_TLS_VERSION, &version) == 0 && version) {
            lua_pushstring(L, version);
            lua_setfield(L, -2, "tls_version");
        }
    }
    lua_pushboolean(L, bulk_supported(m));
    lua_setfield(L, -2, "bulk");
    lua_pushinteger(L, (lua_Integer)mysql_thread_id(m));
    lua_setfield(L, -2, "thread_id");
    return 1;
}

/* Pushes one text-protocol value typed like the binary protocol's: integers that fit and floats
 * as numbers, the rest (DECIMAL, dates, a BIGINT UNSIGNED beyond 2^63-1) as strings. */
static void push_text_value(lua_State *L, const MYSQL_FIELD *f, const char *text, unsigned long len)
{
    int integer = is_integer_type(f->type);
    /* the value is NUL-terminated in the row buffer */
    if ((integer || is_float_type(f->type)) && lua_stringtonumber(L, text) != 0) {
        if (!integer || lua_isinteger(L, -1))
            return;
        lua_pop(L, 1);
    }
    lua_pushlstring(L, text, len);
}

/* Pushes the text-protocol rows of `res`, typed like the binary ones. */
static void push_text_rows(lua_State *L, MYSQL_RES *res, int as_array)
{
    unsigned n = mysql_num_fields(res);
    MYSQL_FIELD *fields = mysql_fetch_fields(res);
    lua_newtable(L);
    lua_Integer count = 0;
    MYSQL_ROW row;
    while ((row = mysql_fetch_row(res)) != NULL) {
        unsigned long *lengths = mysql_fetch_lengths(res);
        lua_createtable(L, as_array ? (int)n : 0, as_array ? 0 : (int)n);
        for (unsigned i = 0; i < n; i++) {
            if (row[i] == NULL)
                lua_pushvalue(L, NULL_UPVALUE);
            else
                push_text_value(L, &fields[i], row[i], lengths[i]);
            set_in_row(L, &fields[i], i, as_array);
        }
        lua_rawseti(L, -2, ++count);
    }
}

/* conn:run(sql, as_array): one statement over the text protocol. */
static int conn_run(lua_State *L)
{
    struct conn *c = check_conn(L, 1);
    MYSQL *m = open_conn(L, 1);
    size_t len;
    const char *sql = luaL_checklstring(L, 2, &len);
    int as_array = lua_toboolean(L, 3);
    settle(c);
    double started = now_seconds();
    if (mysql_real_query(m, sql, (unsigned long)len) != 0)
        return conn_error(L, m, started);
    if (mysql_field_count(m) == 0) {
        lua_createtable(L, 0, 2);
        lua_pushinteger(L, (lua_Integer)mysql_affected_rows(m));
        lua_setfield(L, -2, "affected_rows");
        lua_pushinteger(L, (lua_Integer)mysql_insert_id(m));
        lua_setfield(L, -2, "insert_id");
        return 1;
    }
    MYSQL_RES *res = mysql_store_result(m);
    if (res == NULL)
        return conn_error(L, m, started);
    /* Lua may raise (out of memory) while building the rows: keep `res` in a to-be-freed slot. */
    MYSQL_RES **slot = lua_newuserdatauv(L, sizeof *slot, 0);
    *slot = res;
    luaL_setmetatable(L, RES_MT);
    lua_createtable(L, 0, 2);
    push_fields(L, mysql_fetch_fields(res), mysql_num_fields(res));
    lua_setfield(L, -2, "columns");
    push_text_rows(L, res, as_array);
    lua_setfield(L, -2, "rows");
    *slot = NULL;
    mysql_free_result(res);
    return 1;
}

static int res_gc(lua_State *L)
{
    MYSQL_RES **slot = luaL_checkudata(L, 1, RES_MT);
    if (*slot) {
        mysql_free_result(*slot);
        *slot = NULL;
    }
    return 0;
}

/* --- statements -------------------------------------------------------------------------- */

static struct stmt *check_stmt(lua_State *L, int idx)
{
    return luaL_checkudata(L, idx, STMT_MT);
}

static void unbind_result(struct stmt *s)
{
    if (s->columns) {
        for (unsigned i = 0; i < s->ncolumns; i++)
            free(s->columns[i].text);
    }
    free(s->columns);
    free(s->result_binds);
    s->columns = NULL;
    s->result_binds = NULL;
    if (s->meta)
        mysql_free_result(s->meta);
    s->meta = NULL;
    s->ncolumns = 0;
}

static int stmt_close(lua_State *L)
{
    struct stmt *s = check_stmt(L, 1);
    if (s->conn && s->conn->pending == s)
        s->conn->pending = NULL;
    unbind_result(s);
    if (s->stmt) {
        MYSQL_STMT *stmt = s->stmt;
        s->stmt = NULL;
        mysql_stmt_close(stmt);
    }
    return 0;
}

/* An open statement on an open connection, or raise. */
static struct stmt *open_stmt(lua_State *L, int idx)
{
    struct stmt *s = check_stmt(L, idx);
    luaL_argcheck(L, s->stmt != NULL, idx, "statement is closed");
    luaL_argcheck(L, s->conn->mysql != NULL, idx, "connection is closed");
    return s;
}

static int conn_prepare(lua_State *L)
{
    struct conn *c = check_conn(L, 1);
    MYSQL *m = open_conn(L, 1);
    size_t len;
    const char *sql = luaL_checklstring(L, 2, &len);
    settle(c);
    struct stmt *s = lua_newuserdatauv(L, sizeof *s, 1);
    memset(s, 0, sizeof *s);
    luaL_setmetatable(L, STMT_MT);
    lua_pushvalue(L, 1);
    lua_setiuservalue(L, -2, 1); /* the statement pins its connection */
    s->conn = c;
    s->stmt = mysql_stmt_init(m);
    double started = now_seconds();
    if (s->stmt == NULL)
        return conn_error(L, m, started);
    if (mysql_stmt_prepare(s->stmt, sql, (unsigned long)len) != 0) {
        int n = stmt_error(L, s->stmt, started);
        mysql_stmt_close(s->stmt);
        s->stmt = NULL;
        return n;
    }
    s->nparams = (unsigned)mysql_stmt_param_count(s->stmt);
    return 1;
}

/* Binds result buffers for the pending result set. */
static int bind_result(struct stmt *s)
{
    unbind_result(s);
    s->meta = mysql_stmt_result_metadata(s->stmt);
    if (s->meta == NULL)
        return -1;
    s->ncolumns = mysql_num_fields(s->meta);
    MYSQL_FIELD *fields = mysql_fetch_fields(s->meta);
    s->result_binds = calloc(s->ncolumns, sizeof *s->result_binds);
    s->columns = calloc(s->ncolumns, sizeof *s->columns);
    if (!s->result_binds || !s->columns)
        return -1;
    for (unsigned i = 0; i < s->ncolumns; i++) {
        MYSQL_BIND *b = &s->result_binds[i];
        struct column *col = &s->columns[i];
        col->bind = b;
        b->is_null = &col->is_null;
        b->error = &col->truncated;
        b->length = &col->length;
        if (is_integer_type(fields[i].type)) {
            b->buffer_type = MYSQL_TYPE_LONGLONG;
            b->buffer = &col->integer;
            b->is_unsigned = (fields[i].flags & UNSIGNED_FLAG) != 0;
        } else if (is_float_type(fields[i].type)) {
            b->buffer_type = MYSQL_TYPE_DOUBLE;
            b->buffer = &col->number;
        } else {
            col->capacity = STRING_BUFFER_START;
            col->text = malloc(col->capacity);
            if (!col->text)
                return -1;
            b->buffer_type = MYSQL_TYPE_STRING;
            b->buffer = col->text;
            b->buffer_length = col->capacity;
        }
    }
    return mysql_stmt_bind_result(s->stmt, s->result_binds) ? -1 : 0;
}

/* Binds the call's arguments from `first` on as the statement's parameters, then executes. */
static int stmt_execute(lua_State *L)
{
    struct stmt *s = open_stmt(L, 1);
    int nargs = lua_gettop(L) - 1;
    if ((unsigned)nargs != s->nparams)
        return luaL_error(L, "statement takes %d parameter(s), got %d", (int)s->nparams, nargs);
    settle(s->conn);
    MYSQL_BIND *binds = NULL;
    union { long long i; double d; signed char b; } *values = NULL;
    if (nargs > 0) {
        /* userdata scratch: freed by Lua even if a later call raises */
        binds = lua_newuserdatauv(L, (size_t)nargs * sizeof *binds, 0);
        values = lua_newuserdatauv(L, (size_t)nargs * sizeof *values, 0);
        memset(binds, 0, (size_t)nargs * sizeof *binds);
    }
    for (int i = 0; i < nargs; i++) {
        int idx = i + 2;
        MYSQL_BIND *b = &binds[i];
        if (is_null_value(L, idx)) {
            b->buffer_type = MYSQL_TYPE_NULL;
        } else if (lua_type(L, idx) == LUA_TBOOLEAN) {
            values[i].b = (signed char)lua_toboolean(L, idx);
            b->buffer_type = MYSQL_TYPE_TINY;
            b->buffer = &values[i].b;
        } else if (lua_isinteger(L, idx)) {
            values[i].i = lua_tointeger(L, idx);
            b->buffer_type = MYSQL_TYPE_LONGLONG;
            b->buffer = &values[i].i;
        } else if (lua_type(L, idx) == LUA_TNUMBER) {
            values[i].d = lua_tonumber(L, idx);
            b->buffer_type = MYSQL_TYPE_DOUBLE;
            b->buffer = &values[i].d;
        } else if (lua_type(L, idx) == LUA_TSTRING) {
            size_t len;
            b->buffer = (void *)lua_tolstring(L, idx, &len);
            b->buffer_type = MYSQL_TYPE_STRING;
            b->buffer_length = (unsigned long)len;
        } else {
            return luaL_argerror(L, idx, "nil, mariadb.null, boolean, number or string expected");
        }
    }
    unsigned int zero = 0;
    mysql_stmt_attr_set(s->stmt, STMT_ATTR_ARRAY_SIZE, &zero);
    double started = now_seconds();
    if (nargs > 0 && mysql_stmt_bind_param(s->stmt, binds))
        return stmt_error(L, s->stmt, started);
    if (mysql_stmt_execute(s->stmt) != 0)
        return stmt_error(L, s->stmt, started);
    unsigned ncolumns = mysql_stmt_field_count(s->stmt);
    if (ncolumns > 0) {
        if (bind_result(s) != 0)
            return stmt_error(L, s->stmt, started);
        s->has_rows = 1;
        s->conn->pending = s;
    }
    lua_pushinteger(L, ncolumns);
    lua_pushinteger(L, ncolumns ? 0 : (lua_Integer)mysql_stmt_affected_rows(s->stmt));
    lua_pushinteger(L, (lua_Integer)mysql_stmt_insert_id(s->stmt));
    return 3;
}

static int stmt_columns(lua_State *L)
{
    struct stmt *s = open_stmt(L, 1);
    if (s->meta == NULL) {
        lua_newtable(L);
        return 1;
    }
    push_fields(L, mysql_fetch_fields(s->meta), s->ncolumns);
    return 1;
}

/* Fetches again the string columns that did not fit their buffer, into grown buffers. */
static int refetch_truncated(struct stmt *s)
{
    int rebind = 0;
    for (unsigned i = 0; i < s->ncolumns; i++) {
        struct column *col = &s->columns[i];
        if (!col->truncated || col->text == NULL || col->length <= col->capacity)
            continue;
        char *grown = realloc(col->text, col->length);
        if (grown == NULL)
            return -1;
        col->text = grown;
        col->capacity = col->length;
        col->bind->buffer = grown;
        col->bind->buffer_length = col->capacity;
        if (mysql_stmt_fetch_column(s->stmt, col->bind, i, 0) != 0)
            return -1;
        rebind = 1;
    }
    /* the grown buffers serve the next rows too */
    return rebind && mysql_stmt_bind_result(s->stmt, s->result_binds) ? -1 : 0;
}

/* stmt:fetch(as_array) */
static int stmt_fetch(lua_State *L)
{
    struct stmt *s = open_stmt(L, 1);
    int as_array = lua_toboolean(L, 2);
    if (!s->has_rows) {
        lua_pushboolean(L, 0);
        return 1;
    }
    double started = now_seconds();
    int rc = mysql_stmt_fetch(s->stmt);
    if (rc == MYSQL_NO_DATA) {
        s->has_rows = 0;
        if (s->conn->pending == s)
            s->conn->pending = NULL;
        lua_pushboolean(L, 0);
        return 1;
    }
    if (rc == 1 || (rc == MYSQL_DATA_TRUNCATED && refetch_truncated(s) != 0)) {
        s->has_rows = 0;
        if (s->conn->pending == s)
            s->conn->pending = NULL;
        return stmt_error(L, s->stmt, started);
    }
    MYSQL_FIELD *fields = mysql_fetch_fields(s->meta);
    lua_createtable(L, as_array ? (int)s->ncolumns : 0, as_array ? 0 : (int)s->ncolumns);
    for (unsigned i = 0; i < s->ncolumns; i++) {
        struct column *col = &s->columns[i];
        if (col->is_null)
            lua_pushvalue(L, NULL_UPVALUE);
        else if (col->bind->buffer_type == MYSQL_TYPE_LONGLONG) {
            if (col->bind->is_unsigned)
                push_unsigned(L, (unsigned long long)col->integer);
            else
                lua_pushinteger(L, (lua_Integer)col->integer);
        } else if (col->bind->buffer_type == MYSQL_TYPE_DOUBLE)
            lua_pushnumber(L, col->number);
        else
            lua_pushlstring(L, col->text, col->length < col->capacity ? col->length : col->capacity);
        set_in_row(L, &fields[i], i, as_array);
    }
    return 1;
}

static int stmt_bulk_supported(lua_State *L)
{
    struct stmt *s = open_stmt(L, 1);
    lua_pushboolean(L, bulk_supported(s->conn->mysql));
    return 1;
}

/* The buffer type one column of rows[first..last] needs: integers, floats or strings. */
static enum enum_field_types column_type(lua_State *L, int rows, lua_Integer first, lua_Integer last, unsigned col)
{
    enum enum_field_types type = MYSQL_TYPE_NULL;
    for (lua_Integer r = first; r <= last; r++) {
        lua_rawgeti(L, rows, r);
        lua_rawgeti(L, -1, (lua_Integer)col + 1);
        enum enum_field_types t = MYSQL_TYPE_NULL;
        if (is_null_value(L, -1))
            t = MYSQL_TYPE_NULL;
        else if (lua_isinteger(L, -1) || lua_type(L, -1) == LUA_TBOOLEAN)
            t = MYSQL_TYPE_LONGLONG;
        else if (lua_type(L, -1) == LUA_TNUMBER)
            t = MYSQL_TYPE_DOUBLE;
        else if (lua_type(L, -1) == LUA_TSTRING)
            t = MYSQL_TYPE_STRING;
        else
            luaL_error(L, "row %I column %d: nil, mariadb.null, boolean, number or string expected", r, (int)col + 1);
        lua_pop(L, 2);
        if (t == MYSQL_TYPE_NULL || t == type)
            continue;
        if (type == MYSQL_TYPE_NULL)
            type = t;
        else if ((type == MYSQL_TYPE_LONGLONG && t == MYSQL_TYPE_DOUBLE) ||
                 (type == MYSQL_TYPE_DOUBLE && t == MYSQL_TYPE_LONGLONG))
            type = MYSQL_TYPE_DOUBLE;
        else
            luaL_error(L, "column %d mixes strings and numbers (convert them first)", (int)col + 1);
    }
    return type;
}

/* stmt:execute_many(rows, first, last): one execution with MariaDB's column-wise array binding.
 * String pointers point into the strings held by `rows`, which stays on the stack meanwhile. */
static int stmt_execute_many(lua_State *L)
{
    struct stmt *s = open_stmt(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_Integer first = luaL_checkinteger(L, 3), last = luaL_checkinteger(L, 4);
    luaL_argcheck(L, first >= 1 && last >= first && last - first < UINT_MAX, 3, "bad row range");
    luaL_argcheck(L, bulk_supported(s->conn->mysql), 1, "server has no array binding");
    settle(s->conn);
    size_t nrows = (size_t)(last - first + 1), ncols = s->nparams;
    for (lua_Integer r = first; r <= last; r++) {
        if (lua_rawgeti(L, 2, r) != LUA_TTABLE)
            return luaL_error(L, "row %I is not a table", r);
        lua_pop(L, 1);
    }
    luaL_checkstack(L, (int)ncols + 8, "too many parameters");
    MYSQL_BIND *binds = lua_newuserdatauv(L, (ncols ? ncols : 1) * sizeof *binds, 0);
    memset(binds, 0, (ncols ? ncols : 1) * sizeof *binds);
    for (unsigned c = 0; c < ncols; c++) {
        enum enum_field_types type = column_type(L, 2, first, last, c);
        if (type == MYSQL_TYPE_NULL)
            type = MYSQL_TYPE_STRING;
        size_t cell = type == MYSQL_TYPE_STRING ? sizeof(char *) : sizeof(long long);
        /* values, lengths, indicators: one Lua-owned block per column, left on the stack */
        char *block = lua_newuserdatauv(L, nrows * (cell + sizeof(unsigned long) + 1), 0);
        unsigned long *lengths = (unsigned long *)(void *)(block + nrows * cell);
        char *indicators = block + nrows * (cell + sizeof(unsigned long));
        for (size_t r = 0; r < nrows; r++) {
            lua_rawgeti(L, 2, first + (lua_Integer)r);
            lua_rawgeti(L, -1, (lua_Integer)c + 1);
            lengths[r] = 0;
            indicators[r] = STMT_INDICATOR_NONE;
            if (is_null_value(L, -1)) {
                indicators[r] = STMT_INDICATOR_NULL;
                memset(block + r * cell, 0, cell);
            } else if (type == MYSQL_TYPE_STRING) {
                size_t len;
                ((const char **)(void *)block)[r] = lua_tolstring(L, -1, &len);
                lengths[r] = (unsigned long)len;
            } else if (type == MYSQL_TYPE_DOUBLE) {
                ((double *)(void *)block)[r] = lua_tonumber(L, -1);
            } else {
                ((long long *)(void *)block)[r] = lua_isinteger(L, -1) ? lua_tointeger(L, -1) : lua_toboolean(L, -1);
            }
            lua_pop(L, 2); /* the string stays referenced by its row */
        }
        binds[c].buffer_type = type;
        binds[c].buffer = block;
        binds[c].length = lengths;
        binds[c].u.indicator = indicators;
    }
    unsigned int array_size = (unsigned int)nrows, zero = 0;
    mysql_stmt_attr_set(s->stmt, STMT_ATTR_ARRAY_SIZE, &array_size);
    double started = now_seconds();
    int failed = (ncols > 0 && mysql_stmt_bind_param(s->stmt, binds)) || mysql_stmt_execute(s->stmt) != 0;
    mysql_stmt_attr_set(s->stmt, STMT_ATTR_ARRAY_SIZE, &zero);
    if (failed)
        return stmt_error(L, s->stmt, started);
    lua_pushinteger(L, (lua_Integer)mysql_stmt_affected_rows(s->stmt));
    lua_pushinteger(L, (lua_Integer)mysql_stmt_insert_id(s->stmt));
    return 2;
}

/* A handle metatable whose methods share the NULL sentinel on top of the stack as upvalue. */
static void new_class(lua_State *L, const char *name, const luaL_Reg *methods)
{
    luaL_newmetatable(L, name);
    lua_pushvalue(L, -2);
    luaL_setfuncs(L, methods, 1);
    lua_pushvalue(L, -1);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);
}

void mariadb_open(lua_State *L)
{
    static const luaL_Reg conn_methods[] = {
        { "prepare", conn_prepare }, { "run", conn_run }, { "info", conn_info },
        { "close", conn_close }, { "__gc", conn_close }, { "__close", conn_close }, { NULL, NULL },
    };
    static const luaL_Reg stmt_methods[] = {
        { "execute", stmt_execute }, { "fetch", stmt_fetch }, { "columns", stmt_columns },
        { "execute_many", stmt_execute_many }, { "bulk_supported", stmt_bulk_supported },
        { "close", stmt_close }, { "__gc", stmt_close }, { "__close", stmt_close }, { NULL, NULL },
    };
    static const luaL_Reg funcs[] = { { "connect", mdb_connect }, { NULL, NULL } };

    lua_newtable(L); /* core.mariadb */
    /* the NULL sentinel: one table per core instance, an upvalue of every function */
    lua_newtable(L);
    lua_newtable(L);
    lua_pushliteral(L, "mariadb.null");
    lua_setfield(L, -2, "__name");
    lua_setmetatable(L, -2);

    new_class(L, CONN_MT, conn_methods);
    new_class(L, STMT_MT, stmt_methods);

    luaL_newmetatable(L, RES_MT);
    lua_pushcfunction(L, res_gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);

    lua_pushvalue(L, -1);
    lua_setfield(L, -3, "null");
    luaL_setfuncs(L, funcs, 1); /* pops the sentinel */
    lua_setfield(L, -2, "mariadb");
}
