"""Training of every shipped checkpoint: VAE, teacher, evaluator, LCM/MCM distillation,
ablations. Takes pipelines as arguments; serving code never imports it."""
