"""CAN generator statistics, HCRL CSV round trip, encoding and leak-free splitting."""

from __future__ import annotations

import numpy as np
import pytest

from qmlp.errors import ConfigError
from qmlp.quantize.datasets import can
from qmlp.quantize.datasets.can import (BITRATE, DEFAULT_ECUS, GEAR_ID, RPM_ID, SPOOF_PAYLOADS, encode_frames,
                                        frame_bits, generate_trace, load_can_dataset, make_windows, read_hcrl_csv,
                                        split_blocks, write_hcrl_csv)

SHARE_LOW, SHARE_HIGH = 0.13, 0.16  # HCRL's files: 13-16% injected; the generator targets 14.5%


@pytest.fixture(scope="module")
def normal():
    return generate_trace("normal", 12.0, seed=3)


@pytest.fixture(scope="module")
def attacks():
    return {a: generate_trace(a, 40.0, seed=5 + i) for i, a in enumerate(can.ATTACKS)}


def test_per_id_periods_within_jitter(normal):
    for ecu in DEFAULT_ECUS:
        mask = normal.can_id == ecu.can_id
        released = np.diff(normal.release[mask])
        # release = k*period + U(-jitter, jitter): consecutive gaps lie in period +- 2 jitter
        assert released.min() >= ecu.period - 2 * ecu.jitter - 1e-9, hex(ecu.can_id)
        assert released.max() <= ecu.period + 2 * ecu.jitter + 1e-9, hex(ecu.can_id)
        # on the bus (after arbitration) the mean period is unchanged, within 0.5 %
        assert abs(np.diff(normal.timestamp[mask]).mean() - ecu.period) < 0.005 * ecu.period


def test_normal_traffic_not_dropped_and_delays_small(normal):
    expected = sum(int(12.0 / e.period) for e in DEFAULT_ECUS)
    assert abs(len(normal) - expected) <= len(DEFAULT_ECUS)
    bits = np.array([frame_bits(int(i), bytes(d[:n])) for i, n, d in zip(normal.can_id, normal.dlc, normal.data)])
    queued = normal.timestamp - normal.release - bits / BITRATE
    assert queued.min() >= -1e-6  # absolute timestamps (~1.5e9 s) in float64 resolve ~0.2 us
    assert np.percentile(queued, 99) < 2e-3  # ~35 % bus load: a 1,500 frames/s bus rarely waits long
    assert not normal.injected.any()


def test_bus_never_overlaps_and_lowest_id_wins(attacks):
    trace = attacks["Fuzzy"]
    n = 20000
    bits = np.array([frame_bits(int(i), bytes(d[:k])) for i, k, d in zip(trace.can_id[:n], trace.dlc[:n], trace.data[:n])])
    start = trace.timestamp[:n] - bits / BITRATE
    assert np.all(start[1:] >= trace.timestamp[:n - 1] - 1e-6)
    # whenever a frame won the bus, no frame with a lower ID was already waiting for it
    later = np.arange(n)
    for i in range(1, n, 7):
        waiting = (trace.release[:n] <= start[i] - 1e-6) & (later > i)
        assert not np.any(trace.can_id[:n][waiting] < trace.can_id[i]), i


def test_attack_shares_and_rates(attacks):
    for name, trace in attacks.items():
        assert SHARE_LOW <= trace.attack_share <= SHARE_HIGH, (name, trace.attack_share)
        inj = trace.injected
        gaps = np.diff(trace.release[inj])
        period = can.ATTACKS[name].period
        assert np.median(gaps) == pytest.approx(period, abs=1e-6)
    dos = attacks["DoS"]
    assert np.all(dos.can_id[dos.injected] == 0) and not dos.data[dos.injected].any()
    fuzzy = attacks["Fuzzy"]
    ids = fuzzy.can_id[fuzzy.injected]
    assert len(np.unique(ids)) > 1500 and ids.min() >= 0 and ids.max() <= 0x7FF
    spoof = attacks["Spoofing"]
    sid = spoof.can_id[spoof.injected]
    assert set(np.unique(sid)) <= {RPM_ID, GEAR_ID}
    for target in (RPM_ID, GEAR_ID):
        rows = spoof.data[spoof.injected & (spoof.can_id == target)]
        assert np.all(rows == np.array(SPOOF_PAYLOADS[target]))


def test_dos_flood_starves_normal_traffic(attacks):
    dos = attacks["DoS"]
    t, inj = dos.timestamp, dos.injected
    first, last = t[inj][0], t[inj][np.argmax(np.diff(t[inj]) > 0.05)]  # first attack window
    inside = (t >= first) & (t <= last)
    normal_rate = (inside & ~inj).sum() / (last - first)
    assert normal_rate < 0.5 * sum(1 / e.period for e in DEFAULT_ECUS)
    assert (inside & inj).sum() / (last - first) > 0.8 / can.ATTACKS["DoS"].period


def test_signals_counters_checksums(normal):
    rpm = normal.data[normal.can_id == RPM_ID]
    assert np.all(rpm[:, 7] == rpm[:, :7].astype(np.int64).sum(axis=1) % 256)
    assert np.all(np.diff(rpm[:, 1].astype(np.int64) & 0xF) % 16 == 1)
    # speed (0x43F byte 4) and wheel speed (0x2C0 bytes 0-1) come from one drive
    gear = normal.data[normal.can_id == GEAR_ID]
    wheel = normal.data[normal.can_id == 0x2C0]
    n = min(len(gear), len(wheel))
    speed_a = gear[:n, 4].astype(float) / 1.5
    speed_b = (wheel[:n, 0] + 256.0 * wheel[:n, 1]) / 100
    assert np.corrcoef(speed_a, speed_b)[0, 1] > 0.95
    gear_no = gear[:, 1].astype(int) - 0x40
    assert np.all(np.diff(gear_no[np.argsort(gear[:, 4], kind="stable")]) >= -1)  # gear rises with speed


def test_frame_bits_bounds():
    for data in (bytes(8), bytes([0x55] * 8), bytes([0xFF] * 3), b""):
        bits = frame_bits(0x123, data)
        n = len(data)
        assert 47 + 8 * n <= bits <= 47 + 8 * n + (34 + 8 * n + 15 - 1) // 4
    assert frame_bits(0, bytes(8)) > frame_bits(0x2AA, bytes([0x55] * 8))


def test_hcrl_csv_round_trip_with_ragged_rows(tmp_path, normal):
    path = tmp_path / "RPM_dataset.csv"
    short = generate_trace("Spoofing", 6.0, seed=9)
    write_hcrl_csv(short, path)
    lines = path.read_text().splitlines()
    assert len(lines) == len(short)
    ragged = [line for line in lines if line.split(",")[2] == "2"]
    assert ragged and all(len(line.split(",")) == 2 + 4 for line in ragged)  # ts, id, dlc, 2 bytes, flag
    back = read_hcrl_csv(path)
    assert back.attack == "Spoofing"
    assert np.array_equal(back.can_id, short.can_id) and np.array_equal(back.dlc, short.dlc)
    assert np.array_equal(back.data, short.data) and np.array_equal(back.injected, short.injected)
    assert np.max(np.abs(back.timestamp - short.timestamp)) <= 5e-7


def test_reads_hcrl_sample_rows(tmp_path):
    path = tmp_path / "gear_dataset.csv"
    path.write_text("1478198376.389427,0316,8,05,21,68,09,21,21,00,6f,R\n"
                    "1478198376.389636,018f,8,fe,5b,00,00,00,3c,00,00,R\n"
                    "1478198376.390058,05f0,2,01,00,R\n"
                    "1478198376.390254,043f,8,01,45,60,ff,6b,00,00,00,T\n")
    trace = read_hcrl_csv(path)
    assert trace.can_id.tolist() == [0x316, 0x18F, 0x5F0, 0x43F]
    assert trace.dlc.tolist() == [8, 8, 2, 8]
    assert trace.data[2].tolist() == [1, 0, 0, 0, 0, 0, 0, 0]
    assert trace.injected.tolist() == [False, False, False, True]
    x = encode_frames(trace)
    assert x.shape == (4, 10) and x.dtype == np.float32
    assert x[0].tolist() == [3 - 128, 0x16 - 128] + [b - 128 for b in (5, 0x21, 0x68, 9, 0x21, 0x21, 0, 0x6F)]


@pytest.mark.parametrize("text, fragment", [
    ("1478198376.389427,0316,8,05,21,68,09,21,21,00,6f,X\n", "flag 'X'"),
    ("1478198376.389427,0316,8,05,21,R\n", "DLC 8 with 2 data fields"),
    ("1478198376.389427,zz16,2,05,21,R\n", "DoS_dataset.csv:1: not an HCRL row"),
])
def test_reader_errors_name_file_and_line(tmp_path, text, fragment):
    path = tmp_path / "DoS_dataset.csv"
    path.write_text(text)
    with pytest.raises(ConfigError, match=fragment):
        read_hcrl_csv(path)


def test_reader_needs_attack_in_name(tmp_path):
    path = tmp_path / "capture.csv"
    path.write_text("1.0,0316,0,R\n")
    with pytest.raises(ConfigError, match="cannot tell the attack type"):
        read_hcrl_csv(path)
    assert read_hcrl_csv(path, attack="DoS").dlc.tolist() == [0]


def test_windows_do_not_leak_across_split(attacks):
    trace = attacks["DoS"]
    tag = split_blocks(len(trace), 3000, 0.2, seed=1)
    x, y, starts, is_test = make_windows(trace, tag)
    assert x.shape == (len(starts), 40) and x.min() >= -128 and x.max() <= 127
    frames = starts[:, None] + np.arange(4)
    assert np.all(tag[frames] == tag[frames[:, :1]])  # a window sits inside one block
    train_frames = set(frames[~is_test].ravel().tolist())
    test_frames = set(frames[is_test].ravel().tolist())
    assert train_frames and test_frames and not (train_frames & test_frames)
    assert 0.1 < is_test.mean() < 0.3
    # label: the trace's attack class iff any frame of the window is injected
    assert np.array_equal(y == 1, trace.injected[frames].any(axis=1))


def test_load_can_dataset_small():
    data = load_can_dataset(seed=2, duration=6.0)
    assert data.x_train.shape[1] == 40 and data.classes == 4 and data.input_signed and data.input_max == 127
    assert set(np.unique(np.concatenate([data.y_train, data.y_test]))) == {0, 1, 2, 3}
    assert 0.1 < len(data.y_test) / (len(data.y_test) + len(data.y_train)) < 0.4  # 3 blocks per trace, 1 for test
    assert data.x_train.dtype == np.float32 and np.all(data.x_train == np.round(data.x_train))


def test_load_can_dataset_from_directory(tmp_path):
    for name, attack in (("DoS_dataset.csv", "DoS"), ("Fuzzy_dataset.csv", "Fuzzy")):
        write_hcrl_csv(generate_trace(attack, 5.0, seed=4), tmp_path / name)
    data = load_can_dataset(tmp_path, seed=0)
    assert set(np.unique(np.concatenate([data.y_train, data.y_test]))) == {0, 1, 2}
    assert "HCRL CSV" in data.description
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ConfigError, match="no .csv files"):
        load_can_dataset(empty, seed=0)


def test_reads_hcrl_normal_run_txt(tmp_path):
    path = tmp_path / "normal_run_data.txt"
    path.write_text("Timestamp: 1479121434.850202        ID: 0350    000    DLC: 8    05 28 84 66 6d 00 00 a2\n"
                    "Timestamp: 1479121434.850423        ID: 05f0    000    DLC: 2    01 00\n")
    trace = can.read_hcrl_normal_txt(path)
    assert trace.can_id.tolist() == [0x350, 0x5F0] and trace.dlc.tolist() == [8, 2]
    assert trace.data[1].tolist() == [1, 0, 0, 0, 0, 0, 0, 0] and not trace.injected.any()
    path.write_text("Timestamp: 1.0 ID: 0350 000 DLC: 8 05 28\n")
    with pytest.raises(ConfigError, match="normal_run_data.txt:1"):
        can.read_hcrl_normal_txt(path)
