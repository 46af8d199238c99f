"""Preview a page as a segment or a simulated visitor, from Wagtail's preview-mode menu."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse

from .simulation import preview_modes_for, visitor_for_mode


class PersonalizedPreviewMixin:
    """Mix into a Page model (before ``Page``) to add "As …" preview modes."""

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
