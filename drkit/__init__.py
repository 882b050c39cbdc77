"""drkit: disaster recovery and backup hardening."""

__version__ = "0.1.0"
