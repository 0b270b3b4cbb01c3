"""PyMySQL side of bench/insert: times one workload, prints the seconds it took.

usage: pymysql_peer.py executemany|execute ROWS   (server from AWSNET_BENCH_* variables)
The rows are the same as the Lua side's: ("user-1",), ("user-2",), ...
"""
import os
import sys
import time

import pymysql


def main():
    mode, count = sys.argv[1], int(sys.argv[2])
    conn = pymysql.connect(host=os.environ["AWSNET_BENCH_HOST"], port=int(os.environ["AWSNET_BENCH_PORT"]),
                           user=os.environ["AWSNET_BENCH_USER"], password=os.environ["AWSNET_BENCH_PASSWORD"],
                           database=os.environ["AWSNET_BENCH_DATABASE"], charset="utf8mb4", autocommit=False)
    rows = [("user-%d" % i,) for i in range(1, count + 1)]
    sql = "INSERT INTO users (name) VALUES (%s)"
    with conn.cursor() as cur:
        started = time.perf_counter()
        if mode == "executemany":
            cur.executemany(sql, rows)
        else:
            for row in rows:
                cur.execute(sql, row)
        conn.commit()
        elapsed = time.perf_counter() - started
    conn.close()
    print("%.6f" % elapsed)


if __name__ == "__main__":
    main()
