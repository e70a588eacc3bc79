"""The module contract's side of the Ansible kit: e's environment variables, errors with hints,
the state file (read whole; the module's own section written back without touching a byte of
the others), the config file, the requirements file, and the YAML the kit writes.

It knows nothing of Ansible: methods.py drives the playbook and calls these.
"""

import json
import os
import re
import sys

import yaml


class Failure(Exception):
    """An error for the user: a lowercase fragment, and a hint saying what to do."""

    def __init__(self, message, hint=None):
        super().__init__(message)
        self.message = message
        self.hint = hint


def report(failure):
    """Prints a failure to stderr, in e's format."""
    print(f"error: {failure.message}", file=sys.stderr)
    if failure.hint:
        print(f"hint: {failure.hint}", file=sys.stderr)


class Env:
    """What e tells the module through its environment (docs/modules.md)."""

    def __init__(self, default_module):
        self.module = os.environ.get("E_MODULE", default_module)
        self.version = os.environ.get("E_MODULE_VERSION", "")
        self.method = os.environ.get("E_METHOD", "")
        self.shared = os.environ.get("E_SHARED", "/shared")
        self.state_file = os.environ.get("E_STATE_FILE", os.path.join(self.shared, "state.yml"))
        self.config_file = os.environ.get(
            "E_CONFIG_FILE", os.path.join(self.shared, f"{self.module}-config.yml")
        )
        self.requirements_file = os.environ.get("E_REQUIREMENTS_FILE", "")
        try:
            self.timeout = int(os.environ.get("E_TIMEOUT", "3600"))
        except ValueError:
            self.timeout = 3600


def dump(value):
    """YAML every reader of the state can take back: block style, no line folding, no aliases,
    keys in the order given."""

    class NoAliases(yaml.SafeDumper):
        def ignore_aliases(self, data):
            return True

    return yaml.dump(
        value,
        Dumper=NoAliases,
        default_flow_style=False,
        sort_keys=False,
        allow_unicode=True,
        width=1 << 30,
    )


def read_yaml(path, what):
    """The YAML document in `path`, or None when the file is absent."""
    try:
        with open(path, encoding="utf-8") as file:
            text = file.read()
    except FileNotFoundError:
        return None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise Failure(f"{what} `{path}` is not valid YAML: {err}", "fix it by hand, or run `init` again")


def load_state(env):
    """The state as a mapping (absent or empty: an empty one) and its text."""
    try:
        with open(env.state_file, encoding="utf-8") as file:
            text = file.read()
    except FileNotFoundError:
        return {}, ""
    try:
        state = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise Failure(f"the state `{env.state_file}` is not valid YAML: {err}")
    if state is None:
        return {}, text
    if not isinstance(state, dict):
        raise Failure(f"the state `{env.state_file}` is not a mapping")
    return state, text


_TOP_LEVEL = re.compile(r"^[^\s#\-][^\n]*$")


def _is_top_level(line):
    return bool(_TOP_LEVEL.match(line)) and not line.startswith(("---", "..."))


def replace_section(text, name, section):
    """`text` (the state file) with the top-level section `name` replaced by `section` (a
    mapping, or None to delete it); every other line stays as it was."""
    lines = text.splitlines(keepends=True)
    key = re.compile(rf"^(?:{re.escape(name)}|\"{re.escape(name)}\"|'{re.escape(name)}')\s*:(\s|$)")
    start = next((i for i, line in enumerate(lines) if key.match(line)), None)
    new = dump({name: section}) if section is not None else ""
    if start is None:
        if section is None:
            return text
        if not yaml.safe_load(text or "{}"):
            # Absent, empty, `{}` or only comments: the section is the whole state.
            return new
        if any(line.startswith(("{", "---", "...")) for line in lines):
            raise Failure(
                f"cannot add the `{name}` section to a state that is not one block mapping",
                "rewrite the state as a block mapping (one `key:` per line), without `---`",
            )
        prefix = "".join(lines)
        if prefix and not prefix.endswith("\n"):
            prefix += "\n"
        return prefix + new
    end = start + 1
    while end < len(lines) and not _is_top_level(lines[end]):
        end += 1
    # Comments and blank lines just before the next section belong to it.
    while end - 1 > start and lines[end - 1].lstrip().startswith("#") and not lines[end - 1].startswith(" "):
        end -= 1
    return "".join(lines[:start]) + new + "".join(lines[end:])


def write_atomically(path, text):
    """Writes `path` through a temporary file beside it, renamed over it."""
    temporary = f"{path}.tmp-{os.getpid()}"
    with open(temporary, "w", encoding="utf-8") as file:
        file.write(text)
        file.flush()
        os.fsync(file.fileno())
    os.chmod(temporary, 0o644)
    os.replace(temporary, path)


def write_section(env, section):
    """Writes the module's own section of the state (None removes it)."""
    _, text = load_state(env)
    updated = replace_section(text, env.module, section)
    if updated != text:
        write_atomically(env.state_file, updated)


def bound_module(env, index):
    """The module e bound to strong requirement `index` (the requirements file), or None."""
    if not env.requirements_file:
        return None
    try:
        with open(env.requirements_file, encoding="utf-8") as file:
            requirements = json.load(file)
    except FileNotFoundError:
        return None
    except ValueError as err:
        raise Failure(f"the requirements file `{env.requirements_file}` is not JSON: {err}")
    strong = requirements.get("strong") or []
    if index >= len(strong):
        return None
    entry = strong[index]
    if entry.get("bound"):
        return entry["bound"]["module"]
    satisfied = entry.get("satisfied_by") or []
    return satisfied[0]["module"] if satisfied else None
