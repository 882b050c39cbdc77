"""drkit's command line: one module per command group.

Every module in this package (other than ``main`` and ``common``) that defines a
``COMMANDS`` list of click commands is registered automatically by ``drkit.cli.main``.
"""
