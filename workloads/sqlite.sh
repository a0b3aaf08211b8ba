#!/bin/sh
# A database benchmark: sqlite3 on tmpfs. 100,000 rows of 200 random bytes, an index, then ten
# rounds of updates over a tenth of the rows each and a range query; WAL journal.
cd /tmp
sqlite3 bench.db <<'SQL'
PRAGMA journal_mode=WAL;
PRAGMA cache_size=-65536;
CREATE TABLE kv(id INTEGER PRIMARY KEY, k INTEGER, v BLOB);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100000)
  INSERT INTO kv SELECT i, abs(random()) % 1000000, randomblob(200) FROM n;
CREATE INDEX kv_k ON kv(k);
WITH RECURSIVE r(j) AS (SELECT 0 UNION ALL SELECT j + 1 FROM r WHERE j < 9)
  SELECT count(*) FROM r;
UPDATE kv SET v = randomblob(200), k = abs(random()) % 1000000 WHERE id % 10 = 0;
UPDATE kv SET v = randomblob(200), k = abs(random()) % 1000000 WHERE id % 10 = 1;
UPDATE kv SET v = randomblob(200), k = abs(random()) % 1000000 WHERE id % 10 = 2;
UPDATE kv SET v = randomblob(200), k = abs(random()) % 1000000 WHERE id % 10 = 3;
UPDATE kv SET v = randomblob(200), k = abs(random()) % 1000000 WHERE id % 10 = 4;
UPDATE kv SET v = randomblob(200), k = abs(random()) % 1000000 WHERE id % 10 = 5;
UPDATE kv SET v = randomblob(200), k = abs(random()) % 1000000 WHERE id % 10 = 6;
UPDATE kv SET v = randomblob(200), k = abs(random()) % 1000000 WHERE id % 10 = 7;
UPDATE kv SET v = randomblob(200), k = abs(random()) % 1000000 WHERE id % 10 = 8;
UPDATE kv SET v = randomblob(200), k = abs(random()) % 1000000 WHERE id % 10 = 9;
SELECT count(*), sum(length(v)) FROM kv WHERE k BETWEEN 100000 AND 200000;
SQL
