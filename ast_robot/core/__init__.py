"""Training core: significance model, PI-controlled gate, gated trainer, checkpoints, DDP helpers."""
