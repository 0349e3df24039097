"""The learning loop, torch-free: training data from the game, retrain jobs, the gate, the model
registry, dataset exports and the "harder to fool" chart. Torch lives in server/training."""
