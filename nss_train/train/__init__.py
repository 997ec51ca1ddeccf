"""Training: the loop (fit) and its losses (losses)."""
