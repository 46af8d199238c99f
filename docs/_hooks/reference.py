"""MkDocs hook: the reference tables are generated from the code when the site is built, so they
cannot drift from it. Enabled in ``mkdocs.yml`` (``hooks:``; MkDocs >= 1.4).

Markers a page may hold (each on a line of its own):

``<!-- generated:settings -->``
    Every ``MICROADJUST_<NAME>`` setting: name, default and the comment above it in
    ``microadjust_cms/defaults.py``, as a definition list (``def_list``). Settings that share one
    comment (no blank line between them) share one entry.
``<!-- generated:settings NAME OTHER_NAME PREFIX_* -->``
    Only the entries holding those settings (a name or a prefix that matches nothing is an error).
``<!-- generated:signals -->``
    Every signal ``microadjust_cms`` registers (a site's own signals, such as the demo's, are left
    out): name, label, type (and its operators where they differ from the type's), parameter,
    whether it needs the profile, help text, value choices and the module of its resolver.
``<!-- generated:operators -->``
    Each value type a signal can have and the operators it takes.
``<!-- generated:deprecations -->``
    Every old module path that still works with a DeprecationWarning: each module of the package
    whose ``__getattr__`` is ``moved(__name__, "<new path>")`` (``microadjust_cms/_moved.py``),
    read from the source without importing it, and the release that removes them.

The install steps in the docs are copies of the README's marked blocks (``<!-- install:apps -->``
and so on), which ``tests/test_install_site.py`` applies to a new site. A copy in a docs page that
differs from the README's block is a warning, so ``mkdocs build --strict`` fails on it.

Problems are logged as warnings: ``mkdocs build --strict`` turns them into a failed build.
"""

from __future__ import annotations

import ast
import html
import logging
import os
import re
import runpy
import sys
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path

log = logging.getLogger("mkdocs.hooks.reference")

MARKER_RE = re.compile(r"^<!--\s*generated:(\w+)((?:\s+[\w*]+)*)\s*-->[ \t]*$", re.M)
#: The same pattern as tests/test_install_site.py uses to read the README's install steps.
INSTALL_BLOCK_RE = re.compile(r"^<!-- install:([\w-]+) -->\n```\w*\n(.*?)^```$", re.M | re.S)
SETTINGS_PREFIX = "MICROADJUST_"

_root: Path | None = None


# -- MkDocs events -------------------------------------------------------------------------------

def on_config(config, **kwargs):
    """Make the repository importable and set Django up (the signal registry needs the apps)."""
    global _root
    _root = Path(config.config_file_path).resolve().parent
    if str(_root) not in sys.path:
        sys.path.insert(0, str(_root))
    # Always the test settings: SQLite and locmem, no server, whatever the shell exported.
    os.environ["DJANGO_SETTINGS_MODULE"] = "project.settings.test"
    import django

    django.setup()
    return config


def on_page_markdown(markdown, page, config, files, **kwargs):
    where = page.file.src_uri
    _check_install_copies(markdown, where)

    def replace(match: re.Match) -> str:
        kind, args = match.group(1), match.group(2).split()
        if kind == "settings":
            return settings_table(args, where)
        if kind in NO_ARGUMENTS:
            if args:
                log.warning("%s: <!-- generated:%s --> takes no arguments, got %s", where, kind, args)
            return NO_ARGUMENTS[kind]()
        log.warning("%s: unknown marker <!-- generated:%s -->", where, kind)
        return match.group(0)

    return MARKER_RE.sub(replace, markdown)


# -- Settings ------------------------------------------------------------------------------------

@dataclass
class SettingGroup:
    """Settings defined one after another under one comment in defaults.py."""

    names: list[str]
    sources: list[str]  # each default as written in defaults.py
    comment: str


def defaults_path() -> Path:
    spec = find_spec("microadjust_cms.defaults")
    if spec is None or spec.origin is None:
        raise RuntimeError("microadjust_cms.defaults is not importable")
    return Path(spec.origin)


def read_defaults() -> tuple[list[SettingGroup], dict[str, object]]:
    """The groups of settings with their comments, and the default values (defaults.py is run
    afresh each build, so ``mkdocs serve`` shows an edited default)."""
    path = defaults_path()
    source = path.read_text()
    lines = source.splitlines()
    values = runpy.run_path(str(path))
    groups: list[SettingGroup] = []
    previous_end = 0  # last line (1-based) of the previous setting
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            name, value = node.targets[0].id, node.value
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
            name, value = node.target.id, node.value
        else:
            continue
        if not name.isupper():
            continue
        comment: list[str] = []
        at = node.lineno - 2  # 0-based index of the line above
        while at >= 0 and lines[at].lstrip().startswith("#"):
            comment.insert(0, lines[at].strip().lstrip("#").strip())
            at -= 1
        written = ast.get_source_segment(source, value) or repr(values[name])
        if not comment and groups and previous_end == node.lineno - 1:
            groups[-1].names.append(name)  # right under the previous setting: same comment
            groups[-1].sources.append(written)
        else:
            groups.append(SettingGroup([name], [written], " ".join(comment)))
        previous_end = node.end_lineno or node.lineno
    return groups, values


def settings_table(selection: list[str], where: str) -> str:
    groups, values = read_defaults()
    if not selection:  # the full reference (warned once a build, not once a page)
        for group in groups:
            if not group.comment:
                log.warning("microadjust_cms/defaults.py: %s has no comment to document it",
                            ", ".join(group.names))
    else:
        wanted = [s.removeprefix(SETTINGS_PREFIX) for s in selection]
        for pattern in wanted:
            if not any(_matches(name, pattern) for group in groups for name in group.names):
                log.warning("%s: <!-- generated:settings --> names %s, which defaults.py does not define",
                            where, pattern)
        groups = [g for g in groups if any(_matches(n, p) for n in g.names for p in wanted)]
    # A definition list, not a table: names and defaults are long code, the comments long prose.
    entries = []
    for group in groups:
        terms = "\n".join(f"`{SETTINGS_PREFIX}{name}` = {_default(written, values[name])}"
                          for name, written in zip(group.names, group.sources, strict=True))
        description = _escape(_rst_to_md(group.comment)) or "(not documented in defaults.py)"
        entries.append(f"{terms}\n:   {description}\n")
    return "\n".join(entries)


def _matches(name: str, pattern: str) -> bool:
    return name.startswith(pattern[:-1]) if pattern.endswith("*") else name == pattern


def _default(written: str, value: object) -> str:
    """The default as defaults.py writes it, and its value when that is computed."""
    if "\n" in written:  # a literal over several lines: its repr reads better on one
        try:
            if ast.literal_eval(written) == value:
                written = repr(value)
        except (ValueError, SyntaxError):
            pass
    written = " ".join(written.split())
    shown = _code(written)
    if written != repr(value):
        try:
            literal = ast.literal_eval(written)
        except (ValueError, SyntaxError):
            literal = object()
        if literal != value:  # 180 * 24 * 3600, not ("a", 1) written over two lines
            shown += f" = {_code(repr(value))}"
    return shown


# -- Signals -------------------------------------------------------------------------------------

def _signal_registry():
    """The registry of signals, and the operators each value type takes."""
    from microadjust_cms.signals.registry import TYPE_OPERATORS, registry

    return registry, TYPE_OPERATORS


def operators_table() -> str:
    """Each value type and the operators a signal of that type takes (unless it names its own)."""
    rows = ["| type | operators |", "| --- | --- |"]
    for type_name, operators in _signal_registry()[1].items():
        rows.append(f"| {type_name} | " + " ".join(f"`{op}`" for op in operators) + " |")
    return "\n".join(rows) + "\n"


def signals_table() -> str:
    registry, type_operators = _signal_registry()
    ours = [signal for signal in registry.all()
            # a site's own signals are left out (the demo registers one through the Wagtail hook)
            if (getattr(signal.resolve, "__module__", "") or "").startswith("microadjust_cms.")]
    if not ours:
        log.warning("The signal registry holds no signal of microadjust_cms: the table would be empty")
    rows = ["| signal | type | parameter | profile | description |", "| --- | --- | --- | --- | --- |"]
    for signal in ours:
        kind = signal.type
        if tuple(signal.operators) != tuple(type_operators.get(signal.type, ())):
            kind += "<br>operators " + " ".join(f"`{op}`" for op in signal.operators)
        param = _cell(str(signal.param_label)) if signal.param_label else "no"
        if signal.param_label and signal.param_choices is not None:
            param += " (offered as a list)"
        description = " ".join(part for part in (
            _cell(str(signal.help_text).strip()), _choices_text(signal),
            f"Resolved in `{signal.resolve.__module__}`.") if part)
        rows.append("| " + " | ".join([
            f"`{signal.name}`<br>{_cell(str(signal.label))}",
            kind,
            param,
            "yes" if signal.needs_profile else "no",
            description,
        ]) + " |")
    return "\n".join(rows) + "\n"


def _choices_text(signal) -> str:
    if signal.choices_by_param is not None:
        return "Values: listed per parameter when editing."
    if signal.choices is None:
        return ""
    if callable(signal.choices):  # read from settings or the database when an editor edits
        return "Values: listed when editing."
    return "Values: " + ", ".join(f"`{value}`" for value, _label in signal.choices) + "."


# -- Deprecations --------------------------------------------------------------------------------

def deprecations_table() -> str:
    spec = find_spec("microadjust_cms")
    package = Path(next(iter(spec.submodule_search_locations)))
    rows = ["| old import path | new import path |", "| --- | --- |"]
    found = []
    for path in sorted(package.rglob("*.py")):
        relative = path.relative_to(package.parent).with_suffix("")
        if "migrations" in relative.parts:
            continue
        source = path.read_text()
        if "moved(" not in source:
            continue
        for node in ast.walk(ast.parse(source)):
            if (isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) == "moved"
                    and len(node.args) == 2 and getattr(node.args[0], "id", "") == "__name__"
                    and isinstance(node.args[1], ast.Constant)):
                parts = relative.parts[:-1] if relative.name == "__init__" else relative.parts
                found.append((".".join(parts), node.args[1].value))
    if not found:
        log.warning("No module of microadjust_cms calls moved(__name__, ...): the deprecations table "
                    "would be empty")
    for old, new in sorted(found):
        rows.append(f"| `{old}` | `{new}` |")
    removed_in = _constant(package / "_moved.py", "REMOVED_IN")
    when = f"They are removed in {removed_in}." if removed_in else ""
    return f"{when}\n\n" + "\n".join(rows) + "\n"


def _constant(path: Path, name: str) -> object:
    if not path.exists():
        return None
    for node in ast.parse(path.read_text()).body:
        if (isinstance(node, ast.Assign) and len(node.targets) == 1
                and getattr(node.targets[0], "id", "") == name and isinstance(node.value, ast.Constant)):
            return node.value.value
    return None


NO_ARGUMENTS = {"signals": signals_table, "operators": operators_table, "deprecations": deprecations_table}


# -- Install steps -------------------------------------------------------------------------------

def _check_install_copies(markdown: str, where: str) -> None:
    copies = INSTALL_BLOCK_RE.findall(markdown)
    if not copies or _root is None:
        return
    readme = dict(INSTALL_BLOCK_RE.findall((_root / "README.md").read_text()))
    for name, text in copies:
        if name not in readme:
            log.warning("%s: <!-- install:%s --> is not a marked block of README.md", where, name)
        elif readme[name] != text:
            log.warning("%s: the <!-- install:%s --> block differs from README.md's, which "
                        "tests/test_install_site.py tests: copy the README's", where, name)


# -- Markdown helpers ----------------------------------------------------------------------------

def _rst_to_md(text: str) -> str:
    return re.sub(r"``(.+?)``", r"`\1`", text)


def _cell(text: str) -> str:
    """Text for a table cell: HTML escaped and pipes escaped outside code spans."""
    parts = re.split(r"(`[^`]*`)", text)
    return "".join(part if part.startswith("`") else html.escape(part, quote=False).replace("|", "&#124;")
                   for part in parts)


def _escape(text: str) -> str:
    """Prose for Markdown: HTML escaped outside code spans."""
    return "".join(part if part.startswith("`") else html.escape(part, quote=False)
                   for part in re.split(r"(`[^`]*`)", text))


def _code(text: str) -> str:
    fence = "``" if "`" in text else "`"
    return f"{fence}{text}{fence}"
