"""Training jobs, torch-free: what a job is, how it runs in its own process, and who runs it.

- `job.TrainingJob`: what to train (the JSON file handed to the trainer process);
- `examples.ExampleSet`: the .npz of drawings to train on or to hold out;
- `report`: the JSON lines the trainer process reports with;
- `process.TrainerProcess`: runs `python -m server.training.worker_main JOB.json` from asyncio;
- `runner.JobRun`: one job from its database row to the end; `worker`: `fool-the-model trainer`.
"""
