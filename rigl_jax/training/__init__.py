"""The runner: config schema, build, the training loop, checkpoints, costs.

``config`` (every key with its default, loading, resolution), ``build``
(everything a run is made of, from its config alone), ``steps`` (the
compiled computations), ``loop`` (``train_and_evaluate``), ``checkpoints``,
``preemption``, ``costs`` (parameter and FLOPs reports).
"""
