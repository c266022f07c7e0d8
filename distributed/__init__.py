"""Distributed training, Ape-X on Ray (Horgan et al. 2018, "Distributed Prioritized Experience
Replay"): many actor processes step envs and send n-step transitions with initial priorities to one
replay, which one learner samples. ``python train.py --actors N`` (``Config.actors``) runs it.

``actor`` (an actor's stepping) and ``replay_server`` (the replay) and ``learner`` (the learner's
loop, with ``InlineWorkers`` to run it all in one process) are plain Python; ``ray_workers`` puts
actors and replay into Ray actors, ``run`` starts and resumes a run, ``ray_session`` starts or joins
Ray (for tune.py and multirun.py too). Only those import Ray, the optional ``ray`` extra, and only
when a command asks for it.
"""
