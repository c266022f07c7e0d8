"""dqn_family: the DQN family in plain, dynamic PyTorch on Gymnasium environments.

Installed as one package, ``dqn_family``, that owns the repository's top-level folders and scripts
(``dqn_family.train``, ``dqn_family.configs``, ...), so that a folder of the same name in your own
project (a ``configs/`` of YAML files, say) never shadows them. The commands are console scripts
(``dqn-train``, ``dqn-evaluate``, ...) and, in a checkout, the scripts themselves (``python train.py``).
"""

import os as _os
import sys as _sys

# `python -m dqn_family.<command>` puts the current folder first on the import path, and that
# command's own imports (numpy, torch, gymnasium) would then be found there: a `numpy.py` planted in
# a run directory would run when evaluating it from inside. While Python is still locating the
# module it runs, sys.argv[0] is "-m" (and only then): take that entry off now, before anything else
# is imported. Names the user types on the command line get the current folder back, appended after
# the installed packages (configs.trust.settle_import_path).
if _sys.argv[:1] == ["-m"] and _sys.path and _sys.path[0] in ("", _os.getcwd()):
    del _sys.path[0]
