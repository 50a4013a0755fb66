"""Tests; importing the service package first switches off gRPC's fork handlers
before anything loads gRPC (see energy_server/__init__.py)."""

import energy_server  # noqa: F401
