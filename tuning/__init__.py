"""Hyperparameter search with Optuna (tune.py keeps the command line): search spaces read from
YAML (``tuning.space``), the study, its storage and its stale trials (``tuning.study``), one
trial as a normal training run scored by its periodic evaluations and pruned through train()'s
evaluation hook (``tuning.objective``), the workers that run trials, as local processes or Ray
tasks (``tuning.workers``), and best configs and figures (``tuning.report``). Needs the ``tune``
extra (optuna); imports configs, training and train.train, never tune.py."""
