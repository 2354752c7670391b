"""CAN-bus intrusion traffic: a synthetic generator shaped like the HCRL Car-Hacking dataset, a
reader/writer for its exact CSV format, and the seed paper's window encoding.

Generator model (all times in seconds):

* ECUs send periodic frames: release ``k * period + phase + U(-jitter, +jitter)``; each ECU has a
  fixed DLC and a byte layout built from vehicle signals (RPM, speed, gear, throttle, steering,
  coolant) that follow one simulated drive, rolling counters, checksums, constants and noisy
  sensor bytes. RPM, speed and gear are correlated (gear from speed, RPM from speed x ratio).
* Bus: 500 kbit/s, frames go out one at a time; when the bus frees up, the lowest pending ID wins
  arbitration. A frame's length is the 11-bit-ID frame (47 + 8*DLC bits incl. 3-bit interframe
  space) plus stuff bits counted on SOF..data and estimated for the CRC field. Each sender has
  one transmit mailbox: a frame still waiting when its successor is released is overwritten
  (dropped), which is what happens to normal traffic under a flood.
* Attacks as in HCRL: DoS = ID 0x000, 8 zero bytes, every 0.3 ms; Fuzzy = random ID
  (0x000..0x7FF) and random 8-byte payload every 0.5 ms; Spoofing = the RPM (0x316) or gear (0x43F)
  ID with a fixed payload every 1 ms. Attacks come in windows; the gaps between windows are sized
  so that injected frames make up ``attack_share`` (default 14.5%, HCRL's files: 13-16%) of all frames.

Encoding (seed paper): a frame becomes 10 values, ID high byte, ID low byte and 8 payload bytes
(zero-padded for DLC < 8), each as ``byte - 128`` (INT8 range); 4 consecutive frames give 40
inputs. A window is labelled with the trace's attack class if any of its frames is injected,
else normal. Train/test split: the trace is cut into time blocks, every block goes wholly to one
side, and windows never cross a block boundary, so no frame is shared between the splits.
"""

from __future__ import annotations

import csv
import heapq
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from ...errors import ConfigError
from .base import Dataset

__all__ = [
    "CLASS_NAMES", "ATTACKS", "BITRATE", "Ecu", "AttackSpec", "CanTrace", "DEFAULT_ECUS", "frame_bits",
    "generate_trace", "read_hcrl_csv", "read_hcrl_normal_txt", "write_hcrl_csv", "encode_frames", "make_windows", "split_blocks",
    "load_can_dataset", "FRAME_VALUES", "WINDOW_FRAMES",
]

CLASS_NAMES = ("normal", "DoS", "Fuzzy", "Spoofing")
BITRATE = 500_000
FRAME_VALUES = 10
WINDOW_FRAMES = 4
RPM_ID, GEAR_ID = 0x316, 0x43F


@dataclass(frozen=True)
class Ecu:
    """A periodic sender. ``layout`` has one entry per payload byte (len == dlc):
    ``("const", v)``, ``("noise", base, amp)``, ``("counter", modulus)``, ``("signal", name, shift)``
    (byte ``shift//8`` of an integer vehicle signal) or ``("checksum",)`` (sum of the other bytes mod 256)."""

    can_id: int
    period: float
    jitter: float
    layout: tuple[tuple, ...]

    @property
    def dlc(self) -> int:
        return len(self.layout)


@dataclass(frozen=True)
class AttackSpec:
    name: str
    period: float
    window: tuple[float, float]  # window length range (s)


ATTACKS: dict[str, AttackSpec] = {
    "DoS": AttackSpec("DoS", 0.3e-3, (0.3, 0.8)),
    "Fuzzy": AttackSpec("Fuzzy", 0.5e-3, (0.4, 1.2)),
    "Spoofing": AttackSpec("Spoofing", 1.0e-3, (0.5, 1.5)),
}


def _c(v: int) -> tuple:
    return ("const", v)


def _n(base: int, amp: int) -> tuple:
    return ("noise", base, amp)


def _s(name: str, shift: int = 0) -> tuple:
    return ("signal", name, shift)


_K16, _K256, _X = ("counter", 16), ("counter", 256), ("checksum",)

# ~1,500 frames/s, 27 IDs (the HCRL capture has 26-27 IDs from a Hyundai YF Sonata).
DEFAULT_ECUS: tuple[Ecu, ...] = (
    Ecu(0x316, 0.010, 0.0002, (_c(0x05), _K16, _s("rpm", 0), _s("rpm", 8), _s("throttle"), _c(0x21), _c(0x00), _X)),
    Ecu(0x43F, 0.010, 0.0002, (_c(0x01), _s("gearcode"), _c(0x60), _c(0xFF), _s("speed"), _c(0x00), _c(0x00), _c(0x00))),
    Ecu(0x2C0, 0.010, 0.0002, (_s("wheel", 0), _s("wheel", 8), _s("wheel", 0), _s("wheel", 8),
                               _s("wheel", 0), _s("wheel", 8), _s("wheel", 0), _s("wheel", 8))),
    Ecu(0x153, 0.010, 0.0002, (_c(0x00), _c(0x21), _c(0x10), _c(0xFF), _c(0x00), _K16, _c(0x00), _X)),
    Ecu(0x18F, 0.010, 0.0002, (_c(0xFE), _s("throttle"), _c(0x00), _c(0x00), _c(0x00), _c(0x3C), _c(0x00), _c(0x00))),
    Ecu(0x260, 0.010, 0.0002, (_c(0x19), _c(0x21), _c(0x22), _c(0x30), _c(0x08), _c(0x8E), _K16, _X)),
    Ecu(0x2A0, 0.010, 0.0002, (_c(0x64), _c(0x00), _s("steer", 0), _s("steer", 8), _c(0x00), _c(0x00), _K16, _X)),
    Ecu(0x329, 0.010, 0.0002, (_c(0x40), _s("coolant"), _s("rpm", 8), _c(0x19), _c(0x11), _c(0x20), _c(0x00), _c(0x14))),
    Ecu(0x545, 0.010, 0.0002, (_c(0xD8), _c(0x00), _c(0x00), _s("coolant"), _c(0x00), _c(0x00), _c(0x00), _c(0x00))),
    Ecu(0x370, 0.010, 0.0002, (_c(0x00), _c(0x20), _c(0x00), _c(0x00), _c(0x00), _c(0x00), _c(0x00), _c(0x00))),
    Ecu(0x2B0, 0.010, 0.0002, (_s("steer", 0), _s("steer", 8), _c(0x00), _c(0x07), _K16)),
    Ecu(0x130, 0.020, 0.0004, (_n(0x08, 2), _c(0x80), _c(0x00), _n(0xFF, 1), _c(0x00), _c(0x80), _K16, _X)),
    Ecu(0x131, 0.020, 0.0004, (_n(0x16, 3), _c(0x80), _c(0x00), _n(0x0F, 2), _c(0x00), _c(0x80), _K16, _X)),
    Ecu(0x140, 0.020, 0.0004, (_c(0x00), _c(0x00), _c(0x00), _c(0x00), _K16, _c(0x08), _c(0x2A), _X)),
    Ecu(0x350, 0.020, 0.0004, (_c(0x05), _c(0x28), _s("speed"), _n(0x66, 4), _c(0x6D), _c(0x00), _c(0x00), _X)),
    Ecu(0x4B0, 0.020, 0.0004, (_s("wheel", 0), _s("wheel", 8), _s("wheel", 0), _s("wheel", 8), _c(0x00), _c(0x00), _c(0x00), _c(0x00))),
    Ecu(0x4B1, 0.020, 0.0004, (_s("wheel", 0), _s("wheel", 8), _s("wheel", 0), _s("wheel", 8), _c(0x00), _c(0x00), _c(0x00), _c(0x00))),
    Ecu(0x440, 0.050, 0.0010, (_c(0xFF), _c(0x00), _c(0x00), _c(0x00), _c(0xFF), _s("speed"), _c(0x00), _c(0x00))),
    Ecu(0x4F0, 0.050, 0.0010, (_c(0x00), _c(0x00), _c(0x00), _c(0x80), _s("coolant"), _K16, _c(0x00), _c(0x00))),
    Ecu(0x5F0, 0.050, 0.0010, (_c(0x00), _c(0x00))),
    Ecu(0x690, 0.050, 0.0010, (_n(0x10, 2), _c(0x00), _c(0x00), _c(0x00), _c(0x00), _c(0x00), _c(0x00), _c(0x00))),
    Ecu(0x080, 0.100, 0.0020, (_c(0x00), _c(0x17), _c(0xDC), _c(0x09), _c(0x16), _c(0x11), _c(0x16), _c(0xBB))),
    Ecu(0x081, 0.100, 0.0020, (_c(0x40), _c(0x84), _c(0x87), _c(0x00), _c(0x00), _c(0x00), _c(0x00), _c(0x6B))),
    Ecu(0x165, 0.100, 0.0020, (_c(0x00), _c(0x00), _K256, _c(0x00))),
    Ecu(0x1F1, 0.100, 0.0020, (_c(0x00), _c(0x00), _c(0x00), _c(0x00), _c(0x00), _c(0x00), _c(0x00), _c(0x00))),
    Ecu(0x5A0, 0.100, 0.0020, (_c(0x00), _c(0x00), _c(0x00), _c(0x00), _c(0x00), _c(0x00), _c(0x00), _c(0x00))),
    Ecu(0x5A2, 0.200, 0.0040, (_c(0x00), _c(0x00))),
)

# Fixed payloads the attacker replays (HCRL: one constant payload per spoofed ID). They report a
# state the car is not in (RPM flag byte 0x45; 1st gear at 133 km/h), so a genuine frame never
# equals them and the labels are not ambiguous.
SPOOF_PAYLOADS = {RPM_ID: (0x45, 0x29, 0x24, 0xFF, 0x29, 0x24, 0x00, 0xFF), GEAR_ID: (0x01, 0x41, 0x60, 0xFF, 0xC8, 0x00, 0x00, 0x00)}


@dataclass(frozen=True, eq=False)
class CanTrace:
    """Frames in bus order. ``timestamp`` = end of the frame on the bus (when receivers log it);
    ``release`` = when the sender queued it (NaN for frames read from a file);
    ``injected`` = HCRL flag T; ``attack`` = the trace's attack class name (or "normal")."""

    timestamp: np.ndarray  # float64 (n,)
    can_id: np.ndarray  # int64 (n,)
    dlc: np.ndarray  # int64 (n,)
    data: np.ndarray  # uint8 (n, 8), zero beyond dlc
    injected: np.ndarray  # bool (n,)
    release: np.ndarray  # float64 (n,)
    attack: str

    def __len__(self) -> int:
        return int(self.timestamp.shape[0])

    @property
    def attack_share(self) -> float:
        return float(self.injected.mean()) if len(self) else 0.0


# --- bus timing ---------------------------------------------------------------------------------

def _crc15(bits: list[int]) -> int:
    crc = 0
    for bit in bits:
        flip = bit ^ ((crc >> 14) & 1)
        crc = (crc << 1) & 0x7FFF
        if flip:
            crc ^= 0x4599
    return crc


@lru_cache(maxsize=65536)
def frame_bits(can_id: int, data: bytes) -> int:
    """Bits a standard (11-bit ID) data frame occupies on the bus, interframe space included:
    47 + 8*DLC fixed bits plus the stuff bits of SOF..CRC (a complement bit after five equal bits)."""
    bits = [0] + [(can_id >> i) & 1 for i in range(10, -1, -1)] + [0, 0, 0]  # SOF, ID, RTR, IDE, r0
    bits += [(len(data) >> i) & 1 for i in range(3, -1, -1)]
    for byte in data:
        bits += [(byte >> i) & 1 for i in range(7, -1, -1)]
    crc = _crc15(bits)
    bits += [(crc >> i) & 1 for i in range(14, -1, -1)]
    stuffed, run, last = 0, 0, -1
    for bit in bits:
        if bit == last:
            run += 1
        else:
            run, last = 1, bit
        if run == 5:  # the inserted complement bit starts a new run of length 1
            stuffed += 1
            run, last = 1, 1 - bit
    return 47 + 8 * len(data) + stuffed


# --- vehicle signals ----------------------------------------------------------------------------

_GEAR_UP = np.array([0.0, 15.0, 30.0, 50.0, 70.0, 95.0])  # km/h where gear 1..6 starts
_GEAR_RATIO = np.array([0.0, 120.0, 70.0, 48.0, 36.0, 29.0, 24.0])  # rpm per km/h in gear g


def _drive(duration: float, rng: np.random.Generator, dt: float = 0.01) -> dict[str, np.ndarray]:
    """One drive sampled every ``dt``: speed from a smoothed random acceleration, the rest derived."""
    n = int(duration / dt) + 2
    accel = np.convolve(rng.normal(0, 1.0, n), np.ones(200) / 200, mode="same") * 25.0  # km/h/s
    speed = np.zeros(n)
    for i in range(1, n):
        speed[i] = np.clip(speed[i - 1] + accel[i] * dt, 0.0, 160.0)
    gear = np.searchsorted(_GEAR_UP, speed, side="right")
    rpm = np.where(speed < 1.0, 800.0, np.maximum(800.0, speed * _GEAR_RATIO[gear])) + rng.normal(0, 15, n)
    throttle = np.clip(accel * 4 + 20 + rng.normal(0, 2, n), 0, 255)
    steer = np.cumsum(rng.normal(0, 3, n)) * 0.2
    coolant = np.clip(60 + np.arange(n) * dt * 0.2, 60, 95) + 40
    return {
        "time": np.arange(n) * dt,
        "rpm": np.clip(rpm * 4, 0, 0xFFFF),  # 0.25 rpm per bit, little endian
        "speed": np.clip(speed * 1.5, 0, 255),
        "wheel": np.clip(speed * 100, 0, 0xFFFF),
        "gearcode": 0x40 + gear,
        "throttle": throttle,
        "steer": np.mod(steer * 10, 0x10000),
        "coolant": coolant,
    }


def _payloads(ecu: Ecu, times: np.ndarray, drive: dict[str, np.ndarray], rng: np.random.Generator) -> np.ndarray:
    n = times.shape[0]
    out = np.zeros((n, 8), dtype=np.int64)
    idx = np.clip(np.searchsorted(drive["time"], times), 0, drive["time"].shape[0] - 1)
    seq = np.arange(n)
    checksum_at = None
    for b, spec in enumerate(ecu.layout):
        kind = spec[0]
        if kind == "const":
            out[:, b] = spec[1]
        elif kind == "noise":
            out[:, b] = np.clip(spec[1] + rng.integers(-spec[2], spec[2] + 1, n), 0, 255)
        elif kind == "counter":
            out[:, b] = seq % spec[1]
        elif kind == "signal":
            out[:, b] = (drive[spec[1]][idx].astype(np.int64) >> spec[2]) & 0xFF
        elif kind == "checksum":
            checksum_at = b
    if checksum_at is not None:
        out[:, checksum_at] = out.sum(axis=1) & 0xFF
    return out.astype(np.uint8)


# --- the generator ------------------------------------------------------------------------------

def _plan_windows(attack: AttackSpec, duration: float, normal_rate: float, share: float,
                  rng: np.random.Generator, length_scale: float = 1.0) -> list[tuple[float, float]]:
    """Attack windows [start, end) spread over the trace, sized for the target injected share.

    Injected frames per second of window ~ 1/period (a DoS flood is capped by the bus); normal
    frames keep flowing at ``normal_rate`` except under a DoS flood, which starves most of them.
    The window count follows from the mean window length; ``length_scale`` stretches every
    window (the caller's correction from the measured share)."""
    attack_rate = 1.0 / max(attack.period, frame_bits(0, bytes(8)) / BITRATE)
    normal_in_window = normal_rate * (0.3 if attack.name == "DoS" else 1.0)
    mean_len = sum(attack.window) / 2
    # share = A L / (A L + N_w L + N G)  =>  G = L (A (1 - share) / share - N_w) / N
    mean_gap = mean_len * (attack_rate * (1 - share) / share - normal_in_window) / normal_rate
    count = max(1, int(round(duration / (mean_len + mean_gap))))
    lengths = rng.uniform(*attack.window, count) * length_scale
    lengths *= min(1.0, 0.9 * duration / lengths.sum())
    gaps = rng.uniform(0.6, 1.4, count + 1)
    gaps *= (duration - lengths.sum()) / gaps.sum()
    starts = np.cumsum(gaps[:-1]) + np.concatenate([[0.0], np.cumsum(lengths)[:-1]])
    return [(float(a), float(a + b)) for a, b in zip(starts, lengths)]


def _attack_frames(attack: AttackSpec, windows: list[tuple[float, float]], rng: np.random.Generator):
    times, ids, data = [], [], []
    for start, end in windows:
        t = np.arange(start, end, attack.period)
        n = t.shape[0]
        if attack.name == "DoS":
            i, d = np.zeros(n, np.int64), np.zeros((n, 8), np.uint8)
        elif attack.name == "Fuzzy":
            i, d = rng.integers(0, 0x800, n), rng.integers(0, 256, (n, 8)).astype(np.uint8)
        else:  # Spoofing: one target per window, RPM or gear
            target = RPM_ID if rng.random() < 0.5 else GEAR_ID
            i = np.full(n, target, np.int64)
            d = np.tile(np.array(SPOOF_PAYLOADS[target], np.uint8), (n, 1))
        times.append(t)
        ids.append(i)
        data.append(d)
    if not times:
        return np.zeros(0), np.zeros(0, np.int64), np.zeros((0, 8), np.uint8)
    return np.concatenate(times), np.concatenate(ids), np.concatenate(data)


def _arbitrate(release: np.ndarray, can_id: np.ndarray, dlc: np.ndarray, data: np.ndarray,
               source: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Event-driven bus: returns (kept frame indices in bus order, their end-of-frame times)."""
    order = np.argsort(release, kind="stable")
    waiting: list[tuple[int, float, int]] = []
    mailbox: dict[int, int] = {}  # source -> index of its frame still waiting
    sent, stamps = [], []
    t, k, n = 0.0, 0, order.shape[0]
    rel, ids, src = release.tolist(), can_id.tolist(), source.tolist()
    while k < n or waiting:
        if not waiting and rel[order[k]] > t:
            t = rel[order[k]]
        while k < n and rel[order[k]] <= t:
            j = int(order[k])
            mailbox[src[j]] = j  # overwrites (drops) an older frame of the same sender
            heapq.heappush(waiting, (ids[j], rel[j], j))
            k += 1
        ident, _, j = heapq.heappop(waiting)
        if mailbox.get(src[j]) != j:
            continue  # overwritten in its mailbox before it won the bus
        del mailbox[src[j]]
        t += frame_bits(ident, bytes(data[j, :dlc[j]])) / BITRATE
        sent.append(j)
        stamps.append(t)
    return np.array(sent, dtype=np.int64), np.array(stamps)


def generate_trace(attack: str, duration: float, seed: int, *, attack_share: float = 0.145,
                   ecus: tuple[Ecu, ...] = DEFAULT_ECUS, start_time: float = 1478198376.0) -> CanTrace:
    """Simulate ``duration`` seconds of bus traffic with windows of ``attack`` ("normal" for none)."""
    if attack != "normal" and attack not in ATTACKS:
        raise ConfigError(f"unknown CAN attack {attack!r} (choose normal, {', '.join(ATTACKS)})")
    rng = np.random.default_rng(seed)
    drive = _drive(duration, rng)
    parts = []
    for s, ecu in enumerate(ecus):
        base = np.arange(rng.uniform(0, ecu.period), duration, ecu.period)
        t = base + rng.uniform(-ecu.jitter, ecu.jitter, base.shape[0])
        parts.append((t, np.full(t.shape[0], ecu.can_id), np.full(t.shape[0], ecu.dlc), _payloads(ecu, t, drive, rng),
                      np.full(t.shape[0], s)))
    normal = tuple(np.concatenate([p[c] for p in parts]) for c in range(5))
    if attack == "normal":
        return _on_bus(normal, len(ecus), attack, start_time)
    # Arbitration losses and mailbox overwrites change how many injected frames get through, so
    # the window gaps are corrected from the measured share (a few re-runs of the bus model).
    normal_rate = sum(1.0 / e.period for e in ecus)
    length_scale, trace = 1.0, None
    for _ in range(5):
        arng = np.random.default_rng([seed, 1])
        windows = _plan_windows(ATTACKS[attack], duration, normal_rate, attack_share, arng, length_scale)
        t, i, d = _attack_frames(ATTACKS[attack], windows, arng)
        frames = tuple(np.concatenate([a, b]) for a, b in
                       zip(normal, (t, i, np.full(t.shape[0], 8), d, np.full(t.shape[0], len(ecus)))))
        trace = _on_bus(frames, len(ecus), attack, start_time)
        got = trace.attack_share
        if got == 0 or abs(got - attack_share) < 0.003:
            break
        length_scale *= (attack_share / (1 - attack_share)) / (got / (1 - got))
    return trace


def _on_bus(frames: tuple[np.ndarray, ...], attacker: int, attack: str, start_time: float) -> CanTrace:
    release, can_id, dlc, data, source = frames
    kept, stamps = _arbitrate(release, can_id.astype(np.int64), dlc.astype(np.int64), data, source)
    return CanTrace(timestamp=start_time + stamps, can_id=can_id[kept].astype(np.int64), dlc=dlc[kept].astype(np.int64),
                    data=data[kept].astype(np.uint8), injected=(source == attacker)[kept],
                    release=start_time + release[kept], attack=attack)


# --- HCRL CSV -----------------------------------------------------------------------------------

def write_hcrl_csv(trace: CanTrace, path: str | Path) -> None:
    """Headerless rows ``Timestamp,ID,DLC,DATA0..DATA[DLC-1],Flag`` (hex, lower case, ragged)."""
    with open(path, "w", newline="") as handle:
        for ts, ident, dlc, data, inj in zip(trace.timestamp, trace.can_id, trace.dlc, trace.data, trace.injected):
            payload = ",".join(f"{b:02x}" for b in data[:dlc])
            handle.write(f"{ts:.6f},{ident:04x},{dlc},{payload + ',' if dlc else ''}{'T' if inj else 'R'}\n")


def _attack_from_name(path: Path) -> str:
    name = path.name.lower()
    if "dos" in name:
        return "DoS"
    if "fuzz" in name:
        return "Fuzzy"
    if "gear" in name or "rpm" in name or "spoof" in name:
        return "Spoofing"
    if "normal" in name:
        return "normal"
    raise ConfigError(f"{path}: cannot tell the attack type from the file name; "
                      "name it like HCRL's DoS_dataset.csv, Fuzzy_dataset.csv, gear_dataset.csv or RPM_dataset.csv")


def read_hcrl_csv(path: str | Path, attack: str | None = None) -> CanTrace:
    """Read an HCRL Car-Hacking CSV (attack type from the file name unless given).

    The real files hold millions of rows, so rows are parsed into compact typed buffers
    (``array``/``bytearray``), not lists of Python objects."""
    from array import array

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"--data {path}: file not found")
    attack = attack or _attack_from_name(path)
    ts, ids, dlcs, flags, data = array("d"), array("l"), array("b"), array("b"), bytearray()
    with open(path, newline="") as handle:
        for line_no, row in enumerate(csv.reader(handle), start=1):
            if not row or not "".join(row).strip():
                continue
            try:
                dlc = int(row[2])
                if not 0 <= dlc <= 8 or len(row) < 4 + dlc:
                    raise ValueError(f"DLC {dlc} with {len(row) - 4} data fields")
                flag = row[3 + dlc].strip()
                if flag not in ("T", "R"):
                    raise ValueError(f"flag {flag!r} (expected T or R)")
                payload = bytes(int(b, 16) for b in row[3:3 + dlc])
                stamp, ident = float(row[0]), int(row[1], 16)
            except (ValueError, IndexError) as error:
                raise ConfigError(f"{path}:{line_no}: not an HCRL row 'Timestamp,ID,DLC,DATA...,T|R' ({error})") from None
            ts.append(stamp)
            ids.append(ident)
            dlcs.append(dlc)
            flags.append(flag == "T")
            data += payload + bytes(8 - dlc)
    if not ts:
        raise ConfigError(f"{path}: no CAN frames found")
    n = len(ts)
    return CanTrace(timestamp=np.frombuffer(ts, np.float64).copy(), can_id=np.array(ids, np.int64),
                    dlc=np.array(dlcs, np.int64), data=np.frombuffer(bytes(data), np.uint8).reshape(n, 8).copy(),
                    injected=np.array(flags, bool), release=np.full(n, np.nan), attack=attack)


_TXT_ROW = re.compile(r"Timestamp:\s*([0-9.]+)\s+ID:\s*([0-9a-fA-F]+)\s+\S+\s+DLC:\s*(\d)\s*((?:[0-9a-fA-F]{2}\s*)*)$")


def read_hcrl_normal_txt(path: str | Path) -> CanTrace:
    """Read HCRL's attack-free capture ``normal_run_data.txt``
    (``Timestamp: 1479121434.850202  ID: 0350  000  DLC: 8  05 28 84 66 6d 00 00 a2``)."""
    path = Path(path)
    trace_rows = []
    with open(path) as handle:
        for line_no, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            match = _TXT_ROW.match(line.strip())
            if not match or len(match.group(4).split()) != int(match.group(3)):
                raise ConfigError(f"{path}:{line_no}: not an HCRL normal_run_data row 'Timestamp: T ID: XXXX 000 DLC: N bytes'")
            payload = [int(b, 16) for b in match.group(4).split()]
            trace_rows.append((float(match.group(1)), int(match.group(2), 16), len(payload), payload + [0] * (8 - len(payload))))
    if not trace_rows:
        raise ConfigError(f"{path}: no CAN frames found")
    n = len(trace_rows)
    return CanTrace(timestamp=np.array([r[0] for r in trace_rows]), can_id=np.array([r[1] for r in trace_rows], np.int64),
                    dlc=np.array([r[2] for r in trace_rows], np.int64),
                    data=np.array([r[3] for r in trace_rows], np.uint8).reshape(n, 8),
                    injected=np.zeros(n, bool), release=np.full(n, np.nan), attack="normal")


# --- encoding and splitting ---------------------------------------------------------------------

def encode_frames(trace: CanTrace) -> np.ndarray:
    """(n, 10) float32: ID high byte, ID low byte, 8 payload bytes, each minus 128 (INT8 range)."""
    raw = np.concatenate([(trace.can_id[:, None] >> np.array([8, 0])) & 0xFF, trace.data.astype(np.int64)], axis=1)
    return (raw - 128).astype(np.float32)


def split_blocks(n_frames: int, block: int, test_fraction: float, seed: int) -> np.ndarray:
    """Cut ``n_frames`` consecutive frames into blocks of ``block`` frames and send a random
    ``test_fraction`` of the blocks (at least one) to the test side. Returns one tag per frame:
    ``block index * 2 + 1`` for test blocks, ``block index * 2`` for train blocks, so equal tags
    mean "same block" and ``tag % 2`` is the side."""
    blocks = np.arange(n_frames) // block
    n_blocks = int(blocks[-1]) + 1 if n_frames else 0
    rng = np.random.default_rng(seed)
    is_test = np.zeros(n_blocks, bool)
    is_test[rng.permutation(n_blocks)[:max(1, int(round(n_blocks * test_fraction)))]] = True
    return blocks * 2 + is_test[blocks]


def make_windows(trace: CanTrace, block_tag: np.ndarray, stride: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Windows of 4 consecutive frames inside one block: (x (m, 40), y (m,), first frame index (m,), is_test (m,))."""
    n = len(trace)
    if n < WINDOW_FRAMES:
        return np.zeros((0, 40), np.float32), np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, bool)
    starts = np.arange(0, n - WINDOW_FRAMES + 1, stride)
    starts = starts[block_tag[starts] == block_tag[starts + WINDOW_FRAMES - 1]]  # never cross a block edge
    frames = encode_frames(trace)
    span = starts[:, None] + np.arange(WINDOW_FRAMES)
    x = frames[span].reshape(-1, WINDOW_FRAMES * FRAME_VALUES)
    label = CLASS_NAMES.index(trace.attack) if trace.attack in CLASS_NAMES else 0
    y = np.where(trace.injected[span].any(axis=1), label, 0).astype(np.int64)
    return x, y, starts, (block_tag[starts] % 2).astype(bool)


def _traces_from_path(path: Path) -> list[CanTrace]:
    def read(file: Path) -> CanTrace:
        return read_hcrl_normal_txt(file) if file.suffix.lower() == ".txt" else read_hcrl_csv(file)

    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() == ".csv" or p.name.lower() == "normal_run_data.txt")
        if not files:
            raise ConfigError(f"--data {path}: no .csv files (expected HCRL files such as DoS_dataset.csv)")
        return [read(p) for p in files]
    if not path.exists():
        raise ConfigError(f"--data {path}: file not found")
    return [read(path)]


def load_can_dataset(data: str | Path | None = None, *, seed: int = 0, duration: float = 60.0,
                     test_fraction: float = 0.2, block_seconds: float = 2.0, stride: int = 1) -> Dataset:
    """Windows from HCRL CSVs under ``data`` (a file or a directory), or from generated traces:
    one ``duration``-second trace per attack type."""
    if data is not None:
        traces = _traces_from_path(Path(data))
        source = f"HCRL CSV from {data}"
    else:
        traces = [generate_trace(a, duration, seed + i) for i, a in enumerate(ATTACKS)]
        source = f"synthetic HCRL-like traffic, {duration:g} s per attack type, seed {seed}"
    xs, ys, tests = [], [], []
    for i, trace in enumerate(traces):
        rate = len(trace) / max(float(trace.timestamp[-1] - trace.timestamp[0]), 1e-9)
        tag = split_blocks(len(trace), max(WINDOW_FRAMES, int(block_seconds * rate)), test_fraction, seed + 100 + i)
        x, y, _, is_test = make_windows(trace, tag, stride)
        xs.append(x)
        ys.append(y)
        tests.append(is_test)
    x, y, is_test = np.concatenate(xs), np.concatenate(ys), np.concatenate(tests)
    return Dataset("can", x[~is_test], y[~is_test], x[is_test], y[is_test], CLASS_NAMES, input_signed=True,
                   input_max=127.0,
                   description=(f"4 consecutive CAN frames x 10 values (ID high byte, ID low byte, 8 data bytes "
                                f"zero-padded), each byte - 128; {source}"))
