#!/bin/sh
# A key-value store under load: redis-server (no persistence) and redis-benchmark over loopback,
# 10 clients, 256-byte values, SET/GET/INCR/LPUSH/HSET.
redis-server --save '' --appendonly no --daemonize yes --logfile /tmp/redis.log
sleep 1
redis-benchmark -q -n 50000 -c 10 -d 256 -t set,get,incr,lpush,hset
redis-cli info memory | grep used_memory_human
