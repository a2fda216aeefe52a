"""Shared pytest options."""


def pytest_addoption(parser):
    parser.addoption(
        "--site", default=None,
        help="folder of the built book's HTML (e.g. _build/html): runs the browser checks of tests/test_site.py",
    )
