"""Every command that loads a model (evaluate, predict, task export and attach, init-model and
train with -im) refuses a missing file, a folder, a file that is not a checkpoint and a task
pack with the one loader's one-line message, naming the command's option."""

from __future__ import annotations

import pytest
import torch

from emonet.cli.app import main
from emonet.models import ModelConfig, build_model, save_checkpoint
from emonet.store import open_store
from tests.helpers import write_wav

FIX = "pass a model checkpoint (.safetensors file)"


@pytest.fixture(scope="module")
def files(demo_store, tmp_path_factory):
    """name -> path: a model of the demo store's tasks, one of its task packs, a junk file, a
    missing file, a folder, and a wav to predict."""
    root = tmp_path_factory.mktemp("loading")
    store = open_store(demo_store)
    tasks = {t: store.classes(t) for t in ("acted", "valence")}
    torch.manual_seed(0)
    model = build_model(ModelConfig(n_blocks=1, n_filters=4, n_mels=int(store.feature_config["n_mels"])), tasks)
    norm = {t: dict(zip(("mean", "std"), (a.tolist() for a in store.normalization(t)), strict=True)) for t in tasks}
    full = save_checkpoint(
        root / "model.safetensors", model, feature_config=dict(store.feature_config), norm_stats=norm
    )
    pack = root / "acted.safetensors"
    assert main(["task", "export", str(full), "acted", str(pack)]) == 0
    junk = root / "junk.safetensors"
    junk.write_bytes(b"not a checkpoint at all")
    (root / "folder.safetensors").mkdir()  # a folder named like a checkpoint
    wav = write_wav(root / "clip.wav", seconds=0.5)
    missing, folder = root / "none.safetensors", root / "folder.safetensors"
    return {"full": full, "pack": pack, "junk": junk, "missing": missing, "folder": folder, "wav": wav}


def _commands(files, demo_store, tmp_path) -> dict[str, tuple[str, callable]]:
    """command -> (the option naming the model, argv with the model at {})."""
    s = str(demo_store)
    return {
        "evaluate": ("--model", lambda m: ["evaluate", "--model", m, "-s", s, "-o", str(tmp_path / "ev")]),
        "predict": ("--model", lambda m: ["predict", "--model", m, str(files["wav"])]),
        "task export": ("CKPT", lambda m: ["task", "export", m, "acted", str(tmp_path / "p.safetensors")]),
        "task attach": ("CKPT", lambda m: ["task", "attach", m, str(files["pack"]), "-o", str(tmp_path / "o.st")]),
        "init-model": (
            "-im/--initial-model",
            lambda m: ["init-model", str(tmp_path / "i.safetensors"), "-s", s, "-im", m, "--mode", "adapters"],
        ),
        "train": (
            "-im/--initial-model",
            lambda m: ["train", "-s", s, "-t", "acted", "-ebp", str(tmp_path / "runs"), "-im", m, "-w", "1", "-q"],
        ),
    }


CASES = {
    "missing": lambda p: f"{p}: no such checkpoint file; {FIX}",
    "folder": lambda p: f"{p}: is a folder, not a checkpoint file; {FIX}",
    "junk": lambda p: f"{p}: not an EmoNet checkpoint (not a safetensors file",
    "pack": lambda p: (
        f"{p}: a task pack (task 'acted'), not a model; attach it to its model with "
        f"'emonet task attach MODEL {p.name} -o OUT.safetensors' and use OUT.safetensors"
    ),
}


@pytest.mark.parametrize("command", ["evaluate", "predict", "task export", "task attach", "init-model", "train"])
def test_every_command_refuses_what_is_not_a_model_in_one_line(files, demo_store, tmp_path, capsys, command):
    option, argv = _commands(files, demo_store, tmp_path)[command]
    for case, message in CASES.items():
        path = files[case]
        assert main(argv(str(path))) == 2, (command, case)
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"error: {option} {message(path)}"), (command, case, err)
        assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert not (tmp_path / "ev").exists() and not list(tmp_path.glob("*.s*"))  # nothing written
