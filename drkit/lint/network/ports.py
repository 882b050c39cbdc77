"""Ports that carry production data, and the remote administration ports."""

from __future__ import annotations

#: Database, cache, search and queue ports: open to the world, they expose the data itself.
DATA_PORTS: dict[int, str] = {
    1433: "SQL Server", 1521: "Oracle", 2181: "ZooKeeper", 2379: "etcd", 3306: "MySQL",
    5432: "PostgreSQL", 5439: "Redshift", 5984: "CouchDB", 6379: "Redis", 7000: "Cassandra",
    8086: "InfluxDB", 8123: "ClickHouse HTTP", 9000: "ClickHouse", 9042: "Cassandra CQL",
    9092: "Kafka", 9200: "Elasticsearch", 9300: "Elasticsearch transport",
    11211: "Memcached", 26257: "CockroachDB", 27017: "MongoDB", 27018: "MongoDB shard",
    27019: "MongoDB config", 28015: "RethinkDB", 50000: "DB2",
}
#: Remote administration: SSH and RDP.
ADMIN_PORTS: dict[int, str] = {22: "SSH", 3389: "RDP"}
