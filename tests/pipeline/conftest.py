"""The pipeline tests call ``emonet.pipeline`` directly, as a Python caller does: the emonet
commands are registered as stages first, as ``emonet run`` does."""

import pytest

from emonet.cli.stages import register_stage_commands


@pytest.fixture(autouse=True, scope="session")
def _stage_commands():
    register_stage_commands()
