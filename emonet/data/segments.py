"""Segments: a csv row may name a part of a longer file with the optional columns ``start``
and ``end`` (seconds). The rule that fixes a segment's samples and features:

- the segment is cut from the file at its own sample rate, samples ``round(start * rate)``
  up to (not including) ``round(end * rate)``, read by seeking (never decoding the rest);
  an end at most 10 ms past the file's end (metadata rounded up) stops at the file's end;
- those samples are then downmixed, resampled and framed exactly as a whole file holding
  just them would be (centred frames, zero padding at the segment's edges).

So a segment's features equal those of a wav holding its samples, bit for bit. A segment
of a file at the store's rate that starts on a multiple of the hop has the whole file's
frames from ``start * rate / hop`` on, except those whose window reaches past its edges.

A segment's utterance key (the store's ``files``, predictions.csv's ``file``) is
``file@start-end`` with the seconds written to the microsecond without trailing zeros
(``a.wav@1.5-4``); a whole file keeps its csv text as its key, so stores written before
segments existed read unchanged."""

from __future__ import annotations

import math

Segment = tuple[float, float]  # (start, end) in seconds, end > start >= 0


class SegmentError(ValueError):
    """A segment's csv cells or bounds are wrong (message: what, and the fix)."""


def seconds_text(seconds: float) -> str:
    """Seconds to the microsecond, without trailing zeros: 0 -> '0', 1.25 -> '1.25'."""
    text = f"{seconds + 0.0:.6f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def segment_key(file: str, segment: Segment | None) -> str:
    """The utterance key of ``file`` (its csv text), or of a segment of it."""
    if segment is None:
        return file
    return f"{file}@{seconds_text(segment[0])}-{seconds_text(segment[1])}"


def _seconds(name: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise SegmentError(f"{name} '{text}' is not a number of seconds; write it as e.g. 1.25") from None
    if not math.isfinite(value):
        raise SegmentError(f"{name} '{text}' is not a finite number of seconds; write it as e.g. 1.25")
    return value + 0.0  # -0.0 -> 0.0


def parse_segment(start: str, end: str) -> Segment | None:
    """The segment of a row's ``start`` and ``end`` cells; None (the whole file) when both
    are empty. Raises SegmentError for one cell without the other, a value that is not a
    finite number, a negative start or an end not after the start."""
    start, end = start.strip(), end.strip()
    if not start and not end:
        return None
    if not start or not end:
        given, missing = ("start", "end") if start else ("end", "start")
        raise SegmentError(
            f"has {given} '{start or end}' but no {missing}; "
            "fill in both (seconds) or leave both empty for the whole file"
        )
    s, e = _seconds("start", start), _seconds("end", end)
    if s < 0:
        raise SegmentError(f"start {start} is negative; a segment starts at 0 s or later")
    if e <= s:
        raise SegmentError(f"end {end} is not after start {start}; end must be greater than start")
    return s, e


END_TOLERANCE = 0.01  # seconds: an end at most this far past the file's end is the file's end


def sample_range(segment: Segment, rate: int, num_samples: int | None = None) -> tuple[int, int]:
    """The segment's samples ``[first, stop)`` in a file at ``rate`` Hz. With the file's
    length ``num_samples``, an end past it by at most :data:`END_TOLERANCE` (a boundary
    rounded up in a corpus's metadata) stops at the file's end; one further is left as it
    is, for the caller to refuse."""
    first, stop = round(segment[0] * rate), round(segment[1] * rate)
    if num_samples is not None and num_samples < stop <= num_samples + round(END_TOLERANCE * rate):
        stop = num_samples
    return first, stop


def segment_problem(segment: Segment, rate: int, num_samples: int, target_rate: int, n_fft: int) -> str | None:
    """Why ``segment`` of a file (``num_samples`` at ``rate`` Hz) cannot be extracted at
    ``target_rate`` with frames of ``n_fft`` samples, or None if it can: it ends after the
    file, or it is shorter than one frame."""
    first, stop = sample_range(segment, rate, num_samples)
    if stop > num_samples:
        duration = seconds_text(num_samples / rate)
        return (
            f"segment {seconds_text(segment[0])}-{seconds_text(segment[1])} s ends after the end of the file, "
            f"which is {duration} s long; fix end (at most {duration}; up to 10 ms more counts as the end)"
        )
    samples = stop - first
    g = math.gcd(rate, target_rate)
    resampled = -(-(target_rate // g) * samples // (rate // g))  # as audio.resampled_length
    if resampled < n_fft:
        return (
            f"segment {seconds_text(segment[0])}-{seconds_text(segment[1])} s is shorter than one frame "
            f"({n_fft} samples = {seconds_text(n_fft / target_rate)} s at {target_rate} Hz); "
            "widen it or delete the row"
        )
    return None
