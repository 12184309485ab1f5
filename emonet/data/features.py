"""Log-mel feature configuration and computation (torchaudio)."""

from __future__ import annotations

import hashlib
import json
import warnings
from dataclasses import asdict, dataclass, fields

import numpy as np
import torch
import torchaudio

from emonet.errors import ConfigError


@dataclass(frozen=True)
class FeatureConfig:
    """How log-mel features are computed. Defaults follow the original EmoNet:
    16 kHz, n_fft 1024, hop 512, Hann window, 128 mels from 20 to 8000 Hz, power
    spectrum, natural log of (mel + 1e-6). Frames are centred (zero padding at the edges),
    so a clip of n samples has ``1 + n // hop_length`` frames."""

    sample_rate: int = 16000
    n_fft: int = 1024
    hop_length: int = 512
    n_mels: int = 128
    f_min: float = 20.0
    f_max: float = 8000.0
    log_offset: float = 1e-6
    power: float = 2.0
    window: str = "hann"
    mel_scale: str = "htk"
    center: bool = True
    pad_mode: str = "constant"
    dtype: str = "float16"

    def __post_init__(self) -> None:
        def bad(msg: str) -> None:
            raise ConfigError(f"invalid feature config: {msg}")

        if self.sample_rate <= 0:
            bad(f"sample_rate must be > 0, got {self.sample_rate}")
        if self.n_fft <= 0 or self.hop_length <= 0:
            bad(f"n_fft and hop_length must be > 0, got {self.n_fft} and {self.hop_length}")
        if self.hop_length > self.n_fft:
            bad(f"hop_length ({self.hop_length}) must not exceed n_fft ({self.n_fft})")
        if self.n_mels <= 0:
            bad(f"n_mels must be > 0, got {self.n_mels}")
        if not 0 <= self.f_min < self.f_max:
            bad(f"need 0 <= f_min < f_max, got f_min={self.f_min} f_max={self.f_max}")
        if self.f_max > self.sample_rate / 2:
            bad(
                f"f_max ({self.f_max}) is above the Nyquist frequency {self.sample_rate / 2} "
                f"of sample_rate {self.sample_rate}"
            )
        if self.window != "hann":
            bad(f"only the 'hann' window is supported, got {self.window!r}")
        if self.dtype not in ("float16", "float32"):
            bad(f"dtype must be float16 or float32, got {self.dtype!r}")
        if not self.center:
            bad("only centred frames (center=True) are supported")
        empty = self.empty_mel_bands()
        if empty:
            bad(
                f"{empty} of the {self.n_mels} mel bands get no FFT bin (n_fft {self.n_fft} at {self.sample_rate} Hz "
                f"gives {self.n_fft // 2 + 1} bins); lower n_mels (-nm) or raise n_fft"
            )

    def mel_filterbank(self) -> torch.Tensor:
        """The mel filterbank [n_freqs, n_mels] (torchaudio; triangles, no normalisation)."""
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*all zero values.*")  # counted by empty_mel_bands
            return torchaudio.functional.melscale_fbanks(
                n_freqs=self.n_fft // 2 + 1,
                f_min=self.f_min,
                f_max=self.f_max,
                n_mels=self.n_mels,
                sample_rate=self.sample_rate,
                norm=None,
                mel_scale=self.mel_scale,
            )

    def empty_mel_bands(self) -> int:
        """How many mel filters have no non-zero weight (too many mels for the FFT size)."""
        return int((self.mel_filterbank().max(dim=0).values <= 0).sum())

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> FeatureConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ConfigError(f"invalid feature config: unknown keys {sorted(unknown)}")
        return cls(**data)

    def fingerprint(self) -> str:
        """A short hash of everything that changes the feature values."""
        blob = json.dumps(self.to_dict(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def num_frames(self, num_samples: int) -> int:
        """Frames of a clip of ``num_samples`` samples (centred frames)."""
        return 1 + num_samples // self.hop_length

    def seconds_to_frames(self, seconds: float) -> int:
        """Frames of a clip of ``seconds`` at the config's rate (the trainer's windows)."""
        return self.num_frames(int(round(seconds * self.sample_rate)))


class LogMel:
    """Computes [frames, n_mels] log-mel features from a mono waveform.

    torchaudio does the framing, windowing and STFT (``functional.spectrogram``) and builds
    the mel filterbank (``functional.melscale_fbanks``), exactly as its ``MelSpectrogram``
    does. Three steps are cheaper here than inside that transform: the power is taken as
    re^2 + im^2 (not |z| squared, which costs a square root per bin); on CPU the
    filterbank, whose 128 triangles have ~1,000 non-zeros out of ~65,000, is applied as a
    sparse matrix (4x faster); and the product yields [frames, n_mels] without transposing
    twice. The result matches ``MelSpectrogram`` to float32 rounding (a test checks it)."""

    def __init__(self, config: FeatureConfig, device: str | torch.device = "cpu"):
        self.config = config
        self.device = torch.device(device)
        self.window = torch.hann_window(config.n_fft, device=self.device)
        self.fb = config.mel_filterbank().to(self.device)  # [n_freqs, n_mels]
        self.fb_sparse = None
        if self.device.type == "cpu":
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta", category=UserWarning)
                self.fb_sparse = self.fb.T.contiguous().to_sparse_csr()  # [n_mels, n_freqs]
        self.torch_dtype = getattr(torch, config.dtype)

    @torch.inference_mode()
    def tensor(self, waveform: torch.Tensor) -> torch.Tensor:
        """float32 [frames, n_mels] on the extractor's device."""
        c = self.config
        spec = torchaudio.functional.spectrogram(
            waveform.to(self.device, non_blocking=True),
            pad=0,
            window=self.window,
            n_fft=c.n_fft,
            hop_length=c.hop_length,
            win_length=c.n_fft,
            power=None,
            normalized=False,
            center=c.center,
            pad_mode=c.pad_mode,
            onesided=True,
        )  # complex [n_freqs, frames]
        ri = torch.view_as_real(spec).square()
        power = ri[..., 0] + ri[..., 1]  # [n_freqs, frames]; 2x faster than .sum(-1) over the pair
        if c.power != 2.0:
            power = power.pow_(c.power / 2)
        if self.fb_sparse is not None and power.dim() == 2:
            mel = torch.sparse.mm(self.fb_sparse, power).T  # [frames, n_mels]
        else:
            mel = torch.matmul(power.transpose(-1, -2), self.fb)
        return mel.add_(c.log_offset).log_()

    @torch.inference_mode()
    def __call__(self, waveform: torch.Tensor) -> np.ndarray:
        """[frames, n_mels] in the storage dtype, as a numpy array (the cast rounds to
        nearest even, exactly as numpy's would)."""
        return self.tensor(waveform).to(self.torch_dtype).contiguous().cpu().numpy()
