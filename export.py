"""Export a trained Q-network for deployment: ``python export.py RUN_DIR --format onnx|pt2
[--model best|latest|PATH] [--out PATH] [--verify [--verify-observations N]] [--trust-imports]``.

The exported graph takes a batch of raw observations (the env's dtype; frames are scaled and state
indices one-hot encoded inside), and for a run with action masks an ``action_mask`` (bool [B, A]),
and returns the greedy (legal) actions and the Q-values (expected values
for C51 and QR-DQN), with a dynamic batch axis; noisy layers are exported in evaluation mode (mean
weights). A recurrent network is exported as one acting step, (observations, state) -> (actions,
Q-values, next state), its initial state in the sidecar. A JSON sidecar goes beside it
(deployment/sidecar.py). ``--verify`` runs the exported file (ONNX Runtime, or torch.export.load)
and the torch network on observations collected from the env and fails (exit 1, one line) unless
every greedy action is identical and every Q-value within the tolerance in deployment/verify.py
(a recurrent network: step by step through whole episodes, each model carrying its own state).
"""

from __future__ import annotations

import argparse
import os
import sys

from dqn_family.configs import make_parser
from dqn_family.deployment import SUFFIXES


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """export.py's command line. Reading it needs no torch, so that --help and a mistyped flag answer
    at once, before the imports below."""
    parser = make_parser("export.py", "Export a run's Q-network as ONNX or a torch.export .pt2 file.")
    parser.add_argument("run_dir", help="Run directory written by train.py.")
    parser.add_argument("--format", choices=sorted(SUFFIXES), default="onnx", help="onnx (default) or pt2.")
    parser.add_argument(
        "--model",
        default="latest",
        help="'latest' (end of training), 'best' (best periodic evaluation) or a model file path.",
    )
    parser.add_argument(
        "--out",
        default=None,
        help="Output file (default: RUN_DIR/model_<model>.onnx or .pt2); the sidecar is OUT.json.",
    )
    parser.add_argument(
        "--verify",
        action="store_true",
        help="Run the exported file and compare it with the torch network on env observations.",
    )
    parser.add_argument(
        "--verify-observations",
        type=int,
        default=1000,
        metavar="N",
        help="Observations collected from the env for --verify (default: 1000; at most 1,000,000).",
    )
    parser.add_argument(
        "--trust-imports",
        action="store_true",
        help="Import the modules the run's config names ('module:EnvId', 'module:Factory'), running "
        "their code; without it such a run is refused. Never from inside the run directory.",
    )
    return parser.parse_args(argv)


if __name__ == "__main__":  # the command line first: --help needs none of the imports below
    ARGS = parse_args(sys.argv[1:])

try:  # Ctrl-C during the imports: one line and the shell's code for SIGINT
    from pathlib import Path

    import torch

    from dqn_family.agents import input_parts, set_torch_threads
    from dqn_family.configs import UserError, report_user_errors
    from dqn_family.configs.trust import settle_import_path
    from dqn_family.deployment.formats import EXPORTERS, RUNNERS, require_onnx
    from dqn_family.deployment.policy import greedy_policy, initial_state, observation_spec
    from dqn_family.deployment.sidecar import sidecar, sidecar_path, write_sidecar
    from dqn_family.deployment.verify import collect_observations, compare
    from dqn_family.envs import EnvOptions, action_count, make_env, masks_of, observation_layout, observation_states
    from dqn_family.evaluate import EVAL_SEED_OFFSET, MODEL_FILES, load_run
    from dqn_family.fileio import atomic_write, kind_of_file, require_writable_file
except KeyboardInterrupt:
    sys.stderr.write(f"\n{os.path.basename(sys.argv[0])}: interrupted\n")
    raise SystemExit(130) from None


MAX_VERIFY_OBSERVATIONS = 1_000_000  # a bound (1,000x the default): verification holds every observation in memory


class VerificationFailed(Exception):
    """The exported model does not compute what the torch network does (exit code 1)."""


def main(argv: list[str] | None = None) -> int:
    return run_command(parse_args(argv))


def run_command(args: argparse.Namespace) -> int:
    """Do what parsed export.py arguments ask: one line and exit code 2 for a user's mistake, 1 for a
    failed verification."""
    settle_import_path({})  # a run directory's names: never from the current directory
    try:
        return report_user_errors("export.py", args, lambda: _export_command(args))
    except VerificationFailed as failure:
        print(f"export.py: verification failed: {failure}", file=sys.stderr)
        return 1


def output_path(args: argparse.Namespace) -> Path:
    """--out, or RUN_DIR/model_<model> with the format's suffix; its folder must exist."""
    if args.out is not None:
        out = Path(args.out)
    else:
        stem = Path(MODEL_FILES[args.model]).stem if args.model in MODEL_FILES else Path(args.model).stem
        out = Path(args.run_dir) / f"{stem}{SUFFIXES[args.format]}"
    if not out.parent.is_dir():
        raise UserError(f"cannot write {out}: folder {out.parent} does not exist (create it, or choose another --out)")
    if out.is_dir():
        raise UserError(f"cannot write {out}: it is a folder; give a file name")
    # Before the export's seconds of work: the paths the user did not name are never written through.
    if args.out is None:
        require_writable_file(out)
    if kind_of_file(out) in (None, "nothing"):  # a regular file gets a sidecar beside it
        require_writable_file(sidecar_path(out))
    return out


def _export_command(args: argparse.Namespace) -> int:
    if not 1 <= args.verify_observations <= MAX_VERIFY_OBSERVATIONS:
        raise UserError(
            f"--verify-observations must be in [1, {MAX_VERIFY_OBSERVATIONS:,}], got {args.verify_observations:,}"
        )
    if args.format == "onnx":
        require_onnx()
    out = output_path(args)
    set_torch_threads(1)
    config, q_network = load_run(
        args.run_dir, model=args.model, device=torch.device("cpu"), trust_imports=args.trust_imports
    )
    env = make_env(config.env_id, options=EnvOptions.of(config))
    try:
        space, n_actions = env.observation_space, action_count(env.action_space)
        parts = input_parts(space)  # dictionary observations: one input per key
        shape, dtype = observation_layout(space) if parts is None else ((), "")
        masks = masks_of(env, config.action_mask, config.env_id)  # the run acted with masks: the model takes them
    finally:
        env.close()
    spec = observation_spec(q_network, tuple(shape), str(dtype), observation_states(space), masks, parts)
    keys = None if parts is None else list(parts)
    model_bytes = EXPORTERS[args.format](greedy_policy(q_network, keys), spec)
    regular = kind_of_file(out) in (None, "nothing")  # not a device or pipe the user named (/dev/stdout, a FIFO)
    if args.verify and not regular:
        raise UserError(f"--verify reads the model back, so --out must be a regular file; {out} is not")
    # Only a path the user named is written through (a pipe, a symlink's target); the default, in
    # the run directory, is a run file like any other.
    atomic_write(out, lambda handle: handle.write(model_bytes), through_special=args.out is not None)
    if regular:  # no sidecar beside a device or pipe: /dev/stdout.json would be a stray file in /dev
        write_sidecar(
            out,
            sidecar(
                model_bytes=model_bytes,
                model_path=out,
                export_format=args.format,
                config=config,
                spec=spec,
                n_actions=n_actions,
                output=getattr(q_network, "output", "q"),
                initial_state=initial_state(q_network),
                eval_seed=config.seed + EVAL_SEED_OFFSET,
                source=f"{args.run_dir} ({args.model})",
            ),
        )
    print(
        f"exported {config.env_id} ({config.algo}) to {out} ({len(model_bytes):,} bytes)"
        + (f" and its sidecar {out}.json" if regular else ""),
        file=sys.stderr if not regular else sys.stdout,
    )
    if args.verify:
        observations, starts, legal = collect_observations(
            q_network,
            config.env_id,
            EnvOptions.of(config),
            count=args.verify_observations,
            seed=config.seed + EVAL_SEED_OFFSET,
            action_mask=config.action_mask if masks is not None else "off",
        )
        agreement = compare(q_network, RUNNERS[args.format](model_bytes), observations, starts, legal, keys)
        if not agreement.ok:
            raise VerificationFailed(agreement.describe())
        print(f"verified: {agreement.describe()}")
    return 0


if __name__ == "__main__":
    sys.exit(run_command(ARGS))
