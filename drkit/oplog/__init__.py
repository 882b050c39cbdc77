"""Watching the operators: cloud operation logs and bastion sessions against approvals.

``model`` is the one event model every reader produces; ``readers`` hold one small reader
per log format; ``rules`` says which events are dangerous (the linter's action classes plus
shell patterns); ``approvals`` matches them against drkit's executed requests; ``ingest``
keeps events in the repository and raises findings; ``report`` is the per-operator report.
See docs/oplog.md.
"""
