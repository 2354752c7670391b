import numpy as np
import pytest

from qmlp.datatypes import BIPOLAR, INT, TERNARY, UINT, DataType, smallest_type_for_range


@pytest.mark.parametrize("name, lo, hi", [("BIPOLAR", -1, 1), ("TERNARY", -1, 1), ("INT1", -1, 0), ("INT2", -2, 1),
                                          ("INT8", -128, 127), ("UINT1", 0, 1), ("UINT4", 0, 15), ("INT32", -2**31, 2**31 - 1)])
def test_parse_name_round_trip_and_range(name, lo, hi):
    dtype = DataType.parse(name)
    assert dtype.name == name == str(dtype)
    assert (dtype.min, dtype.max) == (lo, hi)


def test_bipolar_and_ternary_are_not_int2():
    assert TERNARY != INT(2) and TERNARY.bits == 2 and BIPOLAR.bits == 1
    assert not BIPOLAR.allows(np.array([0])) and BIPOLAR.allows(np.array([-1, 1, 1]))
    assert TERNARY.allows(np.array([-1, 0, 1])) and not TERNARY.allows(np.array([-2]))


@pytest.mark.parametrize("bad", ["INT", "int8", "UINT0x", "FLOAT32", "TERNARY2", ""])
def test_parse_rejects(bad):
    with pytest.raises(ValueError, match="not a data type name"):
        DataType.parse(bad)


def test_constructor_validates():
    with pytest.raises(ValueError, match="BIPOLAR has 1 bits, got 2"):
        DataType("BIPOLAR", 2)
    with pytest.raises(ValueError, match="width must be 1..64"):
        DataType("INT", 65)
    with pytest.raises(ValueError, match="unknown data type kind"):
        DataType("FLOAT", 8)


def test_allows_rejects_fractions_and_out_of_range():
    assert INT(4).allows(np.array([-8, 7, 0])) and not INT(4).allows(np.array([8]))
    assert not UINT(2).allows(np.array([0.5])) and UINT(2).allows(np.array([], dtype=np.int64))


@pytest.mark.parametrize("lo, hi, expected", [(0, 0, UINT(1)), (0, 1, UINT(1)), (0, 255, UINT(8)), (0, 256, UINT(9)),
                                              (-1, 0, INT(1)), (-1, 1, INT(2)), (-128, 127, INT(8)),
                                              (-129, 0, INT(9)), (-3, 200, INT(9))])
def test_smallest_type_for_range(lo, hi, expected):
    assert smallest_type_for_range(lo, hi) == expected


def test_smallest_type_is_minimal_exhaustively():
    for lo in range(-70, 5):
        for hi in range(lo, 70, 7):
            t = smallest_type_for_range(lo, hi)
            assert t.min <= lo and t.max >= hi
            narrower = DataType(t.kind, t.bits - 1) if t.bits > 1 else None
            assert narrower is None or narrower.min > lo or narrower.max < hi


def test_empty_range_rejected():
    with pytest.raises(ValueError, match=r"empty range \[3, 2\]"):
        smallest_type_for_range(3, 2)
