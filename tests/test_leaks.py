"""The leak soak of ``make soak`` (``tests/soak.py``) at a tenth of its length: RSS
within budget and every descriptor given back, for queries, connect/close cycles,
server errors and prepared statements."""

from __future__ import annotations

import pytest
import soak


@pytest.mark.parametrize(
    ("name", "workload", "count", "per_unit"), soak.WORKLOADS, ids=[w[0] for w in soak.WORKLOADS]
)
def test_no_leak(dsn, name, workload, count, per_unit):
    result = soak.measure(dsn, name, workload, count // 10, per_unit)
    assert result.fd_delta == 0, str(result)
    assert result.rss_growth <= result.budget, str(result)
