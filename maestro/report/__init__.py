"""Tables and figures from the files training wrote (never recomputes a metric)."""
