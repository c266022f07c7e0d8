"""The training loop of recurrent Q-networks (R2D2: Kapturowski et al. 2019, "Recurrent Experience
Replay in Distributed Reinforcement Learning"), run by train.py when ``config.recurrent`` is set:
``python train.py --env envs.pomdp:CartPoleNoVelocity-v1 --recurrent lstm``.

The same loop as train.py's, read top to bottom, from the same parts (run directory, checkpoints,
metric log, evaluation), with three differences: the agent acts from a recurrent state per sub-env,
set back to the initial state when a sub-env starts an episode; steps are stored as sequences with
the state they started from (replay.sequence), not as transitions; and an update learns from a batch
of sequences (agents.recurrent). A resumed run restarts its envs at fresh episodes, as train.py's
does: the sequences in progress at the checkpoint are not saved, and every sub-env's state starts
from the initial state, so resuming the same checkpoint twice gives identical runs on the CPU.
"""

from __future__ import annotations

import time

import numpy as np
from torch.utils.tensorboard import SummaryWriter

from dqn_family.agents import RecurrentAgent
from dqn_family.checkpoints import stop_on_signals
from dqn_family.configs.schedules import SCHEDULES, crossed, learning_rate_at, priority_beta_at
from dqn_family.envs import AutoresetTracker, learning_signal
from dqn_family.evaluate import evaluate_and_save
from dqn_family.replay import SequenceAccumulator, SequenceReplayBuffer
from dqn_family.training import EpisodeTracker, MetricLog, NonFiniteError, Progress
from dqn_family.training.hooks import EvaluationCallback
from dqn_family.training.metrics import checked_priorities
from dqn_family.training.run_dir import finish_run
from dqn_family.training.state import Counters, Resumed, Run, TrainResult, save_training_state


def recurrent_loop(
    run: Run,
    writer: SummaryWriter,
    resumed: Resumed | None,
    handle_signals: bool,
    on_evaluation: EvaluationCallback | None = None,
) -> TrainResult:
    config, agent, buffer, envs = run.config, run.agent, run.buffer, run.envs
    if not isinstance(agent, RecurrentAgent) or not isinstance(buffer, SequenceReplayBuffer):
        raise TypeError("recurrent_loop needs a recurrent agent and sequence replay (build_parts makes both)")
    num_envs = config.num_envs
    epsilon_at = SCHEDULES[config.exploration_schedule]
    autoreset = AutoresetTracker(num_envs)
    sequences = SequenceAccumulator(num_envs, config.sequence_length, config.sequence_overlap)
    episodes = EpisodeTracker(num_envs)
    count, log, final_eval, saved_step = Counters(), MetricLog(writer, run.device), None, None
    if resumed is None:
        observations, _ = envs.reset(seed=config.seed)  # sub-env i is seeded seed + i
    else:
        count, final_eval, saved_step = resumed.counters, resumed.final_eval, resumed.counters.env_steps
        log.load_state_dict(resumed.metrics)
        observations, _ = envs.reset(seed=int(run.env_seeds.integers(2**31)))  # fresh episodes, from the checkpoint
    states = agent.initial_state(num_envs)  # [E, S]: every sub-env starts an episode
    resumed_from, stopped_early = saved_step, None
    started = time.perf_counter() - count.seconds
    progress = Progress(total=config.total_steps, initial=count.env_steps, enabled=config.progress)
    with stop_on_signals(handle_signals) as stop:
        try:
            while count.env_steps < config.total_steps and stop.signal is None and stopped_early is None:
                epsilon = epsilon_at(
                    count.env_steps,
                    start=config.epsilon_start,
                    end=config.epsilon_end,
                    decay_steps=config.epsilon_decay_steps,
                )
                actions, next_states = agent.act(observations, states, epsilon)
                next_observations, rewards, terminated, truncated, infos = envs.step(actions)
                real = autoreset.real_steps(terminated, truncated)
                learn_rewards, learn_terminated = learning_signal(config, rewards, terminated, infos)
                buffer.add(
                    sequences.push(
                        observations,
                        actions,
                        learn_rewards,
                        next_observations,
                        learn_terminated,
                        truncated,
                        states,
                        real,
                    )
                )
                # Under NEXT_STEP autoreset a step that was not real reset its sub-env: the observation it
                # returned starts a new episode, which starts from the initial state.
                states = next_states if autoreset.all_real else np.where(real[:, None], next_states, 0.0)
                states = states.astype(np.float32, copy=False)
                observations = next_observations
                before = count.env_steps
                count.env_steps += num_envs if autoreset.all_real else int(real.sum())
                progress.update(count.env_steps - before)

                for episode_return, length in episodes.step(rewards, real, autoreset):
                    log.add_episode(episode_return, length, count.env_steps)
                    count.episodes += 1

                if count.env_steps >= config.learning_starts and len(buffer) > 0:
                    due = crossed(before, count.env_steps, config.train_frequency)
                    if due:
                        _learn_sequences(run, agent, buffer, log, count, due)
                    if crossed(before, count.env_steps, config.target_update_interval):
                        agent.sync_target(config.tau)

                if crossed(before, count.env_steps, config.log_frequency):
                    progress.set_status(**log.flush(count.env_steps, epsilon))

                finished = count.env_steps >= config.total_steps
                if config.eval_frequency and (crossed(before, count.env_steps, config.eval_frequency) or finished):
                    final_eval, stopped_early = evaluate_and_save(run, log, count, progress, started, on_evaluation)

                if config.checkpoint_every and crossed(before, count.env_steps, config.checkpoint_every):
                    count.seconds = time.perf_counter() - started
                    saved_step = save_training_state(run, writer, count, log, final_eval)
            progress.close()
            count.seconds = time.perf_counter() - started
            if saved_step != count.env_steps:  # at exit: finished, or stopped by a signal
                saved_step = save_training_state(run, writer, count, log, final_eval)
        except NonFiniteError as error:
            kept = (
                "no checkpoint was written yet"
                if saved_step is None
                else f"the checkpoint of step {saved_step:,} is kept"
            )
            raise NonFiniteError(f"{error}; training stopped, {kept} (a lower --learning-rate may help)") from None
        finally:
            progress.close()
            log.write_episodes()

    return finish_run(
        run, count, final_eval, resumed_from=resumed_from, stopped_early=stopped_early, stop_signal=stop.signal
    )


def _learn_sequences(
    run: Run, agent: RecurrentAgent, buffer: SequenceReplayBuffer, log: MetricLog, count: Counters, due: int
) -> None:
    """The gradient steps that are due, each on batch_size sequences; prioritized replay gets one
    priority per sequence back."""
    config = run.config
    if config.learning_rate_end is not None:
        agent.set_learning_rate(learning_rate_at(config, count.env_steps))
    for _ in range(due * config.gradient_steps):
        batch = buffer.sample(config.batch_size, priority_beta_at(config, count.env_steps))
        metrics = agent.update(batch.to_torch(run.device))
        if config.prioritized:
            buffer.update_priorities(np.asarray(batch.indices), checked_priorities(metrics, count.env_steps))
        log.add_update(metrics)
        count.updates += 1
