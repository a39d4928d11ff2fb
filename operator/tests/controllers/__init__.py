"""The controller tier: the reconcilers' stories against in-memory fakes (tests/fakes/)."""
