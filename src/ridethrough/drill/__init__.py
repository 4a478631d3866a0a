"""drill package."""
