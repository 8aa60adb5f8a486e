"""Launching a sweep's runs elsewhere than here, and where each run stands.

``slurm``: one sbatch job array per sweep. ``tpu_vm``: one ``gcloud`` ssh
command per run on a Cloud TPU VM slice. ``run_status``: finished, running,
queued, failed or not started, read from a run's workdir.
"""
