"""Everything Wagtail-facing: admin views, menus, permissions and hooks (``hooks``; Wagtail finds
them through ``wagtail_hooks``). A leaf: nothing on the request path imports it."""
