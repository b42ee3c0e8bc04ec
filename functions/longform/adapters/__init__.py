"""Adapters behind the ports: embedded (local_*, sqlite_*, preview_*, pyav_*) and cloud ones."""
