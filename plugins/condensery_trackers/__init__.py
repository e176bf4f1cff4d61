"""Experiment tracking through Accelerate's trackers (tensorboard, wandb, mlflow, aim, ...)."""
