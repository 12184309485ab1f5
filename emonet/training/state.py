"""The trainer's registry of stateful objects: the resume state (state.pt) is built from it and
restored into it, so nothing that a run needs to continue can be left out.

Every entry has ``state_dict()`` and ``load_state_dict(state)`` (a model, an optimiser, a
schedule, a GradScaler, a callback, ...). The saved state is ``{"format": 2, name: state, ...}``;
a state written before the registry (no "format") is read through :func:`_from_layout_1`.
"""

from __future__ import annotations

from pathlib import Path

import torch

from emonet.errors import TrainingError

FORMAT = 2
OPTIONAL_PREFIX = "callback:"  # a callback given only now starts fresh on --resume


class AttributeState:
    """Some attributes of an object as one registry entry (the trainer's step, history, ...)."""

    def __init__(self, owner: object, names: tuple[str, ...]):
        self.owner, self.names = owner, names

    def state_dict(self) -> dict:
        return {n: getattr(self.owner, n) for n in self.names}

    def load_state_dict(self, state: dict) -> None:
        for n in self.names:
            setattr(self.owner, n, state[n])


class RngState:
    """torch's random number generators (CPU, and this rank's GPU when training on one)."""

    def __init__(self, device: torch.device):
        self.device = device

    def state_dict(self) -> dict:
        cuda = torch.cuda.get_rng_state() if self.device.type == "cuda" else None
        return {"torch": torch.get_rng_state(), "cuda": cuda}

    def load_state_dict(self, state: dict) -> None:
        torch.set_rng_state(state["torch"])
        if self.device.type == "cuda" and state.get("cuda") is not None:
            torch.cuda.set_rng_state(state["cuda"])


class StateRegistry:
    """name -> stateful object, in registration order (which is also the restore order)."""

    def __init__(self):
        self.entries: dict[str, object] = {}

    def register(self, name: str, obj) -> None:
        """Add ``obj`` under ``name``, or replace the entry (a rebuilt optimiser)."""
        if not (callable(getattr(obj, "state_dict", None)) and callable(getattr(obj, "load_state_dict", None))):
            raise TypeError(f"{name}: a registered object needs state_dict() and load_state_dict()")
        self.entries[name] = obj

    def state_dict(self) -> dict:
        """Every registered object's state, under its name."""
        return {"format": FORMAT, **{name: obj.state_dict() for name, obj in self.entries.items()}}

    def load_state_dict(self, state: dict, run: Path | str) -> list[str]:
        """Restore every registered object from ``state`` (read from ``run``/state.pt).

        Returns:
            the registered names the state had nothing for and that start fresh (callbacks
            given only now; what a state written before the registry did not keep).
        """
        fresh_ok: set[str] = set()
        if "format" not in state:
            state, fresh_ok = _from_layout_1(state, run), {"scaler", "task_schedule"}
        elif state["format"] != FORMAT:
            raise TrainingError(
                f"{run}/state.pt: resume state format {state['format']} is newer than this emonet reads "
                f"({FORMAT}); update emonet or start a new run"
            )
        fresh = []
        for name, obj in self.entries.items():
            if name not in state:
                if name in fresh_ok or name.startswith(OPTIONAL_PREFIX):
                    fresh.append(name)
                    continue
                raise TrainingError(
                    f"{run}/state.pt: the resume state has no {name!r} (it was written by a run with other settings); "
                    "resume it with the settings it started with, or start a new run"
                )
            try:
                obj.load_state_dict(state[name])
            except TrainingError as exc:
                raise TrainingError(f"--resume {run}: {exc}") from None
            except (KeyError, ValueError, RuntimeError, TypeError) as exc:
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise TrainingError(
                    f"{run}/state.pt: its {name!r} state does not fit this run ({first}); start a new run"
                ) from None
        return fresh


def _from_layout_1(state: dict, run: Path | str) -> dict:
    """A resume state written before the registry (one hand-built dict) in the registry's
    names. It kept no GradScaler: an fp16 run resumed from it starts a new loss scale."""
    keys = ("model", "best_model", "optimizer", "schedule", "step", "history", "rng")
    missing = [k for k in keys if k not in state]
    if missing:
        raise TrainingError(
            f"{run}/state.pt: not a resume state this emonet knows (no {', '.join(missing)}); start a new run"
        )
    return {
        "format": FORMAT,
        "model": state["model"],
        "optimizer": state["optimizer"],
        "schedule": state["schedule"],
        "data": {"step": state["step"]},
        "record": {"history": state["history"], "best_state": state["best_model"]},
        "rng": state["rng"],
    }
