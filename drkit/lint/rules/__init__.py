"""One module per lint rule: ID (== module name), CATEGORY, SEVERITY, CLOUDS, TITLE,
REMEDIATION, optional SCOPE ("policy" or "principals") and one function ``check``."""
