import re

VARIANT_RE = re.compile(r'data-ma-block="([^"]+)" data-ma-variant="([^"]+)"')


def variants(response) -> dict[str, str]:
    """block id → variant name, from a rendered page."""
    assert response.status_code == 200, response.status_code
    return dict(VARIANT_RE.findall(response.content.decode()))
