"""control/xds."""
