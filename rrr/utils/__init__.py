"""Small shared utilities (atomic file writing, JSON lines)."""
