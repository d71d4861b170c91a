"""xDS resources compiled into immutable, ready-to-serve values (one snapshot per push)."""
