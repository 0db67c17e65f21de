"""Training loops (pretrain, probe, fine-tune), optimisation, checkpoints and metrics."""
