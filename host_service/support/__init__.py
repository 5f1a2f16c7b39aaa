"""Support: the support bundle and the lower-level support commands (reset-data)."""
