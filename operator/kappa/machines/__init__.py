"""Pure state machines: (status, observed world, spec, now) → Decision. No I/O here."""
