"""Helpers shared by the test suites (importable as `helpers`: pyproject puts tests/ on pytest's pythonpath)."""
