"""The admin's "Personalization" menu: segments, clusters, their runs, engagement models and
learning jobs in one submenu (the way Wagtail's own Settings menu collects its items).

Viewsets join it by setting ``menu_hook = MENU_HOOK``; plain menu items by registering a
function on that hook. Works on Wagtail 7.4 (no ``ViewSetGroup.submenu_hook`` there yet).
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from wagtail.admin.menu import Menu, SubmenuMenuItem

MENU_HOOK = "register_microadjust_menu_item"

personalization_menu = Menu(register_hook_name=MENU_HOOK,
                            construct_hook_name="construct_microadjust_menu")


def personalization_menu_item() -> SubmenuMenuItem:
    return SubmenuMenuItem(_("Personalization"), personalization_menu, icon_name="user",
                           name="personalization", order=250)
