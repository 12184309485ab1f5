import numpy as np
import pytest
import torch
import torchaudio.functional as AF

from emonet.data.audio import AudioReadError, load_mono, probe, resampled_length
from emonet.data.features import FeatureConfig, LogMel
from tests.helpers import write_wav


@pytest.mark.parametrize("orig", [8000, 11025, 22050, 44100, 48000, 16000])
@pytest.mark.parametrize("n", [1, 513, 16001, 44099])
def test_resampled_length_matches_torchaudio(orig, n):
    out = AF.resample(torch.zeros(n), orig, 16000)
    assert resampled_length(n, orig, 16000) == out.shape[-1]


@pytest.mark.parametrize("n", [1, 100, 512, 513, 16000, 16383])
def test_frame_count_formula_matches_logmel(n):
    cfg = FeatureConfig(n_mels=32)
    feats = LogMel(cfg)(torch.randn(n))
    assert feats.shape == (cfg.num_frames(n), 32) and feats.dtype == np.float16


def test_logmel_is_natural_log_of_mel_power():
    cfg = FeatureConfig(n_mels=40, dtype="float32")
    x = torch.zeros(4000)
    feats = LogMel(cfg)(x)
    assert np.allclose(feats, np.log(1e-6), atol=1e-4)  # silence -> log(offset)


def test_stereo_44k_is_downmixed_and_resampled(tmp_path):
    p = write_wav(tmp_path / "s.wav", seconds=0.5, rate=44100, channels=2)
    info = probe(p)
    assert (info.sample_rate, info.channels) == (44100, 2)
    wav, converted = load_mono(p, 16000)
    assert converted and wav.ndim == 1 and wav.shape[0] == resampled_length(info.num_samples, 44100, 16000)


def test_probe_reports_missing_corrupt_and_empty(tmp_path):
    with pytest.raises(AudioReadError, match="not found"):
        probe(tmp_path / "nope.wav")
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF0000WAVEjunkjunkjunk" * 3)
    with pytest.raises(AudioReadError, match="unreadable or corrupt"):
        probe(bad)
    empty = write_wav(tmp_path / "empty.wav", seconds=0)
    with pytest.raises(AudioReadError, match="empty"):
        probe(empty)


def test_feature_config_validates_and_fingerprints():
    with pytest.raises(ValueError, match="Nyquist"):
        FeatureConfig(sample_rate=8000, f_max=8000)
    with pytest.raises(ValueError, match="f_min < f_max"):
        FeatureConfig(f_min=9000, f_max=8000)
    a, b = FeatureConfig(), FeatureConfig(n_mels=64)
    assert a.fingerprint() != b.fingerprint()
    assert FeatureConfig.from_dict(a.to_dict()) == a


@pytest.mark.parametrize(
    "cfg",
    [
        FeatureConfig(dtype="float32"),
        FeatureConfig(n_mels=64, n_fft=512, hop_length=160, f_min=0.0, f_max=7600.0, dtype="float32"),
    ],
)
def test_logmel_matches_torchaudio_melspectrogram(cfg):
    import torchaudio

    ref = torchaudio.transforms.MelSpectrogram(
        cfg.sample_rate,
        n_fft=cfg.n_fft,
        hop_length=cfg.hop_length,
        f_min=cfg.f_min,
        f_max=cfg.f_max,
        n_mels=cfg.n_mels,
        power=2.0,
        center=True,
        pad_mode="constant",
    )
    x = torch.randn(23456) * torch.linspace(0, 1, 23456)
    ours = LogMel(cfg)(x)
    theirs = torch.log(ref(x) + 1e-6).T.numpy()
    assert ours.shape == theirs.shape
    assert np.abs(ours - theirs).max() < 1e-4


@pytest.mark.parametrize(
    "channels, rate, subtype",
    [
        (1, 16000, "PCM_16"),
        (2, 44100, "PCM_16"),
        (3, 8000, "PCM_16"),
        (1, 16000, "PCM_24"),
        (1, 16000, "FLOAT"),
        (2, 22050, "PCM_U8"),
    ],
)
def test_fast_wav_path_is_bit_identical_to_soundfile(tmp_path, channels, rate, subtype):
    import soundfile as sf

    from emonet.data.audio import _read_pcm16_wav

    rng = np.random.default_rng(0)
    data = np.clip(rng.normal(0, 0.3, (int(0.3 * rate), channels)), -1, 1)
    p = tmp_path / "x.wav"
    sf.write(str(p), data, rate, subtype=subtype)
    fast = _read_pcm16_wav(str(p))
    assert (fast is not None) == (subtype == "PCM_16")  # only plain 16-bit PCM takes the fast path
    wav, converted = load_mono(p, 16000)
    ref, ref_rate = sf.read(str(p), dtype="float32", always_2d=True)
    mono = ref[:, 0] if channels == 1 else ref.mean(axis=1, dtype=np.float32)
    expect = (
        AF.resample(torch.from_numpy(np.ascontiguousarray(mono)), ref_rate, 16000)
        if ref_rate != 16000
        else torch.from_numpy(mono)
    )
    assert torch.equal(wav, expect)
    assert converted == (channels != 1 or rate != 16000)
