"""paper layer."""
