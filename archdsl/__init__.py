"""archdsl."""
