"""Fixtures shared by the integration tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.conftest import require_tool
from tests.fakes.streams import FakeCdn


@pytest.fixture
async def cdn(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[FakeCdn]:
    """A fake stream CDN with real H.264 TS and HLS (needs ffmpeg to make the clip)."""
    require_tool("ffmpeg")
    fake = FakeCdn(tmp_path_factory.getbasetemp())
    await fake.start()
    yield fake
    await fake.stop()
