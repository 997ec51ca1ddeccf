"""The networks: one module per architecture (accum = the shipped default, fast, nsrr), their building blocks
(geometry, layers) and the registry that builds, saves and loads them by preset name (registry)."""
