"""grants."""
