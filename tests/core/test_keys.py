"""``json_digest`` is the digest every stored key was first written with: it may never change."""

import hashlib
import json

from hypothesis import given, strategies as st

from nasface.core.keys import json_digest

PLAIN = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
                     lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
                     max_leaves=12)


@given(PLAIN, st.integers(1, 64))
def test_the_digest_is_sha256_of_sorted_json(data, length):
    text = json.dumps(data, sort_keys=True)
    assert json_digest(data, length) == hashlib.sha256(text.encode()).hexdigest()[:length]
    compact = json.dumps(data, sort_keys=True, separators=(",", ":"))
    assert json_digest(data, length, compact=True) == hashlib.sha256(compact.encode()).hexdigest()[:length]


@given(st.dictionaries(st.text(), st.integers(), max_size=5))
def test_the_order_of_fields_does_not_change_a_key(fields):
    assert json_digest(dict(reversed(list(fields.items()))), 24) == json_digest(fields, 24)


def test_default_turns_what_json_cannot_hold_into_text(tmp_path):
    assert json_digest({"path": tmp_path}, 20, default=str) == json_digest({"path": str(tmp_path)}, 20)
