"""Model files: a round trip keeps the network's greedy actions; anything that is not a model
file of ours (a pickle that would run code, a truncated, empty or garbage file) is refused."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch

from dqn_family.agents import MLPQNetwork, ModelFileError, load_model, save_model

OBSERVATIONS_B4 = torch.tensor(
    [
        [0.0, 0.0, 0.0, 0.0],
        [0.1, -0.2, 0.03, 0.4],
        [-1.0, 1.0, -0.5, 0.5],
        [2.0, 0.0, -2.0, 0.0],
        [0.05, 0.05, -0.1, -0.3],
    ]
)


def network(seed: int) -> MLPQNetwork:
    torch.manual_seed(seed)
    return MLPQNetwork((4,), 3, hidden_sizes=(16,))


def saved_model(tmp_path: Path) -> Path:
    path = tmp_path / "model.pt"
    save_model(path, network(seed=0).state_dict(), env_step=123, eval_mean_return=4.5)
    return path


def test_save_model_load_model_round_trip_gives_identical_greedy_actions(tmp_path):
    trained = network(seed=0)
    save_model(tmp_path / "model.pt", trained.state_dict(), env_step=123)
    reloaded = network(seed=1)
    assert not torch.equal(reloaded(OBSERVATIONS_B4), trained(OBSERVATIONS_B4))  # a different start...
    reloaded.load_state_dict(load_model(tmp_path / "model.pt")["q_network"])
    assert torch.equal(reloaded(OBSERVATIONS_B4), trained(OBSERVATIONS_B4))  # ...made identical
    assert torch.equal(reloaded(OBSERVATIONS_B4).argmax(dim=1), trained(OBSERVATIONS_B4).argmax(dim=1))


def test_load_model_returns_metadata(tmp_path):
    payload = load_model(saved_model(tmp_path))
    assert (payload["format"], payload["version"]) == ("dqn-family-model", 1)
    assert (payload["env_step"], payload["eval_mean_return"]) == (123, 4.5)


def test_save_model_overwrites_leaving_no_temporary_file(tmp_path):
    path = saved_model(tmp_path)
    save_model(path, network(seed=2).state_dict(), env_step=456)
    assert load_model(path)["env_step"] == 456
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]


class PlantsMarker:
    """Unpickling this opens (so creates) ``marker``: a stand-in for any code a payload could run."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def write_malicious(path: Path, marker: Path, kind: str) -> None:
    payload = {"format": "dqn-family-model", "version": 1, "q_network": {}, "extra": PlantsMarker(marker)}
    if kind == "torch zip":
        torch.save(payload, path)
    else:
        path.write_bytes(pickle.dumps(payload, protocol=2))


@pytest.mark.parametrize("kind", ["torch zip", "raw pickle"])
def test_load_model_refuses_pickle_that_would_run_code(tmp_path, kind):
    path, marker = tmp_path / "model.pt", tmp_path / "pwned"
    write_malicious(path, marker, kind)
    with pytest.raises(ModelFileError, match="cannot load model file"):
        load_model(path)
    assert not marker.exists()


def test_malicious_payload_would_run_code_if_unpickled_unsafely(tmp_path):
    # Checks the test above checks something: an unrestricted load does create the marker.
    path, marker = tmp_path / "model.pt", tmp_path / "pwned"
    write_malicious(path, marker, "torch zip")
    torch.load(path, weights_only=False)
    assert marker.exists()


def test_load_model_truncated_file_is_model_file_error(tmp_path):
    path = saved_model(tmp_path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ModelFileError, match="cannot load model file"):
        load_model(path)


def test_load_model_empty_file_is_model_file_error(tmp_path):
    (tmp_path / "model.pt").write_bytes(b"")
    with pytest.raises(ModelFileError, match="is empty"):
        load_model(tmp_path / "model.pt")


def test_load_model_garbage_file_is_model_file_error(tmp_path):
    (tmp_path / "model.pt").write_bytes(b"this is not a model file\n" * 10)
    with pytest.raises(ModelFileError, match="cannot load model file"):
        load_model(tmp_path / "model.pt")


def test_load_model_missing_file_is_model_file_error(tmp_path):
    with pytest.raises(ModelFileError, match="does not exist"):
        load_model(tmp_path / "model.pt")


def test_load_model_other_torch_file_is_model_file_error(tmp_path):
    torch.save({"state_dict": network(seed=0).state_dict()}, tmp_path / "model.pt")
    with pytest.raises(ModelFileError, match="is not a model file of this project"):
        load_model(tmp_path / "model.pt")


def test_load_model_other_version_is_model_file_error(tmp_path):
    torch.save({"format": "dqn-family-model", "version": 99, "q_network": {}}, tmp_path / "model.pt")
    with pytest.raises(ModelFileError, match="version 99"):
        load_model(tmp_path / "model.pt")
