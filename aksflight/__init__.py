"""aksflight."""
