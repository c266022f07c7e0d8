"""Latency of one greedy action for one observation: ONNX Runtime vs torch vs the numpy actor.

    python benchmarks/export_latency.py [--run-dir RUN_DIR] [--calls 3000]

The network is RUN_DIR's (default: a randomly initialised MLP of the CartPole-v1 preset's shape,
128-128 ReLU, 4 inputs, 2 actions). Each contender maps one observation [1, 4] to an action:
ONNX Runtime (one intra-op thread, the exported graph's 'actions' output), the torch network
(eval mode, no_grad, argmax, one thread), the torch.export program loaded back from .pt2, and the
numpy forward the training loop acts with (agents/numpy_actor.py). Median and 90th percentile of
``--calls`` calls after a warm-up; JSON in benchmarks/results/export_latency.json.
"""

from __future__ import annotations

import argparse
import functools
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from benchmarks.common import print_table, time_us, write_json  # noqa: E402
from dqn_family.agents import build_q_network, numpy_greedy_policy, set_torch_threads  # noqa: E402
from dqn_family.deployment.formats import EXPORTERS, RUNNERS, require_onnx  # noqa: E402
from dqn_family.deployment.policy import GreedyPolicy, ObservationSpec  # noqa: E402


def contenders(network: torch.nn.Module, spec: ObservationSpec, folder: Path) -> dict:
    """name -> a function observation [1, *shape] -> action."""
    import onnxruntime

    onnx_path, pt2_path = folder / "model.onnx", folder / "model.pt2"
    onnx_path.write_bytes(EXPORTERS["onnx"](GreedyPolicy(network), spec))
    pt2_path.write_bytes(EXPORTERS["pt2"](GreedyPolicy(network), spec))
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    session = onnxruntime.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
    pt2 = RUNNERS["pt2"](pt2_path)
    numpy_greedy = numpy_greedy_policy(network)

    def torch_action(observation: np.ndarray) -> int:
        with torch.no_grad():
            return int(network(torch.as_tensor(observation)).argmax(dim=1)[0])

    found = {
        "onnxruntime": lambda o: int(session.run(["actions"], {"observations": o})[0][0]),
        "torch (eager)": torch_action,
        "torch.export (.pt2)": lambda o: int(pt2(o)[0][0]),
    }
    if numpy_greedy is not None:
        found["numpy actor"] = lambda o: int(numpy_greedy(o)[0])
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run-dir", default=None)
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--out", default="benchmarks/results/export_latency.json")
    args = parser.parse_args()
    require_onnx()
    set_torch_threads(1)
    if args.run_dir:
        from dqn_family.evaluate import load_run

        _, network = load_run(args.run_dir, device=torch.device("cpu"))
    else:
        torch.manual_seed(0)
        network = build_q_network((4,), 2, hidden_sizes=(128, 128), activation="relu")
    network.eval()
    spec = ObservationSpec((4,), "float32")
    observation = np.random.default_rng(0).normal(size=(1, 4)).astype(np.float32)
    results, rows = {}, []
    with tempfile.TemporaryDirectory() as folder:
        functions = contenders(network, spec, Path(folder))
        actions = {name: function(observation) for name, function in functions.items()}
        assert len(set(actions.values())) == 1, f"contenders disagree: {actions}"
        for name, function in functions.items():
            call = functools.partial(function, observation)
            time_us(call, 200)  # warm-up
            times = time_us(call, args.calls)
            results[name] = {
                "median_us": round(float(np.median(times)), 2),
                "p90_us": round(float(np.percentile(times, 90)), 2),
            }
            rows.append([name, f"{results[name]['median_us']:.1f}", f"{results[name]['p90_us']:.1f}"])
    print_table(["one action", "median us", "p90 us"], rows)
    write_json(
        args.out,
        {
            "calls": args.calls,
            "network": args.run_dir or "random 128-128 MLP, 4 inputs, 2 actions",
            "torch": torch.__version__,
            "results": results,
        },
    )


if __name__ == "__main__":
    main()
