"""Point-in-time recovery: the database halves on top of ``drkit.repo.logarchive``.

``postgres``: WAL archiving (``drkit wal push``/``fetch``), base backups, restore to a time
or LSN into a private scratch server, and finding destructive events in the archived WAL
(docs/pitr.md). ``server``: running such a private PostgreSQL server.
"""
