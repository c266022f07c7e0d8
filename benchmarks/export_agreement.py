"""Do exported graphs act as the torch network does? Every torso x head, ONNX Runtime (and pt2).

    python benchmarks/export_agreement.py [--observations 10000] [--formats onnx pt2]

For each torso (MLP on CartPole-v1 observations collected from the env, MLP on Discrete state
indices, Nature CNN on random 4x84x84 uint8 frames, MinAtar CNN on random 10x10x4 bool grids) and
head (plain, dueling, noisy, C51, QR-DQN, Rainbow's C51 + dueling + noisy), a randomly initialised
network with small hidden layers is exported and compared with the torch network on the same
observations: greedy actions identical, Q-values within deployment.verify's tolerance. Prints a
table and writes JSON (default benchmarks/results/export_agreement.json).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from benchmarks.common import print_table, write_json  # noqa: E402
from dqn_family.agents import build_q_network, set_torch_threads  # noqa: E402
from dqn_family.deployment.formats import EXPORTERS, RUNNERS, SUFFIXES  # noqa: E402
from dqn_family.deployment.policy import GreedyPolicy, ObservationSpec  # noqa: E402
from dqn_family.deployment.verify import ATOL, RTOL, collect_observations, compare  # noqa: E402
from dqn_family.envs import EnvOptions  # noqa: E402

SUPPORT = torch.linspace(-10.0, 10.0, 51)
HEADS = {
    "plain": {},
    "dueling": {"dueling": True},
    "noisy": {"noisy": True},
    "c51": {"output": "c51", "num_outputs": 51, "support": SUPPORT},
    "qr": {"output": "qr", "num_outputs": 50},
    "rainbow": {"output": "c51", "num_outputs": 51, "support": SUPPORT, "dueling": True, "noisy": True},
}
# torso -> (observation spec, actions, network options)
TORSOS = {
    "mlp": (ObservationSpec((4,), "float32"), 2, {"hidden_sizes": (64, 64)}),
    "mlp_onehot": (ObservationSpec((), "int64", 500), 6, {"hidden_sizes": (64,), "observation_states": 500}),
    "nature_cnn": (ObservationSpec((4, 84, 84), "uint8"), 4, {"hidden_sizes": (64,), "torso": "nature_cnn"}),
    "minatar_cnn": (ObservationSpec((10, 10, 4), "bool"), 6, {"hidden_sizes": (64,), "torso": "minatar_cnn"}),
}


def observations_for(torso: str, network: torch.nn.Module, count: int, rng: np.random.Generator) -> np.ndarray:
    spec = TORSOS[torso][0]
    if torso == "mlp":  # CartPole-v1's own observations, played epsilon-greedily by this network
        return collect_observations(network, "CartPole-v1", EnvOptions(), count=count, seed=0, epsilon=0.5)[0]
    if torso == "mlp_onehot":  # state indices of a 500-state env (Taxi's size)
        return rng.integers(0, spec.states, size=count)
    if spec.dtype == "bool":
        return rng.random((count, *spec.shape)) < 0.1
    return rng.integers(0, 256, size=(count, *spec.shape), dtype=np.uint8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--observations", type=int, default=10_000)
    parser.add_argument("--formats", nargs="+", default=["onnx", "pt2"], choices=sorted(EXPORTERS))
    parser.add_argument("--torsos", nargs="+", default=list(TORSOS), choices=list(TORSOS))
    parser.add_argument("--heads", nargs="+", default=list(HEADS), choices=list(HEADS))
    parser.add_argument("--out", default="benchmarks/results/export_agreement.json")
    args = parser.parse_args()
    set_torch_threads(1)
    rows, results = [], []
    with tempfile.TemporaryDirectory() as folder:
        for torso in args.torsos:
            spec, n_actions, options = TORSOS[torso]
            for head in args.heads:
                torch.manual_seed(0)
                network = build_q_network(spec.shape, n_actions, activation="relu", **options, **HEADS[head]).eval()
                observations = observations_for(torso, network, args.observations, np.random.default_rng(0))
                for fmt in args.formats:
                    path = Path(folder) / f"{torso}_{head}{SUFFIXES[fmt]}"
                    started = time.perf_counter()
                    path.write_bytes(EXPORTERS[fmt](GreedyPolicy(network), spec))
                    agreement = compare(network, RUNNERS[fmt](path), observations)
                    seconds = time.perf_counter() - started
                    results.append(
                        {
                            "torso": torso,
                            "head": head,
                            "format": fmt,
                            "observations": len(observations),
                            "action_mismatches": agreement.action_mismatches,
                            "q_mismatches": agreement.q_mismatches,
                            "worst_q_difference": agreement.worst_q_difference,
                            "seconds": round(seconds, 1),
                        }
                    )
                    rows.append(
                        [
                            torso,
                            head,
                            fmt,
                            f"{len(observations):,}",
                            f"{100 * (1 - agreement.action_mismatches / len(observations)):.2f}%",
                            agreement.q_mismatches,
                            f"{agreement.worst_q_difference:.2g}",
                            f"{seconds:.1f}",
                        ]
                    )
                    print(*rows[-1], flush=True)
    print_table(["torso", "head", "format", "observations", "actions agree", "Q rows off", "worst |dQ|", "s"], rows)
    agree = all(r["action_mismatches"] == 0 and r["q_mismatches"] == 0 for r in results)
    print(f"tolerance atol {ATOL:g} + rtol {RTOL:g}; all agree: {agree}")
    write_json(
        args.out,
        {"tolerance": {"atol": ATOL, "rtol": RTOL}, "torch": torch.__version__, "all_agree": agree, "results": results},
    )


if __name__ == "__main__":
    main()
