import numpy as np
import pytest

from qmlp.datatypes import BIPOLAR, INT, TERNARY, UINT
from qmlp.packing import beat_bytes, decode, encode, pack, unpack


@pytest.mark.parametrize("dtype", [BIPOLAR, TERNARY, INT(2), INT(5), UINT(1), UINT(3), INT(8), INT(13)])
@pytest.mark.parametrize("n, per_beat", [(37, 1), (37, 4), (40, 8), (5, 16)])
def test_pack_unpack_round_trip(dtype, n, per_beat):
    rng = np.random.default_rng(n * per_beat + dtype.bits)
    values = rng.choice([-1, 1], size=(6, n)) if dtype == BIPOLAR else rng.integers(dtype.min, dtype.max + 1, (6, n))
    data = pack(values, dtype, per_beat)
    assert data.dtype == np.uint8 and data.shape == (6, -(-n // per_beat), beat_bytes(dtype.bits, per_beat))
    assert np.array_equal(unpack(data, dtype, per_beat, n), values)


def test_bit_layout_lsb_first_little_endian():
    # INT4 elements [1, -2, 7] at 3 per beat: bits [3:0]=0x1, [7:4]=0xE, [11:8]=0x7 -> bytes 0xE1, 0x07
    data = pack(np.array([[1, -2, 7]]), INT(4), 3)
    assert data.tolist() == [[[0xE1, 0x07]]]


def test_bipolar_codes_and_padding_of_the_last_beat():
    data = pack(np.array([[-1, 1, 1]]), BIPOLAR, 2)  # beats: [-1, +1] -> 0b10, [+1, pad 0] -> 0b01
    assert data.tolist() == [[[0b10], [0b01]]]


def test_encode_decode_twos_complement():
    assert encode(np.array([-1, -8, 7]), INT(4)).tolist() == [15, 8, 7]
    assert decode(np.array([15, 8, 7]), INT(4)).tolist() == [-1, -8, 7]
    assert decode(np.array([0, 1]), BIPOLAR).tolist() == [-1, 1]
    assert decode(np.array([3]), TERNARY).tolist() == [-1]
