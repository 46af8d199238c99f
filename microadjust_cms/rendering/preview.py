"""Preview a page as a segment or a simulated visitor, from Wagtail's preview-mode menu."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse

from .block_ids import renew_duplicate_block_ids
from .simulation import preview_modes_for, visitor_for_mode


class PersonalizedPreviewMixin:
    """Mix into a Page model (before ``Page``): "As …" preview modes, and unique block ids.

    Wagtail validates a page (``full_clean``) before each revision; that is where repeated
    PersonalizedBlock ids (a duplicated block, two blocks added in one session) are renewed, so
    tracking and reports never mix two blocks up.
    """

    def full_clean(self, *args: Any, **kwargs: Any) -> None:
        renew_duplicate_block_ids(self)
        super().full_clean(*args, **kwargs)  # type: ignore[misc]

    @property
    def preview_modes(self) -> list[tuple[str, str]]:
        return preview_modes_for(list(super().preview_modes))  # type: ignore[misc]

    def serve_preview(self, request: HttpRequest, mode_name: str) -> HttpResponse:
        visitor = visitor_for_mode(request, mode_name)
        if visitor is None:
            return super().serve_preview(request, mode_name)  # type: ignore[misc]
        request.visitor = visitor
        default_mode = super().preview_modes[0][0]  # type: ignore[misc]
        return super().serve_preview(request, default_mode)  # type: ignore[misc]
