"""After signing in, the browser goes back only to a page of this site."""
import pytest

from web.login import safe_next


@pytest.mark.parametrize("target", ["/map", "/map/truck-7?from=2026-01-01", "/s/abc"])
def test_a_path_of_this_site_is_kept(target):
    assert safe_next(target) == target


@pytest.mark.parametrize("target", [
    None, "", "map", "//evil.example", "/\\evil.example", "/\t/evil.example", "/\n/evil.example",
    "http://evil.example/", "https:/evil.example", "/\x7f",
])
def test_anything_that_could_leave_the_site_goes_to_the_map(target):
    assert safe_next(target) == "/map"
