"""dqn_family: the DQN family in plain, dynamic PyTorch on Gymnasium environments.

Installed as one package, ``dqn_family``, that owns the repository's top-level folders and scripts
(``dqn_family.train``, ``dqn_family.configs``, ...), so that a folder of the same name in your own
project (a ``configs/`` of YAML files, say) never shadows them. The commands are console scripts
(``dqn-train``, ``dqn-evaluate``, ...) and, in a checkout, the scripts themselves (``python train.py``).
"""
