"""control/store."""
