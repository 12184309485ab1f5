"""YAML pipelines (``emonet run PIPELINE.yaml``): datasets, feature extraction, training
stages and evaluations as named stages of emonet commands, each skipped when it is up to
date, ending with a results table (UAR per task and stage) as CSV, markdown and a chart."""

from emonet.pipeline.registry import OptionSpec, StageCall, StageCommand, register_stage, stage_command
from emonet.pipeline.runner import StageFailed, StageResult, StageStopped, run_pipeline
from emonet.pipeline.spec import Pipeline, Stage, load_pipeline

__all__ = [
    "OptionSpec",
    "Pipeline",
    "Stage",
    "StageCall",
    "StageCommand",
    "StageFailed",
    "StageResult",
    "StageStopped",
    "load_pipeline",
    "register_stage",
    "run_pipeline",
    "stage_command",
]
