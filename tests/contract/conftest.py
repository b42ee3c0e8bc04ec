"""Servers the contract suites run the cloud adapters against."""

from tests.storage_emulator import storage_emulator  # noqa: F401
