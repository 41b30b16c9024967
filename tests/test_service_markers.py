"""A test whose service is missing skips and says why (or fails where CI requires them)."""

import importlib.util

from tests import conftest


def test_browser_tests_skip_naming_playwright_when_it_is_not_installed(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "playwright" else real(name, *a))
    assert conftest._service_problem("browser") == "needs Playwright: pip install -r requirements/dev.txt"


def test_browser_tests_run_when_playwright_and_chromium_are_there(monkeypatch, tmp_path):
    chromium = tmp_path / "chromium"
    chromium.touch()
    monkeypatch.setattr(conftest, "CHROMIUM", str(chromium))
    assert conftest._service_problem("browser") is None
