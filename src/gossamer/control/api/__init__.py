"""control/api."""
