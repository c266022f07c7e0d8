"""The typed training configuration: every hyperparameter, its default, its unit and its check.

Each field is documented once, in its ``help`` metadata; the command-line parser and the README's
config reference are both generated from these fields. ``Config`` validates itself on
construction and raises :class:`ConfigError`; it never silently fixes a value.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field
from typing import Any

from configs.errors import ConfigError


ACTIVATIONS = ("relu", "tanh", "gelu", "elu", "leaky_relu", "silu")
LOSSES = ("huber", "mse")
SCHEDULES = ("linear", "exponential")
VECTOR_MODES = ("sync", "async")
TORSOS = ("auto", "mlp", "nature_cnn", "minatar_cnn")
FRAME_REPLAY = ("auto", "on", "off")
DEVICE_PATTERN = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")  # agents.device.resolve_device checks it too


def _field(default: Any, help: str, choices: tuple[str, ...] | None = None) -> Any:
    """A dataclass field carrying its one-line documentation (and allowed values)."""
    metadata = {"help": help, "choices": choices}
    if isinstance(default, (list, tuple)):
        return field(default_factory=lambda: tuple(default), metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass(frozen=True)
class Config:
    # --- run -------------------------------------------------------------------------------
    env_id: str = _field("CartPole-v1", "Gymnasium env id with a Discrete action space; 'module:EnvId' imports module first.")
    algo: str = _field("dqn", "Learner from the agent registry.")
    seed: int = _field(1, "Seed for networks, exploration, replay sampling and envs (env i gets seed + i).")
    total_steps: int = _field(500_000, "Env steps to train for, summed over all vector envs.")
    num_envs: int = _field(1, "Number of environments stepped together through gymnasium.vector.")
    vector_mode: str = _field("sync", "How vector envs run: 'sync' (one process) or 'async' (a process each).", VECTOR_MODES)
    device: str = _field("auto", "Torch device: auto (cuda, then mps, then cpu), cpu, cuda, cuda:N or mps.")
    device_replay: bool = _field(True, "On a GPU, keep a copy of the replay buffer in device memory and gather batches there "
                                 "(the same batches; the host copy stays for checkpoints); off gathers on the host and "
                                 "copies each batch over. No effect on the CPU.")
    numpy_acting: bool = _field(True, "Pick greedy actions with a numpy forward of the MLP on the CPU (same actions, ~5x cheaper than torch).")
    torch_threads: int = _field(1, "Torch intra-op CPU threads; small Q-networks run fastest on one. 0 keeps torch's default.")
    run_dir: str | None = _field(None, "Run directory; default runs/<env>__<algo>__s<seed>__<time>.")
    # --- learning --------------------------------------------------------------------------
    learning_rate: float = _field(1e-4, "Adam learning rate (at env step 0).")
    learning_rate_end: float | None = _field(
        None, "If set, the learning rate decays linearly to this at total_steps; 'none' keeps it constant.")
    adam_eps: float = _field(1e-8, "Adam epsilon (numerical stability term).")
    fused_adam: bool = _field(False, "Use torch's fused Adam kernel: about 15 percent cheaper updates on the CPU; its rounding differs "
                              "from the default Adam in the last bits, so runs are reproducible but not identical to it.")
    compile: bool = _field(False, "torch.compile the whole gradient step (loss, gradients, clipping, Adam) as one graph; on CUDA "
                           "it also replays it as a CUDA graph. About 2x cheaper updates on a CPU, after a compile of 3-10 s "
                           "at the first update; results match eager to ~1e-6, not bit for bit.")
    gamma: float = _field(0.99, "Discount factor per env step, in [0, 1].")
    batch_size: int = _field(32, "Transitions per gradient step.")
    buffer_size: int = _field(100_000, "Replay capacity in transitions; the oldest are overwritten.")
    learning_starts: int = _field(10_000, "Env steps of experience collected before the first update.")
    train_frequency: int = _field(4, "Env steps between updates.")
    gradient_steps: int = _field(1, "Gradient steps per update.")
    target_update_interval: int = _field(1_000, "Env steps between target-network updates.")
    tau: float = _field(1.0, "Target update rate: 1.0 copies the online network (hard update), < 1 is Polyak averaging.")
    loss: str = _field("huber", "TD loss: 'huber' (smooth L1, delta 1) or 'mse'.", LOSSES)
    max_grad_norm: float | None = _field(10.0, "Clip the gradient's global L2 norm to this; 'none' disables clipping.")
    double: bool = _field(False, "Double DQN: the online network picks the next action, the target network values it.")
    dueling: bool = _field(False, "Dueling head: Q = V + A - mean(A) (Wang et al. 2016).")
    noisy: bool = _field(False, "Noisy linear head layers for exploration (Fortunato et al. 2018); epsilon defaults to 0.")
    noisy_sigma0: float = _field(0.5, "Initial noise scale of factorised NoisyLinear layers (sigma_0 / sqrt(fan_in)).")
    n_step: int = _field(1, "Steps of reward summed before bootstrapping (n-step returns).")
    prioritized: bool = _field(False, "Proportional prioritized replay (Schaul et al. 2016).")
    priority_alpha: float = _field(0.6, "Prioritization exponent: P(i) ~ p_i^alpha (0 = uniform).")
    priority_beta_start: float = _field(0.4, "Importance-sampling exponent at step 0, annealed linearly to 1 at total_steps.")
    priority_epsilon: float = _field(1e-6, "Added to |TD error| so that no transition has zero priority.")
    num_atoms: int = _field(51, "C51: atoms of the return distribution's support.")
    v_min: float = _field(-10.0, "C51: smallest return on the support.")
    v_max: float = _field(10.0, "C51: largest return on the support.")
    num_quantiles: int = _field(50, "QR-DQN: quantiles per action.")
    # --- exploration -----------------------------------------------------------------------
    exploration_schedule: str = _field("linear", "Epsilon schedule: 'linear' or 'exponential'.", SCHEDULES)
    epsilon_start: float = _field(1.0, "Epsilon at env step 0.")
    epsilon_end: float = _field(0.05, "Final epsilon.")
    epsilon_decay_steps: int = _field(
        50_000,
        "Env steps of decay. linear: steps to reach epsilon_end; exponential: time constant "
        "(the gap to epsilon_end shrinks by a factor e every this many steps).",
    )
    # --- network ---------------------------------------------------------------------------
    hidden_sizes: tuple[int, ...] = _field((120, 84), "Hidden layer widths of the MLP Q-network, e.g. 256,256.")
    activation: str = _field("relu", "Hidden activation of the MLP.", ACTIVATIONS)
    network: str | None = _field(None, "Your own Q-network as 'module:Factory', called as Factory(observation_shape, n_actions).")
    torso: str = _field("auto", "Network torso: 'mlp'; 'nature_cnn' (Mnih et al. 2015) for [C,H,W] frames; 'minatar_cnn' "
                        "(Young & Tian 2019) for MinAtar's [10,10,C] grids; 'auto' picks from the observation shape. "
                        "hidden_sizes are the layers after the convolutions.", TORSOS)
    # --- pixels: Atari (ALE/...) and MinAtar (MinAtar/...) --------------------------------
    frame_skip: int = _field(4, "Atari: each agent step repeats the action on this many frames (max over the last two).")
    frame_stack: int = _field(4, "Atari: frames stacked into one observation.")
    noop_max: int = _field(30, "Atari: a random number (0 to this) of no-op actions after each reset.")
    screen_size: int = _field(84, "Atari: frames are resized to this many pixels square, grayscale.")
    sticky_actions: float = _field(0.25, "Atari and MinAtar: probability that the previous action repeats instead of "
                                   "the chosen one (Machado et al. 2018).")
    full_action_space: bool = _field(False, "Atari: all 18 actions instead of the game's minimal set.")
    terminal_on_life_loss: bool = _field(True, "Atari: for learning only, a lost life ends the episode (no bootstrap, "
                                         "n-step windows end); logged returns and evaluations are whole games.")
    clip_rewards: bool = _field(False, "Learn from sign(reward) (Mnih et al. 2015); logged returns stay the env's own.")
    max_episode_steps: int | None = _field(None, "Truncate episodes after this many agent steps; 'none' keeps the "
                                           "env's own limit (MinAtar has none).")
    frame_replay: str = _field("auto", "Store each frame of stacked-frame observations once in replay, rebuilding "
                               "stacks when sampling; 'auto' is on for Atari.", FRAME_REPLAY)
    # --- evaluation, logging, checkpoints --------------------------------------------------
    eval_frequency: int = _field(10_000, "Env steps between greedy evaluations on a separate env; 0 disables.")
    eval_episodes: int = _field(10, "Episodes per periodic evaluation.")
    eval_epsilon: float = _field(0.0, "Epsilon used during evaluation.")
    log_frequency: int = _field(1_000, "Env steps between loss/sps logs to TensorBoard.")
    progress: bool = _field(True, "Show a progress bar.")
    checkpoint_every: int = _field(
        50_000, "Env steps between full training checkpoints in RUN_DIR/checkpoints (for --resume); "
        "one is also written at exit. 0 writes only the one at exit.")
    keep_checkpoints: int = _field(2, "Checkpoints kept on disk, newest first; an older one is deleted only "
                                      "once a newer one is complete.")

    def __post_init__(self) -> None:
        _check_types(self)
        for problem in _problems(self):
            raise ConfigError(problem)


def _problems(c: Config):
    """Yield the first violated constraint as a message naming the field and what is allowed."""
    positive_ints = ("total_steps", "num_envs", "batch_size", "buffer_size", "train_frequency",
                     "gradient_steps", "target_update_interval", "eval_episodes", "log_frequency",
                     "keep_checkpoints")
    for name in positive_ints:
        if getattr(c, name) < 1:
            yield f"{name} must be >= 1, got {getattr(c, name)}"
    for name in ("frame_skip", "frame_stack", "screen_size"):
        if getattr(c, name) < 1:
            yield f"{name} must be >= 1, got {getattr(c, name)}"
    if c.max_episode_steps is not None and c.max_episode_steps < 1:
        yield f"max_episode_steps must be >= 1 or none, got {c.max_episode_steps}"
    if not 0.0 <= c.sticky_actions <= 1.0:
        yield f"sticky_actions must lie in [0, 1], got {c.sticky_actions}"
    for name in ("seed", "learning_starts", "epsilon_decay_steps", "eval_frequency", "torch_threads",
                 "checkpoint_every", "noop_max"):
        if getattr(c, name) < 0:
            yield f"{name} must be >= 0, got {getattr(c, name)}"
    if not c.env_id.strip():
        yield "env_id must not be empty"
    if not (c.learning_rate > 0 and _finite(c.learning_rate)):
        yield f"learning_rate must be a finite number > 0, got {c.learning_rate}"
    if c.learning_rate_end is not None and not 0.0 <= c.learning_rate_end <= c.learning_rate:
        yield f"learning_rate_end must be in [0, learning_rate], got {c.learning_rate_end}"
    if not c.adam_eps > 0:
        yield f"adam_eps must be > 0, got {c.adam_eps}"
    for name in ("gamma", "epsilon_start", "epsilon_end", "eval_epsilon"):
        if not 0.0 <= getattr(c, name) <= 1.0:
            yield f"{name} must be in [0, 1], got {getattr(c, name)}"
    if not 0.0 < c.tau <= 1.0:
        yield f"tau must be in (0, 1], got {c.tau}"
    if c.n_step < 1:
        yield f"n_step must be >= 1, got {c.n_step}"
    if c.num_atoms < 2 or c.num_quantiles < 1:
        yield f"num_atoms must be >= 2 and num_quantiles >= 1, got {c.num_atoms} and {c.num_quantiles}"
    if not c.v_min < c.v_max:
        yield f"v_min must be below v_max, got v_min={c.v_min}, v_max={c.v_max}"
    if not c.noisy_sigma0 > 0:
        yield f"noisy_sigma0 must be > 0, got {c.noisy_sigma0}"
    if not 0.0 <= c.priority_alpha <= 1.0 or not 0.0 <= c.priority_beta_start <= 1.0:
        yield f"priority_alpha and priority_beta_start must be in [0, 1], got {c.priority_alpha}, {c.priority_beta_start}"
    if not c.priority_epsilon > 0:
        yield f"priority_epsilon must be > 0, got {c.priority_epsilon}"
    if c.batch_size > c.buffer_size:
        yield f"batch_size ({c.batch_size}) must not exceed buffer_size ({c.buffer_size})"
    if c.compile and c.fused_adam:
        yield "compile and fused_adam are both on: the compiled step does Adam's arithmetic itself; choose one"
    if c.max_grad_norm is not None and not c.max_grad_norm > 0:
        yield f"max_grad_norm must be > 0 or none, got {c.max_grad_norm}"
    if not c.hidden_sizes or any(width < 1 for width in c.hidden_sizes):
        yield f"hidden_sizes must be one or more widths >= 1, got {list(c.hidden_sizes)}"
    if not DEVICE_PATTERN.match(c.device):
        yield f"device must be auto, cpu, cuda, cuda:N or mps, got {c.device!r}"
    if c.network is not None and ":" not in c.network:
        yield f"network must look like 'module:Factory', got {c.network!r}"
    for f in dataclasses.fields(c):
        choices = f.metadata.get("choices")
        if choices and getattr(c, f.name) not in choices:
            yield f"{f.name} must be one of {', '.join(choices)}; got {getattr(c, f.name)!r}"


def _check_types(c: Config) -> None:
    """Reject values of the wrong type (YAML makes '1e-3' a string and 'yes' a bool)."""
    for f in dataclasses.fields(c):
        value = getattr(c, f.name)
        kind, optional = field_kind(f)
        if value is None and optional:
            continue
        if kind is tuple:
            ok = isinstance(value, tuple) and all(_is_int(v) for v in value)
        elif kind is float:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        elif kind is int:
            ok = _is_int(value)
        else:
            ok = isinstance(value, kind)
        if not ok:
            raise ConfigError(f"{f.name} must be {_kind_name(kind, optional)}, got {value!r}")


def _finite(value: float) -> bool:
    try:
        return math.isfinite(value)
    except OverflowError:  # an int too large for a float
        return False


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _kind_name(kind: type, optional: bool) -> str:
    names = {int: "an integer", float: "a number", bool: "true or false", str: "a string",
             tuple: "a list of integers (a tuple from Python)"}
    return names[kind] + (" or none" if optional else "")


def field_kind(f: dataclasses.Field) -> tuple[type, bool]:
    """(base type, whether None is allowed) of a Config field, read from its annotation."""
    annotation = str(f.type)
    optional = "None" in annotation
    for name, kind in (("tuple", tuple), ("bool", bool), ("float", float), ("int", int), ("str", str)):
        if annotation.startswith(name):
            return kind, optional
    raise TypeError(f"unsupported config annotation {annotation!r}")  # a bug in Config, not user input


FIELD_NAMES = tuple(f.name for f in dataclasses.fields(Config))
