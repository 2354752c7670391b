"""qmlp.untrusted, the validation boundary: JSON limits, field checks and name quoting."""

from __future__ import annotations

import random
import re

import numpy as np
import pytest

from qmlp.errors import InputError
from qmlp.untrusted import (LIMITS, finite_floats, float_vector, int_array, integer, number, parse_json, printable,
                            quote_name, read_json, safe_ident)


def test_parse_json_limits():
    assert parse_json('{"a": [1, 2.5]}', "f") == {"a": [1, 2.5]}
    with pytest.raises(InputError, match=r"^f: JSON nested too deeply \(limit 64 levels\)$"):
        parse_json("[" * 65 + "]" * 65, "f")
    assert parse_json("[" * 64 + "]" * 64, "f") is not None
    with pytest.raises(InputError, match=r"^f: JSON nested too deeply"):
        parse_json("[" * 100_000 + "]" * 100_000, "f")  # deeper than Python's recursion limit
    for token in ("NaN", "Infinity", "-Infinity"):
        with pytest.raises(InputError, match=rf"^f: non-finite number {token} \(JSON has no NaN or Infinity\)$"):
            parse_json(f"[{token}]", "f")
    with pytest.raises(InputError, match=r"^f: number out of range"):
        parse_json("9" * 5000, "f")
    with pytest.raises(InputError, match=r"^f: not valid JSON \(line 2"):
        parse_json("{\n,}", "f")
    with pytest.raises(InputError, match=r"^f: not UTF-8 text$"):
        parse_json(b"[\"\xff\"]", "f")


def test_read_json_files(tmp_path, monkeypatch):
    with pytest.raises(InputError, match=r"^--folding .*nope.json: no such file$"):
        read_json(tmp_path / "nope.json", "--folding")
    with pytest.raises(InputError, match=r": is a directory; pass a JSON file$"):
        read_json(tmp_path, "--folding")
    big = tmp_path / "big.json"
    big.write_text("[" + "0," * 100 + "0]")
    monkeypatch.setattr(LIMITS, "json_bytes", 50)
    with pytest.raises(InputError, match=r"bytes, more than the 0 MiB qmlp reads"):
        read_json(big, "board file")


def test_numbers_are_checked_not_coerced():
    assert integer(3, "w", 0, 5) == 3
    for bad in (True, 3.0, "3", None):
        with pytest.raises(InputError, match=r"^w: must be an integer"):
            integer(bad, "w", 0, 5)
    with pytest.raises(InputError, match=r"^w: 6 outside 0..5$"):
        integer(6, "w", 0, 5)
    assert number(2, "w", positive=True) == 2.0
    for bad, message in ((float("nan"), "not a finite number"), (float("inf"), "not a finite number"),
                         (10**400, "not a finite number"), (0, "must be positive"), (False, "must be a number")):
        with pytest.raises(InputError, match=message):
            number(bad, "w", positive=True)
    with pytest.raises(InputError, match=r"^w\[1\]: must be nonzero$"):
        float_vector([1, 0.0], "w", 2, nonzero=True)


@pytest.mark.parametrize("value, message", [
    ([[1, 2], [3]], "must be 2-D nested lists"),
    ([[1, 2.5]], "every entry must be an integer"),
    ([[1, True]], "every entry must be an integer"),
    ([[1, 2**70]], "every entry must be an integer"),
    ([[1, "2"]], "every entry must be an integer"),
    ([[1, 9]], "value 9 outside -4..4"),
    ([1, 2], r"shape \(2,\) where n x 2 is needed"),
    ([[1, 2, 3]], r"shape \(1, 3\) where n x 2 is needed"),
])
def test_int_array_refuses_instead_of_rounding(value, message):
    with pytest.raises(InputError, match=message):
        int_array(value, "w", (None, 2), -4, 4)


def test_int_array_accepts_integers():
    array = int_array([[1, -2], [3, 4]], "w", (None, 2), -4, 4)
    assert array.dtype == np.int64 and array.tolist() == [[1, -2], [3, 4]]


def test_finite_floats():
    assert finite_floats(np.array([1, 2], np.int16), "x").dtype == np.float32
    with pytest.raises(InputError, match=r"^x: 1 values are NaN or infinite .* first at index \[1\] \(nan\)"):
        finite_floats(np.array([0.0, np.nan]), "x")
    with pytest.raises(InputError, match=r"beyond float32"):
        finite_floats(np.array([1e300]), "x")


SAFE = re.compile(r"^[A-Za-z0-9_.:+=,@ /%-]*(\.\.\.)?$")


def test_quote_name_output_is_inert_everywhere():
    rng = random.Random(0)
    alphabet = "aZ09_-*/\\\"'`$[]{}<>&;#%\n\r\t\x00\x1b é€\u2028\udcff"
    for _ in range(2000):
        name = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 120)))
        quoted = quote_name(name)
        assert SAFE.match(quoted), (name, quoted)
        assert "--" not in quoted and "*/" not in quoted and "/*" not in quoted
        assert len(quoted) <= 80
    assert quote_name("fc0") == "fc0" and quote_name("/layers.0/MatMul") == "/layers.0/MatMul"
    assert quote_name('a\n$x"') == "a%0A%24x%22" and quote_name("a--b") == "a-%2Db"
    # quoting is one-to-one on what it keeps: '%' itself is encoded
    assert quote_name("%0A") != quote_name("\n")


def test_safe_ident():
    assert safe_ident("can_ids_w2a2") == "can_ids_w2a2"
    assert safe_ident("x\n$(rm -rf ~)") == "x___rm__rf"
    assert safe_ident("$$$") == "qmlp" and safe_ident("9lives") == "qmlp"


def test_printable_error_lines():
    assert printable("a\nb\x1b[2J\u2028 é") == "a\\nb\\x1b[2J\\u2028 é"


def test_all_finite_is_exact_on_extremes():
    """``all_finite``'s one dot product: float32 extremes and subnormals are finite, any NaN or
    infinity is not, wherever it sits in the array."""
    import numpy as np

    from qmlp.untrusted import all_finite

    info = np.finfo(np.float32)
    x = np.array([[0.0, -0.0, info.max, -info.max, info.tiny, info.smallest_subnormal, 1e30, -1e-30]] * 5000,
                 np.float32)
    assert all_finite(x) and all_finite(x[:1])
    for bad in (np.nan, np.inf, -np.inf):
        for index in ((0, 0), (2500, 3), (4999, 7)):
            y = x.copy()
            y[index] = bad
            assert not all_finite(y)
