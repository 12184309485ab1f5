"""Log-mel feature options, shared by the commands that turn audio into features
(``emonet extract``, later ``emonet predict``). Defaults are :class:`emonet.data.features.FeatureConfig`'s."""

from __future__ import annotations

from typing import Annotated

import typer

from emonet.errors import ConfigError

SampleRate = Annotated[int, typer.Option("--sample-rate", "-sr", help="Sample rate; audio is resampled to it.")]
NumMels = Annotated[int, typer.Option("--num-mels", "-nm", help="Number of mel bands.")]
NFft = Annotated[int, typer.Option("--n-fft", help="FFT size.")]
HopLength = Annotated[int, typer.Option("--hop-length", help="Hop between frames, in samples.")]
FMin = Annotated[float, typer.Option("--f-min", help="Lowest mel frequency (Hz).")]
FMax = Annotated[float, typer.Option("--f-max", help="Highest mel frequency (Hz).")]


def feature_config(sample_rate: int, num_mels: int, n_fft: int, hop_length: int, f_min: float, f_max: float):
    """The :class:`FeatureConfig` the feature options describe.

    Args:
        sample_rate, num_mels, n_fft, hop_length, f_min, f_max: the options' values.

    Returns:
        A validated ``FeatureConfig``; an invalid combination raises an ``EmoNetError`` that
        names the parameter.
    """
    from emonet.data.features import FeatureConfig  # lazy: keeps torch and zarr off 'emonet --help'

    try:
        return FeatureConfig(
            sample_rate=sample_rate,
            n_mels=num_mels,
            n_fft=n_fft,
            hop_length=hop_length,
            f_min=f_min,
            f_max=f_max,
        )
    except ConfigError:
        raise
    except ValueError as exc:  # until FeatureConfig raises ConfigError itself
        raise ConfigError(str(exc)) from None
