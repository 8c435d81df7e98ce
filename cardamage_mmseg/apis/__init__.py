"""Python APIs."""
