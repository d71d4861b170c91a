"""control/translate."""
