"""Internal utilities (documentation and input checks)."""
