"""Deployment: a run's Q-network as a self-contained graph (ONNX or torch.export's .pt2) that maps a
batch of raw observations to greedy actions and Q-values, its JSON sidecar, and the check that the
exported graph computes what the torch network does.

- ``deployment.policy``: the module that is exported (observations -> actions, Q-values);
- ``deployment.formats``: the exporters and the runners that load an exported file, by format name;
- ``deployment.sidecar``: the JSON written beside the model (observation spec, env, algo, SHA-256);
- ``deployment.verify``: observations collected from the env, and the comparison with its tolerance.
"""

# The export formats and their files' suffixes; deployment.formats has an exporter and a runner for
# each. Here rather than there, so that export.py's --help lists them without importing torch.
SUFFIXES = {"onnx": ".onnx", "pt2": ".pt2"}
