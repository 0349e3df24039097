"""The server's side of training, torch-free.

- `job.TrainingJob`: what to train (the JSON file handed to the trainer process);
- `examples.ExampleSet`: the .npz of drawings to train on or to hold out;
- `protocol`: the JSON lines the trainer reports with;
- `process.TrainerProcess`: runs `python -m server.training.worker_main JOB.json` from asyncio.
"""
