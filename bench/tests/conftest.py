"""bench's own tests: the guard of the test tiers, as in tests/ (pytest.ini puts tests/ on the path)."""
from support.tiers import pytest_configure, pytest_runtest_call, pytest_runtest_setup  # noqa: F401 (the guard)
