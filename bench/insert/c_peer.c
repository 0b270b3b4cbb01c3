/* C side of bench/insert: libmariadb alone, no Lua, for the per-row workload (b).
 *
 * usage: c_peer ROWS   (server from the AWSNET_BENCH_* variables, as pymysql_peer.py)
 * Prepares "INSERT INTO users (name) VALUES (?)" once, then in one transaction executes it ROWS
 * times with "user-1", "user-2", ... and commits; prints the seconds that took. This is what any
 * client that waits for each statement's answer (affected rows, insert id) costs at the least
 * on this machine: the server's round trip. It bounds what awsnet's execute can reach. */
#include <mysql.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *env(const char *name)
{
    const char *v = getenv(name);
    if (!v) {
        fprintf(stderr, "c_peer: %s is not set\n", name);
        exit(2);
    }
    return v;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int fail(MYSQL *db, MYSQL_STMT *stmt)
{
    fprintf(stderr, "c_peer: %s\n", stmt ? mysql_stmt_error(stmt) : mysql_error(db));
    if (stmt)
        mysql_stmt_close(stmt);
    mysql_close(db);
    return 1;
}

int main(int argc, char **argv)
{
    long rows = argc == 2 ? strtol(argv[1], NULL, 10) : 0;
    if (rows <= 0) {
        fprintf(stderr, "usage: c_peer ROWS\n");
        return 2;
    }
    MYSQL *db = mysql_init(NULL);
    if (!db)
        return 1;
    /* no TLS option set: plain TCP, as the Lua and Python sides connect */
    if (!mysql_real_connect(db, env("AWSNET_BENCH_HOST"), env("AWSNET_BENCH_USER"), env("AWSNET_BENCH_PASSWORD"),
                            env("AWSNET_BENCH_DATABASE"), (unsigned)atoi(env("AWSNET_BENCH_PORT")), NULL, 0) ||
        mysql_set_character_set(db, "utf8mb4"))
        return fail(db, NULL);
    MYSQL_STMT *stmt = mysql_stmt_init(db);
    const char *sql = "INSERT INTO users (name) VALUES (?)";
    if (!stmt || mysql_stmt_prepare(stmt, sql, strlen(sql)))
        return fail(db, stmt);
    char name[32];
    unsigned long len = 0;
    MYSQL_BIND bind;
    memset(&bind, 0, sizeof bind);
    bind.buffer_type = MYSQL_TYPE_STRING;
    bind.buffer = name;
    bind.length = &len;
    if (mysql_stmt_bind_param(stmt, &bind))
        return fail(db, stmt);
    double started = now();
    if (mysql_autocommit(db, 0))
        return fail(db, stmt);
    for (long i = 1; i <= rows; i++) {
        len = (unsigned long)snprintf(name, sizeof name, "user-%ld", i);
        if (mysql_stmt_execute(stmt) || mysql_stmt_affected_rows(stmt) != 1)
            return fail(db, stmt);
    }
    if (mysql_commit(db))
        return fail(db, stmt);
    double seconds = now() - started;
    mysql_stmt_close(stmt);
    mysql_close(db);
    printf("%.6f\n", seconds);
    return 0;
}
