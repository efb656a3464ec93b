"""How stored results are keyed: one written policy, and the one digest the keys share.

A key names exactly what decides a result, so a result is reused only where it would come out the
same.  Two policies decide what goes into a key:

- **Named fields** where results accumulate over months and settings are added with neutral
  defaults: a new setting must leave the keys of what is already stored alone.  The fidelity log's
  ``nasface.fidelity.row_key`` and validate's ``nasface.validity.validate.run_key`` name the
  proxy's fields one by one (``RECIPE_FIELDS``); the search's fingerprint
  (``nasface.search.config.SearchConfig.fingerprint``, stored as the study's ``nasface_config``)
  names its sections and drops what may change between runs (the device, an unset latency budget:
  ``nasface.arch.budget.Budgets.stored``); a trial's record keys its fields by name
  (``nasface.search.record``).
- **The whole dataclass** where a result is a cache that is cheap to rebuild and wrong to reuse
  after any change: the proxy data (``nasface.data.proxy.proxy_key``), aligned photos
  (``nasface.data.aligned``), a teacher's targets (``nasface.training.teacher``), full training's
  run fingerprint and its decoded faces (``nasface.training.fulltrain``).  A cache of this kind
  carries a version constant to bump when its contents change without its inputs changing.

Every key is ``json_digest`` of plain data (sorted keys), cut to the length it was first stored
with; none of them may change, since a changed key orphans what was stored under the old one.
Two digests are not keys of results: ``nasface.search.storage``'s advisory-lock number and
``nasface.core.atomic.RowLog``'s claim files hash a key that exists already.
"""

from __future__ import annotations

import hashlib
import json


def json_digest(data, length: int, *, compact: bool = False, default=None) -> str:
    """The first ``length`` hex digits of SHA-256 over ``data`` as JSON with sorted keys.

    ``compact`` writes no spaces after separators and ``default`` turns what JSON cannot hold into
    text (``str``): each key keeps the form it was first stored with.
    """
    text = json.dumps(data, sort_keys=True, default=default, separators=(",", ":") if compact else None)
    return hashlib.sha256(text.encode()).hexdigest()[:length]
