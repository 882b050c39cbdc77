"""One module per network rule (ID, CATEGORY, SEVERITY, CLOUDS, SCOPE, TITLE, REMEDIATION,
check(NetworkModel)); loaded by drkit.lint.network.engine.load_network_rules."""
