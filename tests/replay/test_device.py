"""Replay with a device copy (``ReplayBuffer(device=...)``, used on CUDA): every batch it gathers
holds exactly what the host buffer gathers, across wraparound, frame storage, prioritized and
n-step replay and checkpoints. Run here with device "cpu", which takes the same path."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dqn_family.replay import ReplayBuffer
from tests.replay.frame_envs import STACK, feed, make_buffer


def assert_same_batch(device_batch, host_batch) -> None:
    for name, host_value in host_batch.__dict__.items():
        value = device_batch.__dict__[name]
        if host_value is None:  # a field neither batch has (next_legal without masks)
            assert value is None, name
            continue
        if name not in ("indices", "weights"):
            assert isinstance(value, torch.Tensor), name
        value = value.cpu().numpy() if isinstance(value, torch.Tensor) else value
        assert value.dtype == host_value.dtype and value.shape == host_value.shape, name
        assert value.tobytes() == host_value.tobytes(), name


@pytest.mark.parametrize("kind", ["uniform", "prioritized"])
@pytest.mark.parametrize("stacked_frames", [False, True])
@pytest.mark.parametrize("n_step, sample_every", [(1, 1), (3, 7)])
def test_device_buffer_gathers_what_the_host_buffer_gathers(kind, stacked_frames, n_step, sample_every):
    options = dict(capacity=40, stacked_frames=stacked_frames, frame_window=3 * (n_step + STACK + 2), spare_frames=40)
    host, device = make_buffer(kind, **options), make_buffer(kind, **options, device="cpu")
    steps = [0]

    def compare() -> None:
        steps[0] += 1
        if steps[0] % sample_every or not len(host):
            return
        if kind == "prioritized":
            assert_same_batch(device.sample(16, beta=0.4), host.sample(16, beta=0.4))
        else:
            assert_same_batch(device.sample(16), host.sample(16))

    counts = feed([host, device], num_envs=3, n_step=n_step, vector_steps=200, after_step=compare)
    assert counts["transitions"] > 3 * options["capacity"]  # wrapped around several times between samples
    everything = np.arange(len(host))
    assert_same_batch(device.gather(everything), host.gather(everything))


def _rows(start: int, count: int) -> dict:
    values = np.arange(start, start + count)
    return dict(
        observations=np.stack([values, -values], axis=1).astype(np.float32),
        actions=values % 3,
        rewards=values.astype(np.float32),
        next_observations=np.stack([values + 1, values], axis=1).astype(np.float32),
        terminated=values % 4 == 0,
        truncated=values % 5 == 0,
        discounts=0.99,
    )


def test_device_copy_follows_writes_larger_than_the_ring_and_wrapping_ones():
    host, device = (
        ReplayBuffer(capacity=10, observation_shape=(2,), observation_dtype=np.dtype(np.float32), seed=0, device=where)
        for where in (None, "cpu")
    )
    written = 0
    for count in (25, 3, 9, 1, 10, 4):  # one write of 2.5 rings; writes across the end of the ring
        for buffer in (host, device):
            buffer.add(**_rows(written, count))
        written += count
        everything = np.arange(len(host))
        assert_same_batch(device.gather(everything), host.gather(everything))


@pytest.mark.parametrize("stacked_frames", [False, True])
def test_device_buffer_after_loading_a_checkpoint_gathers_what_the_host_buffer_gathers(stacked_frames):
    options = dict(capacity=30, stacked_frames=stacked_frames, frame_window=3 * (1 + STACK + 2), spare_frames=30)
    source, host, device = (
        make_buffer("uniform", **options),
        make_buffer("uniform", **options),
        make_buffer("uniform", **options, device="cpu"),
    )
    feed([source, device], num_envs=3, n_step=1, vector_steps=25)  # the device copy holds older contents
    feed([source], num_envs=3, n_step=1, vector_steps=40)
    state = source.state_dict()
    host.load_state_dict(state)
    device.load_state_dict(state)
    assert_same_batch(device.gather(np.arange(len(host))), host.gather(np.arange(len(host))))
    assert_same_batch(device.sample(32), host.sample(32))
