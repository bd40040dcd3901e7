"""Loaded by every Python process the tests start (``PYTHONPATH``): refuses reads outside the repository."""

from tests.repo_guard import install_from_environment

install_from_environment()
