"""Small shared utilities (atomic outputs, hashing)."""
