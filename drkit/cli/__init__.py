"""drkit's command line: one module per command group.

Every module in this package (other than ``main`` and ``common``) defines a ``COMMANDS``
list of click commands. ``drkit.cli.main.LAZY_COMMANDS`` names each command's module and
summary, so a module is imported only when its command runs; tests/cli/test_startup.py
fails when a command is missing there.
"""
