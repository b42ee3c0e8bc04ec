# Cloud Storage: the session's emulator (tests/storage_emulator.py; shared with the other tiers).
from tests.storage_emulator import storage_emulator  # noqa: F401
