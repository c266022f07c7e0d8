"""The typed training configuration: every hyperparameter, its default, its unit and its check.

Each field is documented once, in its ``help`` metadata; the command-line parser and the README's
config reference are both generated from these fields. ``Config`` validates itself on
construction and raises :class:`ConfigError`; it never silently fixes a value.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeGuard

from dqn_family.configs.errors import ConfigError
from dqn_family.configs.games import LINE_GAMES
from dqn_family.configs.schedules import SCHEDULES
from dqn_family.configs.trust import SpecError, game_of, split_env_spec, split_network_spec
from dqn_family.fileio import short_repr

# Registries: each name a config may choose, with the torch.nn class (activations) or
# torch.nn.functional function (losses) that agents build it from; the fields' choices are their keys.
ACTIVATIONS = {"relu": "ReLU", "tanh": "Tanh", "gelu": "GELU", "elu": "ELU", "leaky_relu": "LeakyReLU", "silu": "SiLU"}
LOSSES = {"huber": "smooth_l1_loss", "mse": "mse_loss"}
VECTOR_MODES = ("sync", "async")
TORSOS = ("auto", "mlp", "nature_cnn", "minatar_cnn", "board_cnn")
FRAME_REPLAY = ("auto", "on", "off")
TRACKERS = ("none", "wandb", "mlflow")  # training.tracking; each but none is the package it needs
RECURRENT_CORES = ("off", "lstm", "gru", "custom")  # agents.recurrent builds lstm and gru; custom is --network
PRECISIONS = ("fp32", "bf16", "fp16")  # agents.precision.AUTOCAST_DTYPES maps each to its dtype
DEVICE_PATTERN = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")  # agents.device.resolve_device checks it too
ACTOR_EXPLORATION = ("apex", "schedule")  # distributed.actor.actor_epsilon implements each
ACTION_MASKS = ("auto", "obs", "info", "off")  # envs.masks.mask_source implements each
SELF_PLAY = ("pool", "negamax")  # training.games.self_play_of builds each


MAX_LAYERS, MAX_WIDTH = 64, 16_384  # hidden_sizes
MAX_ENV_ID = 256  # characters: an id becomes part of file and folder names
STEPS_MAX = 10**12  # every count of env steps: far beyond any real run, small enough for exact float64 arithmetic
SEED_MAX = 2**32 - 1  # torch.manual_seed takes at most 2**64 - 1; envs get seed + i; one bound for every tool


@dataclass(frozen=True)
class Bounds:
    """The values a numeric field allows: ``low`` to ``high`` (``low`` itself excluded when
    ``open_low``); a float must also be finite. Stated in the field's help and checked by Config."""

    low: float
    high: float
    open_low: bool = False

    def allows(self, value: float) -> bool:
        above = value > self.low if self.open_low else value >= self.low
        return _finite(value) and above and value <= self.high

    def describe(self, kind: type) -> str:
        if kind is int:
            return f">= {self.low:,} and <= {self.high:,}"
        if not self.open_low and (self.low, self.high) == (0, 1):
            return "in [0, 1]"
        if self.open_low:
            return f"a finite number > {_number(self.low)} and <= {_number(self.high)}"
        return f"a finite number >= {_number(self.low)} and <= {_number(self.high)}"


def _number(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() and abs(value) < 1e7 else f"{value:g}"


def _field(
    default: Any,
    help: str,
    choices: tuple[str, ...] | None = None,
    *,
    low: float | None = None,
    high: float | None = None,
    open_low: bool = False,
    none_allowed: bool = False,
) -> Any:
    """A dataclass field carrying its one-line documentation (and allowed values or range; the
    range is added to the documentation, so it is stated where it is checked)."""
    if (low is None) != (high is None):
        raise TypeError("a field's range needs both low and high")  # a bug in Config, not user input
    bounds = None if low is None or high is None else Bounds(low, high, open_low)
    if bounds is not None:
        kind = float if isinstance(low, float) else int
        help = f"{help} Must be {bounds.describe(kind)}" + (" or none." if default is None or none_allowed else ".")
    metadata = {"help": help, "choices": choices, "bounds": bounds}
    if isinstance(default, (list, tuple)):
        return field(default_factory=lambda: tuple(default), metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass(frozen=True)
class Config:
    # --- run -------------------------------------------------------------------------------
    env_id: str = _field(
        "CartPole-v1",
        "Gymnasium env id with a Discrete action space; 'module:EnvId' imports module first. "
        f"At most {MAX_ENV_ID} characters.",
    )
    algo: str = _field("dqn", "Learner from the agent registry.")
    seed: int = _field(
        1, "Seed for networks, exploration, replay sampling and envs (env i gets seed + i).", low=0, high=SEED_MAX
    )
    total_steps: int = _field(
        500_000,
        "Env steps to train for, summed over all vector envs. A resume may raise it, extending the run "
        "(see --resume and anneal_steps).",
        low=1,
        high=STEPS_MAX,
    )
    num_envs: int = _field(1, "Number of environments stepped together through gymnasium.vector.", low=1, high=1024)
    vector_mode: str = _field(
        "sync", "How vector envs run: 'sync' (one process) or 'async' (a process each).", VECTOR_MODES
    )
    action_mask: str = _field(
        "auto",
        "Action masks (the legal actions of each state): 'obs' reads a Dict observation's 'action_mask' "
        "key (PettingZoo's convention; the Dict's other keys are the observation), 'info' reads "
        "info['action_mask'] (Gymnasium's Taxi), 'auto' takes obs if the observation has that key, else "
        "info if the env's first reset gives it, else off; 'off' ignores masks. With masks, exploration "
        "and greedy acting (training, evaluation, export) take legal actions only, and the targets "
        "maximise over the next state's legal actions.",
        ACTION_MASKS,
    )
    device: str = _field("auto", "Torch device: auto (cuda, then mps, then cpu), cpu, cuda, cuda:N or mps.")
    device_replay: bool = _field(
        True,
        "On a GPU, keep a copy of the replay buffer in device memory and gather batches there "
        "(the same batches; the host copy stays for checkpoints); off gathers on the host and "
        "copies each batch over. No effect on the CPU.",
    )
    numpy_acting: bool = _field(
        True, "Pick greedy actions with a numpy forward of the MLP on the CPU (same actions, ~5x cheaper than torch)."
    )
    torch_threads: int = _field(
        1, "Torch intra-op CPU threads; small Q-networks run fastest on one. 0 keeps torch's default.", low=0, high=1024
    )
    run_dir: str | None = _field(None, "Run directory; default runs/<env>__<algo>__s<seed>__<time>.")
    # --- learning --------------------------------------------------------------------------
    learning_rate: float = _field(1e-4, "Adam learning rate (at env step 0).", low=0.0, high=10.0, open_low=True)
    learning_rate_end: float | None = _field(
        None,
        "If set, the learning rate decays linearly to this at anneal_steps (total_steps unless set); 'none' "
        "keeps it constant. Must be in [0, learning_rate] or none.",
    )
    anneal_steps: int | None = _field(
        None,
        "Env steps over which the learning rate decays to learning_rate_end and prioritized replay's "
        "importance-sampling exponent rises to 1; 'none' is total_steps. A resume that extends the run "
        "(a larger --total-steps) sets it to the earlier total_steps, so both keep the course they had "
        "and the added steps run at their final values.",
        low=1,
        high=STEPS_MAX,
    )
    adam_eps: float = _field(1e-8, "Adam epsilon (numerical stability term).", low=0.0, high=1.0, open_low=True)
    fused_adam: bool = _field(
        False,
        "Use torch's fused Adam kernel: about 15 percent cheaper updates on the CPU; its rounding differs "
        "from the default Adam in the last bits, so runs are reproducible but not identical to it.",
    )
    compile: bool = _field(
        False,
        "torch.compile the whole gradient step (loss, gradients, clipping, Adam) as one graph; on CUDA "
        "it also replays it as a CUDA graph. About 2x cheaper updates on a CPU, after a compile of 3-10 s "
        "at the first update; results match eager to ~1e-6, not bit for bit.",
    )
    precision: str = _field(
        "fp32",
        "Precision of the learner's forward passes and loss: 'fp32'; 'bf16' or 'fp16' run them under "
        "torch.autocast, with float32 weights and Adam state, the distributional maths in float32 and "
        "acting in float32; fp16 also scales the loss (torch.amp.GradScaler) and does not combine with "
        "compile. On a CPU both are slower than fp32 (bf16 ~1.6x, fp16 ~6x per update here); they pay "
        "on GPUs with bf16/fp16 tensor cores.",
        PRECISIONS,
    )
    gamma: float = _field(0.99, "Discount factor per env step.", low=0.0, high=1.0)
    batch_size: int = _field(32, "Transitions per gradient step; at most buffer_size.", low=1, high=1_000_000)
    buffer_size: int = _field(100_000, "Replay capacity in transitions; the oldest are overwritten.", low=1, high=10**9)
    learning_starts: int = _field(
        10_000, "Env steps of experience collected before the first update.", low=0, high=STEPS_MAX
    )
    train_frequency: int = _field(4, "Env steps between updates.", low=1, high=STEPS_MAX)
    gradient_steps: int = _field(1, "Gradient steps per update.", low=1, high=10_000)
    target_update_interval: int = _field(1_000, "Env steps between target-network updates.", low=1, high=STEPS_MAX)
    tau: float = _field(
        1.0,
        "Target update rate: 1.0 copies the online network (hard update), < 1 is Polyak averaging.",
        low=0.0,
        high=1.0,
        open_low=True,
    )
    loss: str = _field("huber", "TD loss: 'huber' (smooth L1, delta 1) or 'mse'.", tuple(LOSSES))
    max_grad_norm: float | None = _field(
        10.0,
        "Clip the gradient's global L2 norm to this; 'none' disables clipping.",
        low=0.0,
        high=1e6,
        open_low=True,
        none_allowed=True,
    )
    double: bool = _field(False, "Double DQN: the online network picks the next action, the target network values it.")
    dueling: bool = _field(False, "Dueling head: Q = V + A - mean(A) (Wang et al. 2016).")
    noisy: bool = _field(
        False,
        "Noisy linear head layers for exploration (Fortunato et al. 2018). Layering rule: while noisy "
        "is on, epsilon_start and epsilon_end are 0 unless the algo's presets, --config or a flag set "
        "them (the env presets' epsilon schedules are for epsilon-greedy exploration).",
    )
    noisy_sigma0: float = _field(
        0.5,
        "Initial noise scale of factorised NoisyLinear layers (sigma_0 / sqrt(fan_in)).",
        low=0.0,
        high=10.0,
        open_low=True,
    )
    n_step: int = _field(1, "Steps of reward summed before bootstrapping (n-step returns).", low=1, high=1_000)
    prioritized: bool = _field(False, "Proportional prioritized replay (Schaul et al. 2016).")
    priority_alpha: float = _field(0.6, "Prioritization exponent: P(i) ~ p_i^alpha (0 = uniform).", low=0.0, high=1.0)
    priority_beta_start: float = _field(
        0.4,
        "Importance-sampling exponent at step 0, annealed linearly to 1 at anneal_steps (total_steps unless set).",
        low=0.0,
        high=1.0,
    )
    priority_epsilon: float = _field(
        1e-6, "Added to |TD error| so that no transition has zero priority.", low=0.0, high=1.0, open_low=True
    )
    num_atoms: int = _field(51, "C51: atoms of the return distribution's support.", low=2, high=10_000)
    v_min: float = _field(-10.0, "C51: smallest return on the support; below v_max.", low=-1e6, high=1e6)
    v_max: float = _field(10.0, "C51: largest return on the support.", low=-1e6, high=1e6)
    num_quantiles: int = _field(50, "QR-DQN: quantiles per action.", low=1, high=10_000)
    # --- exploration -----------------------------------------------------------------------
    exploration_schedule: str = _field("linear", "Epsilon schedule: 'linear' or 'exponential'.", tuple(SCHEDULES))
    epsilon_start: float = _field(1.0, "Epsilon at env step 0.", low=0.0, high=1.0)
    epsilon_end: float = _field(0.05, "Final epsilon.", low=0.0, high=1.0)
    epsilon_decay_steps: int = _field(
        50_000,
        "Env steps of decay. linear: steps to reach epsilon_end; exponential: time constant "
        "(the gap to epsilon_end shrinks by a factor e every this many steps).",
        low=0,
        high=STEPS_MAX,
    )
    # --- network ---------------------------------------------------------------------------
    hidden_sizes: tuple[int, ...] = _field(
        (120, 84),
        "Hidden layer widths of the MLP Q-network, e.g. 256,256: one to "
        f"{MAX_LAYERS} widths, each >= 1 and <= {MAX_WIDTH:,}.",
    )
    activation: str = _field("relu", "Hidden activation of the MLP.", tuple(ACTIVATIONS))
    network: str | None = _field(
        None,
        "Your own Q-network as 'module:Factory', called as Factory(observation_shape, n_actions); under "
        "a dueling, noisy or distributional head or a recurrent core it is the torso, called with "
        "n_actions = hidden_sizes[-1].",
    )
    torso: str = _field(
        "auto",
        "Network torso: 'mlp'; 'nature_cnn' (Mnih et al. 2015) for [C,H,W] frames; 'minatar_cnn' "
        "(Young & Tian 2019) for MinAtar's [10,10,C] grids; 'board_cnn' (64 4x4 filters, a line of four in "
        "one filter) for board games' [H,W,C] planes, H, W >= 4; 'auto' picks from the observation shape "
        "(never board_cnn). "
        "hidden_sizes are the layers after the convolutions.",
        TORSOS,
    )
    # --- recurrent Q-networks (R2D2: Kapturowski et al. 2019) ------------------------------
    recurrent: str = _field(
        "off",
        "Recurrent core between the torso and the head: 'lstm' or 'gru' (any head: plain, dueling, C51, QR, "
        "noisy), 'custom' (your own recurrent --network, see the README), 'off' (feed-forward). A recurrent "
        "run replays sequences; batch_size then counts sequences.",
        RECURRENT_CORES,
    )
    recurrent_size: int = _field(128, "Recurrent: width of the LSTM or GRU state.", low=1, high=MAX_WIDTH)
    sequence_length: int = _field(
        40,
        "Recurrent: env steps per replayed sequence, burn-in included; buffer_size must hold at least one.",
        low=1,
        high=10_000,
    )
    sequence_overlap: int = _field(
        20, "Recurrent: steps shared by consecutive sequences of an episode; below sequence_length.", low=0, high=10_000
    )
    burn_in: int = _field(
        10,
        "Recurrent: first steps of each replayed sequence, only unrolled to refresh the state and left out "
        "of the loss; below sequence_length.",
        low=0,
        high=10_000,
    )
    stored_state: bool = _field(
        True,
        "Recurrent: start each replayed sequence from the recurrent state stored with it (R2D2); off starts "
        "from zeros.",
    )
    priority_eta: float = _field(
        0.9,
        "Recurrent prioritized replay: a sequence's priority is eta * max + (1 - eta) * mean of its steps' priorities.",
        low=0.0,
        high=1.0,
    )
    # --- pixels: Atari (ALE/...) and MinAtar (MinAtar/...) --------------------------------
    frame_skip: int = _field(
        4, "Atari: each agent step repeats the action on this many frames (max over the last two).", low=1, high=64
    )
    frame_stack: int = _field(4, "Atari: frames stacked into one observation.", low=1, high=64)
    noop_max: int = _field(
        30, "Atari: a random number (0 to this) of no-op actions after each reset.", low=0, high=10_000
    )
    screen_size: int = _field(84, "Atari: frames are resized to this many pixels square, grayscale.", low=1, high=1_024)
    sticky_actions: float = _field(
        0.25,
        "Atari and MinAtar: probability that the previous action repeats instead of "
        "the chosen one (Machado et al. 2018).",
        low=0.0,
        high=1.0,
    )
    full_action_space: bool = _field(False, "Atari: all 18 actions instead of the game's minimal set.")
    terminal_on_life_loss: bool = _field(
        True,
        "Atari: for learning only, a lost life ends the episode (no bootstrap, "
        "n-step windows end); logged returns and evaluations are whole games.",
    )
    clip_rewards: bool = _field(False, "Learn from sign(reward) (Mnih et al. 2015); logged returns stay the env's own.")
    max_episode_steps: int | None = _field(
        None,
        "Truncate episodes after this many agent steps; 'none' keeps the env's own limit (MinAtar has none).",
        low=1,
        high=10**9,
    )
    frame_replay: str = _field(
        "auto",
        "Store each frame of stacked-frame observations once in replay, rebuilding "
        "stacks when sampling; 'auto' is on for Atari.",
        FRAME_REPLAY,
    )
    # --- two-player games: pettingzoo:<game> (envs.games, training.games) -------------------
    self_play: str = _field(
        "pool",
        "With a pettingzoo:<game> env: 'pool' plays each game against an earlier snapshot of the "
        "learner (the self_play_* fields below), an env step being the learner's move and the reply; "
        "'negamax' has the learner make every move, an env step being one move, and each move's target "
        "is its reward minus gamma times the mover's best Q-value at the next position, seen by the "
        "other player (zero-sum minimax Q-learning: the value of perfect play against any opponent).",
        SELF_PLAY,
    )
    self_play_snapshot_steps: int = _field(
        5_000,
        "With a pettingzoo:<game> env and self_play pool: env steps between snapshots of the online "
        "Q-network added to the self-play opponent pool (one is taken at the start too); at each "
        "episode's start each env's opponent is drawn from the pool (the newest snapshot with "
        "probability 0.5, else any held, uniformly) and plays its masked greedy moves. 0 turns "
        "self-play off: the opponent plays uniformly random legal moves.",
        low=0,
        high=STEPS_MAX,
    )
    self_play_pool_size: int = _field(
        10,
        "With a pettingzoo:<game> env and self_play pool: the self-play snapshots kept, the oldest dropped first.",
        low=1,
        high=1_000,
    )
    self_play_epsilon: float = _field(
        0.1,
        "With a pettingzoo:<game> env and self_play pool: the probability that a self-play opponent plays a "
        "uniformly random legal move instead of its greedy one (varied openings to learn from).",
        low=0.0,
        high=1.0,
    )
    mirror_boards: bool = _field(
        False,
        "With a pettingzoo:<game> board game (tictactoe_v3, connect_four_v3): learn from every other "
        "sampled transition's left-right mirror image (board columns reversed; the action and the next "
        "position's legal moves mapped to the mirrored columns), which is as good a move by the game's "
        "symmetry: twice the positions from the same games, at no extra compute.",
    )
    # --- evaluation, logging, checkpoints --------------------------------------------------
    eval_frequency: int = _field(
        10_000, "Env steps between greedy evaluations on a separate env; 0 disables.", low=0, high=STEPS_MAX
    )
    eval_episodes: int = _field(
        10,
        "Episodes per periodic evaluation; with a pettingzoo:<game> env, games per seat against each "
        "scripted player (random, one-ply, and minimax for tic-tac-toe).",
        low=1,
        high=10_000,
    )
    eval_epsilon: float = _field(0.0, "Epsilon used during evaluation.", low=0.0, high=1.0)
    log_frequency: int = _field(1_000, "Env steps between loss/sps logs to TensorBoard.", low=1, high=STEPS_MAX)
    progress: bool = _field(True, "Show a progress bar.")
    track: str = _field(
        "none",
        "Also send the TensorBoard scalars and the config to an experiment tracker: 'wandb' (offline unless "
        "WANDB_MODE says otherwise; files in RUN_DIR/wandb) or 'mlflow' (MLFLOW_TRACKING_URI, else "
        "./mlruns/mlflow.db); needs the 'track' extra. A resume continues the same tracked run.",
        TRACKERS,
    )
    checkpoint_every: int = _field(
        50_000,
        "Env steps between full training checkpoints in RUN_DIR/checkpoints (for --resume); "
        "one is also written at exit. 0 writes only the one at exit.",
        low=0,
        high=STEPS_MAX,
    )
    keep_checkpoints: int = _field(
        2,
        "Checkpoints kept on disk, newest first; an older one is deleted only once a newer one is complete.",
        low=1,
        high=1_000,
    )

    # --- distributed training: Ape-X on Ray (distributed/) ------------------------------------
    actors: int = _field(
        0,
        "Ray actor processes that step envs (each its own num_envs) and feed one prioritized (or uniform) "
        "replay, which one learner samples (Ape-X, Horgan et al. 2018; needs the ray extra). 0 runs the "
        "single-process loop.",
        low=0,
        high=1_024,
    )
    ray_address: str | None = _field(
        None,
        "With actors: the Ray cluster to join: 'auto' (the one `ray start --head` runs on this machine), "
        "'host:port' of its head (with RAY_AUTH_MODE=token set, for a cluster with token authentication) or "
        "'ray://host:port' (Ray Client); 'none' starts a new local Ray instance, reachable from this machine "
        "only, with a CPU for each actor and one for the replay. Never taken from a run directory on --resume.",
    )
    actor_exploration: str = _field(
        "apex",
        "With actors: 'apex' anneals actor i's epsilon from epsilon_start to its own final rate "
        "0.4^(1 + 7i/(actors - 1)) (Ape-X's spread; 0.4 for one actor) over epsilon_decay_steps; "
        "'schedule' gives every actor the single-process schedule (to epsilon_end). With noisy, "
        "both use the schedule (0 unless set).",
        ACTOR_EXPLORATION,
    )
    replay_ratio: float | None = _field(
        None,
        "With actors: transitions replayed per env step (updates x batch_size / env steps after "
        "learning_starts); the learner waits for env steps when ahead, and actors wait when the learner "
        "is behind by more than max_steps_in_flight, so results do not depend on the machine's speed. "
        "'none' is the single-process run's ratio, batch_size x gradient_steps / train_frequency.",
        low=0.0,
        high=1e6,
        open_low=True,
    )
    send_steps: int = _field(
        50,
        "With actors: env steps an actor collects (each real step makes one transition) before sending "
        "them to the replay in one batch, with their initial priorities (Ape-X: 50).",
        low=1,
        high=100_000,
    )
    max_steps_in_flight: int = _field(
        1_000,
        "With actors: env steps collected or being collected but not yet acknowledged by the replay, over "
        "all actors (each actor has at least one send in flight); actors wait while it is reached, so "
        "memory stays flat when the replay falls behind. At least send_steps.",
        low=1,
        high=10**8,
    )
    weight_publish_updates: int = _field(
        50, "With actors: learner updates between publications of its weights to the actors.", low=1, high=10**8
    )
    weight_sync_steps: int = _field(
        400,
        "With actors: env steps of an actor between fetches of the latest published weights (Ape-X: 400 frames).",
        low=1,
        high=STEPS_MAX,
    )

    def __post_init__(self) -> None:
        _check_types(self)
        for problem in _problems(self):
            raise ConfigError(problem)


def _problems(c: Config):
    """Yield the first violated constraint as a message naming the field and what is allowed."""
    for f in dataclasses.fields(c):
        bounds, value = f.metadata.get("bounds"), getattr(c, f.name)
        if bounds is not None and value is not None and not bounds.allows(value):
            kind, optional = field_kind(f)
            yield f"{f.name} must be {bounds.describe(kind)}{' or none' if optional else ''}, got {short_repr(value)}"
    if not c.env_id.strip():
        yield "env_id must not be empty"
    if len(c.env_id) > MAX_ENV_ID:
        yield f"env_id must be at most {MAX_ENV_ID} characters, got {len(c.env_id):,}"
    yield from _spec_problems(split_env_spec, c.env_id)
    if c.learning_rate_end is not None and not 0.0 <= c.learning_rate_end <= c.learning_rate:
        yield f"learning_rate_end must be in [0, learning_rate], got {short_repr(c.learning_rate_end)}"
    if not c.v_min < c.v_max:
        yield f"v_min must be below v_max, got v_min={c.v_min}, v_max={c.v_max}"
    if c.batch_size > c.buffer_size:
        yield f"batch_size ({c.batch_size}) must not exceed buffer_size ({c.buffer_size})"
    if c.compile and c.fused_adam:
        yield "compile and fused_adam are both on: the compiled step does Adam's arithmetic itself; choose one"
    if c.compile and c.precision == "fp16":
        yield (
            "compile and precision fp16 are both on: the compiled step has no gradient scaler, which fp16 needs; "
            "use --precision bf16 with --compile, or drop --compile"
        )
    if not 1 <= len(c.hidden_sizes) <= MAX_LAYERS or any(not 1 <= width <= MAX_WIDTH for width in c.hidden_sizes):
        yield (
            f"hidden_sizes must be one or more widths >= 1 and <= {MAX_WIDTH:,} (at most {MAX_LAYERS} layers), "
            f"got {short_repr(list(c.hidden_sizes))}"
        )
    yield from _recurrent_problems(c)
    yield from _game_problems(c)
    if not DEVICE_PATTERN.match(c.device):
        yield f"device must be auto, cpu, cuda, cuda:N or mps, got {short_repr(c.device)}"
    if c.max_steps_in_flight < c.send_steps:
        yield (
            f"max_steps_in_flight ({c.max_steps_in_flight:,}) must be at least send_steps ({c.send_steps:,}): "
            "an actor's send must fit in flight"
        )
    if c.ray_address is not None and not c.ray_address.strip():
        yield "ray_address must be 'auto', 'host:port', 'ray://host:port' or none, got an empty string"
    if c.network is not None:
        yield from _spec_problems(split_network_spec, c.network)
    for f in dataclasses.fields(c):
        choices = f.metadata.get("choices")
        if choices and getattr(c, f.name) not in choices:
            yield f"{f.name} must be one of {', '.join(choices)}; got {short_repr(getattr(c, f.name))}"


def _spec_problems(split: Callable[[str], object], spec: str) -> Iterator[str]:
    """The grammar problem of an env id or network (configs.trust), as a message."""
    try:
        split(spec)
    except SpecError as error:
        yield str(error)


def _game_problems(c: Config):
    """The settings a two-player game (``pettingzoo:<game>``) cannot run with yet, and the game-only
    settings on any other env (negamax self-play; mirror_boards, which needs a board game that
    configs.games knows)."""
    game = game_of(c.env_id)
    if c.mirror_boards and game not in LINE_GAMES:
        yield (
            f"mirror_boards is for the board games {', '.join(f'pettingzoo:{name}' for name in LINE_GAMES)}, "
            f"got env {c.env_id}: drop --mirror-boards"
        )
    if game is None:
        if c.self_play == "negamax":
            yield (
                f"self_play negamax is for two-player games, got env {c.env_id}: use --env pettingzoo:<game> "
                "(e.g. pettingzoo:connect_four_v3) or drop --self-play negamax"
            )
        return
    if c.recurrent != "off":
        yield (
            f"env {c.env_id} is a two-player game, played by feed-forward Q-networks only (the self-play "
            f"opponents and the scripted evaluation keep no state); drop --recurrent {c.recurrent}"
        )
    if c.actors:
        yield (
            f"env {c.env_id} is a two-player game, which distributed actors do not play yet (self-play "
            "opponents live in this process); drop --actors"
        )
    if c.action_mask == "off":
        yield f"env {c.env_id} is a two-player game, whose illegal moves lose: use --action-mask auto (or info)"


def _recurrent_problems(c: Config):
    if c.recurrent == "off":
        return
    if c.burn_in >= c.sequence_length:
        yield f"burn_in ({c.burn_in}) must be below sequence_length ({c.sequence_length}): the loss needs steps"
    if c.sequence_overlap >= c.sequence_length:
        yield f"sequence_overlap ({c.sequence_overlap}) must be below sequence_length ({c.sequence_length})"
    if c.buffer_size < c.sequence_length:
        yield (
            f"buffer_size ({c.buffer_size}) must hold at least one sequence of sequence_length "
            f"({c.sequence_length}) steps with --recurrent {c.recurrent}"
        )
    if c.compile:
        yield (
            f"--recurrent {c.recurrent} cannot be compiled: torch.compile does not trace nn.LSTM/nn.GRU modules "
            "(torch 2.13: 'Attempted to wrap RNN, GRU, or LSTM'); drop --compile"
        )


def _check_types(c: Config) -> None:
    """Reject values of the wrong type (YAML makes '1e-3' a string and 'yes' a bool)."""
    for f in dataclasses.fields(c):
        value = getattr(c, f.name)
        kind, optional = field_kind(f)
        if value is None and optional:
            continue
        if kind is tuple:
            ok = isinstance(value, tuple) and all(is_int(v) for v in value)
        elif kind is float:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        elif kind is int:
            ok = is_int(value)
        else:
            ok = isinstance(value, kind)
        if not ok:
            raise ConfigError(f"{f.name} must be {_kind_name(kind, optional)}, got {short_repr(value)}")


def _finite(value: float) -> bool:
    try:
        return math.isfinite(value)
    except OverflowError:  # an int too large for a float
        return False


def is_int(value: Any) -> TypeGuard[int]:
    """An int that is not a bool (YAML and checkpoints give bools where ints are expected)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_count(value: Any) -> bool:
    """A non-negative int that is not a bool (a counter read back from a checkpoint)."""
    return is_int(value) and value >= 0


def _kind_name(kind: type, optional: bool) -> str:
    names = {
        int: "an integer",
        float: "a number",
        bool: "true or false",
        str: "a string",
        tuple: "a list of integers (a tuple from Python)",
    }
    return names[kind] + (" or none" if optional else "")


def field_kind(f: dataclasses.Field) -> tuple[type, bool]:
    """(base type, whether None is allowed) of a Config field, read from its annotation."""
    annotation = str(f.type)
    optional = "None" in annotation
    for name, kind in (("tuple", tuple), ("bool", bool), ("float", float), ("int", int), ("str", str)):
        if annotation.startswith(name):
            return kind, optional
    raise TypeError(f"unsupported config annotation {annotation!r}")  # a bug in Config, not user input


def field_default(f: dataclasses.Field) -> Any:
    """A Config field's default value (from its factory, for a tuple)."""
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is dataclasses.MISSING:
        raise TypeError(f"config field {f.name} has no default")  # a bug in Config, not user input
    return f.default_factory()


FIELD_NAMES = tuple(f.name for f in dataclasses.fields(Config))

# The settings a resume may change (checkpoints.resume): how a run executes, not what it computes.
# Here, not in checkpoints, so that train.py's --help names them without importing torch.
# compile: the compiled update keeps Adam's state where torch.optim.Adam does (tested both ways);
# device_replay: a device copy of replay gathers the same batches; precision: the weights and Adam's state are
# float32 under every precision, and an fp16 gradient scaler missing from the checkpoint starts afresh;
# ray_address: where a distributed run's processes run, not what they compute; the recorded one is
# never joined (a run directory must not choose a network endpoint): only one given again is.
# total_steps is apart: a resume may raise it (extending the run), never lower it.
HARMLESS_ON_RESUME = (
    "device",
    "progress",
    "track",
    "torch_threads",
    "numpy_acting",
    "vector_mode",
    "checkpoint_every",
    "keep_checkpoints",
    "compile",
    "device_replay",
    "precision",
    "ray_address",
)
